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
        """A numpy random generator for the generation starting at ``position``."""
        import numpy as np

        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, position])


@dataclass(frozen=True, slots=True)
class Step:
    """One sampling step: the token chosen and what the model thought of its options."""

    token: int
    prob: float  # of the chosen token, in the model's own distribution
    top: list[tuple[int, float]]  # the likeliest tokens, unconstrained: (id, prob)
    top_allowed: list[tuple[int, float]] | None  # the likeliest allowed ones (None: == top)


def step(
    logits: npt.NDArray[Any],
    allowed: npt.NDArray[np.bool_],
    temperature: float,
    sampling: Sampling,
    rng: Any,
    *,
    unconstrained: bool = False,
    force: int | None = None,
) -> Step:
    """Choose the next token and measure the distribution, sharing the work between both.

    With ``unconstrained``, the token is chosen from the model's own distribution and may
    be one the grammar does not allow (the caller decides what that means). ``force`` is a
    token chosen already (an explored branch): only the distribution is measured. This runs
    once per generated token, so it keeps to a handful of vectorised passes over the
    vocabulary.
    """
    import numpy as np

    masked = np.where(allowed, logits, -np.inf)
    token = (
        force
        if force is not None
        else choose_masked(logits if unconstrained else masked, temperature, sampling, rng)
    )
    weights = np.exp(logits - logits.max())
    total = float(weights.sum())
    count = min(sampling.candidates, logits.shape[0])
    top: list[tuple[int, float]] = []
    top_allowed: list[tuple[int, float]] | None = None
    if count:
        top = [(i, float(weights[i]) / total) for i in top_indices(logits, count)]
        if not all(allowed[i] for i, _ in top):
            best = top_allowed_indices(logits, allowed, count)
            top_allowed = [(i, float(weights[i]) / total) for i in best]
    return Step(token, float(weights[token]) / total, top, top_allowed)


def top_allowed_indices(
    logits: npt.NDArray[Any], allowed: npt.NDArray[np.bool_], count: int
) -> list[int]:
    """Indices of the ``count`` likeliest tokens that ``allowed`` allows, likeliest first
    (fewer when fewer are allowed)."""
    import numpy as np

    # Over the allowed tokens only: a partition of an array that is mostly -inf is over ten
    # times slower than one of distinct values.
    candidates = np.flatnonzero(allowed)
    return [int(candidates[i]) for i in top_indices(logits[candidates], count)]


def top_indices(values: npt.NDArray[Any], count: int) -> list[int]:
    """Indices of the ``count`` largest values, largest first."""
    import numpy as np

    count = min(count, values.shape[0])
    if count <= 0:
        return []
    part = np.argpartition(values, -count)[-count:]
    return [int(i) for i in part[np.argsort(values[part])[::-1]]]


def choose(
    logits: npt.NDArray[Any],
    allowed: npt.NDArray[np.bool_],
    temperature: float,
    sampling: Sampling,
    rng: Any,
) -> int:
    """The next token among the ``allowed`` ones."""
    import numpy as np

    return choose_masked(np.where(allowed, logits, -np.inf), temperature, sampling, rng)


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
