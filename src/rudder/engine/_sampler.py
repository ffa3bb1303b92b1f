"""Choosing the next token: greedy or sampled, within what the grammar allows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rudder.errors import SettingsError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Sampling:
    """How tokens are drawn when a grammar's temperature is above zero.

    ``top_k`` keeps the k most likely allowed tokens (0: all), ``top_p`` the smallest set
    whose probability reaches p, ``min_p`` the tokens at least ``min_p`` times as likely as
    the most likely one. With a ``seed``, every generation draws from a generator seeded by
    the seed and its place in the program, so the same program gives the same text.
    ``candidates`` is how many top tokens each step records.
    """

    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    candidates: int = 5

    def __post_init__(self) -> None:
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise SettingsError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise SettingsError(f"top_k must be an int >= 0 (0 keeps all), got {self.top_k!r}")
        if not (isinstance(self.min_p, (int, float)) and 0.0 <= self.min_p < 1.0):
            raise SettingsError(f"min_p must be in [0, 1), got {self.min_p!r}")
        if self.seed is not None and not (isinstance(self.seed, int) and self.seed >= 0):
            raise SettingsError(f"seed must be a non-negative int or None, got {self.seed!r}")
        if not (isinstance(self.candidates, int) and self.candidates >= 0):
            raise SettingsError(f"candidates must be an int >= 0, got {self.candidates!r}")

    def generator(self, position: int) -> Any:
        """A numpy random generator for the generation starting at ``position`` (made when
        first drawn from)."""
        return _Draws(None if self.seed is None else [self.seed, position])


class _Draws:
    """A numpy random generator made on its first use: greedy decoding, the usual case,
    never draws, and making one costs more than the rest of a short generation's start."""

    __slots__ = ("_made", "_seed")

    def __init__(self, seed: list[int] | None) -> None:
        self._seed = seed
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # its own slots, before they are set (a copy, say)
            raise AttributeError(name)
        if self._made is None:
            import numpy as np

            self._made = np.random.default_rng(self._seed)
        return getattr(self._made, name)


@dataclass(frozen=True, slots=True)
class Step:
    """One sampling step: the token chosen and what the model thought of its options."""

    token: int
    prob: float  # of the chosen token, in the model's own distribution
    top: list[tuple[int, float]]  # the likeliest tokens, unconstrained: (id, prob)
    top_allowed: list[tuple[int, float]] | None  # the likeliest allowed ones (None: == top)


class Allowed:
    """The grammar's mask for one step (a bool per token), with the allowed token ids
    listed at most once however many of the step's parts need them."""

    __slots__ = ("_ids", "mask")

    def __init__(self, mask: npt.NDArray[np.bool_]) -> None:
        self.mask = mask
        self._ids: npt.NDArray[np.intp] | None = None

    @property
    def ids(self) -> npt.NDArray[np.intp]:
        if self._ids is None:
            import numpy as np

            self._ids = np.flatnonzero(self.mask)
        return self._ids


def step(
    logits: npt.NDArray[Any],
    allowed: npt.NDArray[np.bool_] | Allowed,
    temperature: float,
    sampling: Sampling,
    rng: Any,
    *,
    unconstrained: bool = False,
    force: int | None = None,
) -> Step:
    """Choose the next token (:func:`pick`) and measure the distribution (:func:`measure`).

    With ``unconstrained``, the token is chosen from the model's own distribution and may
    be one the grammar does not allow (the caller decides what that means). ``force`` is a
    token chosen already (an explored branch): only the distribution is measured.
    """
    allowed = allowed if isinstance(allowed, Allowed) else Allowed(allowed)
    token = (
        force
        if force is not None
        else pick(logits, allowed, temperature, sampling, rng, unconstrained=unconstrained)
    )
    prob, top, top_allowed = measure(logits, allowed, token, sampling.candidates)
    return Step(token, prob, top, top_allowed)


def pick(
    logits: npt.NDArray[Any],
    allowed: Allowed,
    temperature: float,
    sampling: Sampling,
    rng: Any,
    *,
    unconstrained: bool = False,
) -> int:
    """The next token, looking at the allowed tokens only (see :func:`step`).

    Greedy decoding whose likeliest token is allowed looks at nothing more than the
    maximum; otherwise only the allowed tokens' logits are read.
    """

    if temperature <= 0.0:
        best = int(logits.argmax())
        if unconstrained or allowed.mask[best]:
            return best
    elif unconstrained:
        return choose_masked(logits, temperature, sampling, rng)
    ids = allowed.ids
    if ids.shape[0] == 0:
        return 0  # nothing allowed: the caller reports the dead end
    # The same draw as over the whole vocabulary with the others at -inf (they weigh 0).
    return int(ids[choose_masked(logits[ids], temperature, sampling, rng)])


def measure(
    logits: npt.NDArray[Any],
    allowed: Allowed,
    token: int,
    count: int,
    scratch: npt.NDArray[Any] | None = None,
) -> tuple[float, list[tuple[int, float]], list[tuple[int, float]] | None]:
    """What the model thought of a step: the probability of ``token`` in its own
    distribution, its ``count`` likeliest tokens, and the likeliest allowed ones (None: the
    same ones). ``scratch``, an array of the logits' shape and type, holds the weights
    (a decode loop reuses one, rather than allocating a vocabulary's worth each step)."""
    import numpy as np

    count = min(count, logits.shape[0])
    # Less the likeliest logit, so that exp() stays at most 1.
    if count:
        among = _reaching(logits, count)
        ranked = _largest_first(logits, among, count)
        peak = logits[ranked[0]]
    else:  # no candidates wanted: the probability alone
        ranked = []
        peak = logits.max()
    weights = np.subtract(logits, peak, out=scratch)
    np.exp(weights, out=weights)
    total = float(np.add.reduce(weights))
    top = [(i, float(weights[i]) / total) for i in ranked]
    top_allowed: list[tuple[int, float]] | None = None
    mask = allowed.mask
    if not all(mask[i] for i in ranked):
        # The likeliest allowed tokens are among those values too when enough of them are
        # allowed; otherwise they are looked for among all the allowed ones.
        reaching_allowed = among[mask[among]]
        if reaching_allowed.shape[0] < count:
            reaching_allowed = allowed.ids
        if reaching_allowed.shape[0] < _SAMPLED_FROM:
            best = _largest_first(logits, reaching_allowed, count)
        else:  # most of the vocabulary: a threshold first, not a sort of them all
            best = _top_among(logits, reaching_allowed, count)
        top_allowed = [(i, float(weights[i]) / total) for i in best]
    return float(weights[token]) / total, top, top_allowed


#: top_indices: below this many values a partition of them all is as fast as sampling.
_SAMPLED_FROM = 4096
_STRIDE = 32  # every this-many-th value makes the sample


def top_allowed_indices(
    logits: npt.NDArray[Any], allowed: npt.NDArray[np.bool_], count: int
) -> list[int]:
    """Indices of the ``count`` likeliest tokens that ``allowed`` allows, likeliest first
    (fewer when fewer are allowed)."""
    import numpy as np

    # Over the allowed tokens only: a partition of an array that is mostly -inf is over ten
    # times slower than one of distinct values.
    return _top_among(logits, np.flatnonzero(allowed), count)


def _top_among(values: npt.NDArray[Any], among: npt.NDArray[np.intp], count: int) -> list[int]:
    """The ``count`` largest of ``values[among]``'s indices, largest first, ties by index,
    found by a threshold (:func:`_reaching`) rather than a sort of them all."""
    chosen = top_indices(values[among], count)
    return among[chosen].tolist() if chosen else []


def top_indices(values: npt.NDArray[Any], count: int) -> list[int]:
    """Indices of the ``count`` largest values, largest first (equal values by index)."""
    count = min(count, values.shape[0])
    if count <= 0:
        return []
    return _largest_first(values, _reaching(values, count), count)


def _reaching(values: npt.NDArray[Any], count: int) -> npt.NDArray[np.intp]:
    """The indices of a few values among which the ``count`` largest are, with every value
    equal to the smallest of those (``0 < count <= len(values)``).

    A partition of a whole vocabulary costs ten times a pass that compares it with one
    number. So a sample of every 32nd value gives a threshold: its ``count``-th largest
    value, which at least ``count`` values reach (the sample's own); those are a few hundred.
    """
    import numpy as np

    if values.shape[0] >= _SAMPLED_FROM:
        sample = values[::_STRIDE].copy()
        sample.partition(sample.shape[0] - count)
        threshold = sample[-count]
        among: npt.NDArray[np.intp] = np.flatnonzero(values >= threshold)
        if among.shape[0] >= count:  # fewer: NaN in the sample, no threshold
            return among
    kept = np.argpartition(values, -count)[-count:]
    reaching: npt.NDArray[np.intp] = np.flatnonzero(values >= values[kept].min())
    return reaching


def _largest_first(values: npt.NDArray[Any], among: npt.NDArray[np.intp], count: int) -> list[int]:
    """The ``count`` largest of ``values[among]``'s indices, largest first, ties by index."""
    import numpy as np

    # A stable sort of the values negated: ties stay in ``among``'s ascending order.
    order = np.argsort(-values[among], kind="stable")[:count]
    largest: list[int] = among[order].tolist()
    return largest


def choose(
    logits: npt.NDArray[Any],
    allowed: npt.NDArray[np.bool_],
    temperature: float,
    sampling: Sampling,
    rng: Any,
) -> int:
    """The next token among the ``allowed`` ones."""
    return pick(logits, Allowed(allowed), temperature, sampling, rng)


def choose_masked(
    masked: npt.NDArray[Any], temperature: float, sampling: Sampling, rng: Any
) -> int:
    """The next token, from logits where forbidden tokens are already -inf."""
    import numpy as np

    if temperature <= 0.0:
        return int(np.argmax(masked))
    scaled = masked.astype(np.float64) / temperature
    scaled -= np.max(scaled)
    weights = np.exp(scaled)
    if sampling.top_k and sampling.top_k < int(np.count_nonzero(weights)):
        threshold = np.partition(weights, -sampling.top_k)[-sampling.top_k]
        weights[weights < threshold] = 0.0
    if sampling.min_p > 0.0:
        weights[weights < sampling.min_p * weights.max()] = 0.0
    if sampling.top_p < 1.0:
        order = np.argsort(weights)[::-1]
        cumulative = np.cumsum(weights[order])
        keep = int(np.searchsorted(cumulative, sampling.top_p * cumulative[-1])) + 1
        weights[order[keep:]] = 0.0
    cumulative = np.cumsum(weights)
    total = float(cumulative[-1])  # the same sum the search runs over, so a draw stays inside
    if not math.isfinite(total) or total <= 0.0:
        return int(np.argmax(masked))
    return int(np.searchsorted(cumulative, rng.random() * total, side="right"))
