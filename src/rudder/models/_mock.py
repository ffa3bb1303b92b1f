"""``models.Mock``: a deterministic, scriptable model that runs through the real decode loop.

Its vocabulary is the 256 bytes, a few special tokens (``<s>``, ``<|im_start|>``,
``<|im_end|>``) and a set of multi-byte tokens, so token healing, fast-forward and
backtracking happen as they do with a real tokenizer. Its logits are a fixed function of
the context: small pseudo-random noise seeded by the last tokens, plus a strong bias
towards continuing one of the ``byte_patterns`` it was given (and towards end-of-sequence
once a pattern is complete).

As in guidance's Mock, ``<s>`` is both the start and the end token: a prompt outside chat
roles starts with it, so ``Mock(b"<s>text<s>")`` writes ``text`` from the start and ends
there, at the pattern's second ``<s>``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rudder._chat import ChatTemplate
from rudder.engine._engine import Engine
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import WrongTypeError
from rudder.models._model import Model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SPECIAL_TOKENS = ("<s>", "<|im_start|>", "<|im_end|>")
_EOS = 256  # ``<s>``: the start token too, as in guidance's Mock
_EOS_TEXT = SPECIAL_TOKENS[0].encode()

#: Multi-byte tokens besides the single bytes: common English pieces and a few that make
#: token healing visible (``http`` + ``:`` may be re-made as ``://``).
DEFAULT_MERGES = (
    "the", " the", "The", " a", " an", " and", " of", " to", " in", " is", " it", "ing",
    "er", "ed", "on", "at", "en", "es", " th", "ou", "or", "an", "in", "re", ", ", ". ",
    ".\n", "\n\n", "  ", "    ", "yes", "no", "Yes", "No", " yes", " no", "Paris", " Paris",
    "France", " France", "capital", " capital", "http", "://", "://www", ":", "www", ".com",
    "name", '"name"', "age", '"age"', '": ', '":', '{"', '"}', "true", "false", "null",
    "123", "12", "42", "Hello", " Hello", "world", " world", "!", "?",
)  # fmt: skip


class MockTokenizer(EngineTokenizer):
    """Greedy longest-match tokenizer over bytes, specials and merges."""

    def __init__(self, merges: Iterable[str] = DEFAULT_MERGES) -> None:
        pieces: list[bytes] = [bytes([i]) for i in range(256)]
        pieces += [s.encode() for s in SPECIAL_TOKENS]
        seen = set(pieces)
        for merge in merges:
            data = merge.encode()
            if len(data) > 1 and data not in seen:
                seen.add(data)
                pieces.append(data)
        self.pieces = pieces
        self._ids = {piece: i for i, piece in enumerate(pieces) if i < _EOS or i > _EOS + 2}
        self._longest = max(len(p) for p in self._ids)
        self._specials = {s: _EOS + i for i, s in enumerate(SPECIAL_TOKENS)}
        super().__init__(
            pieces,
            special_ids=self._specials.values(),
            eos_token_id=_EOS,
            bos_token_id=_EOS,
            add_bos=True,
            special_tokens={"eos_token": SPECIAL_TOKENS[0], "bos_token": SPECIAL_TOKENS[0]},
            chat_template=None,
        )

    def encode_bytes(self, data: bytes) -> list[int]:
        ids = []
        position = 0
        while position < len(data):
            for length in range(min(self._longest, len(data) - position), 0, -1):
                token = self._ids.get(data[position : position + length])
                if token is not None:
                    ids.append(token)
                    position += length
                    break
        return ids

    def _encode(self, text: str, special: bool) -> list[int]:
        if not special:
            return self.encode_bytes(text.encode())
        ids: list[int] = []
        rest = text
        while rest:
            hits = [(rest.find(s), s) for s in self._specials if s in rest]
            if not hits:
                ids += self.encode_bytes(rest.encode())
                break
            at, marker = min(hits)
            ids += self.encode_bytes(rest[:at].encode())
            ids.append(self._specials[marker])
            rest = rest[at + len(marker) :]
        return ids


class MockEngine(Engine):
    """Logits from the context: noise plus a bias towards the byte patterns."""

    #: A context length, so that a grammar the noise never finishes fails instead of running
    #: forever.
    CONTEXT_LENGTH = 4096
    #: How many of the latest sampling temperatures ``called_temperatures`` keeps (at least).
    TEMPERATURES_KEPT = 10_000

    def __init__(self, byte_patterns: Sequence[bytes], tokenizer: MockTokenizer) -> None:
        super().__init__(tokenizer, context_length=self.CONTEXT_LENGTH)
        #: The temperature of each token the model chose, in order (guidance's Mock has it):
        #: the latest ``TEMPERATURES_KEPT``, so that a Mock used for ever stays bounded.
        self.called_temperatures: list[float] = []
        self.patterns = list(byte_patterns)
        # The context the patterns are matched against: enough bytes for the longest one.
        self._window = max((len(p) for p in self.patterns), default=0)
        self._by_first_byte: dict[int, list[tuple[int, bytes]]] = {}
        for token_id, piece in enumerate(tokenizer.pieces):
            if _EOS <= token_id <= _EOS + 2:
                continue
            self._by_first_byte.setdefault(piece[0], []).append((token_id, piece))

    def note_sampling(self, temperature: float) -> None:
        kept = self.called_temperatures
        kept.append(temperature)
        if len(kept) > 2 * self.TEMPERATURES_KEPT:
            del kept[: -self.TEMPERATURES_KEPT]  # now and then, so appending stays O(1)

    def _forward(self, token_ids: Sequence[int]) -> tuple[npt.NDArray[np.float32], int]:
        import numpy as np

        vocab = self.tokenizer.vocab_size
        seed = zlib.crc32(repr(list(token_ids[-4:])).encode())
        logits = np.random.default_rng(seed).standard_normal(vocab).astype(np.float32)
        # A bias that sampling at temperature 1 follows too (as guidance's Mock does).
        # The best pattern's next token gets the strongest bias; other patterns that also
        # match get half as much each time (as in guidance's Mock), so a grammar that
        # forbids the first choice falls back on the next pattern, not on noise.
        weight = 1.0
        for following in self._continuations(self._context(token_ids)):
            if following == b"" or following.startswith(_EOS_TEXT):
                logits[_EOS] += 30.0 * weight
            else:
                for token_id, piece in self._by_first_byte.get(following[0], ()):
                    if following.startswith(piece):
                        logits[token_id] += (20.0 + len(piece)) * weight
            weight /= 2
        return logits, 1

    def _context(self, token_ids: Sequence[int]) -> bytes:
        """The last bytes of the context, as many as the longest pattern has."""
        pieces: list[bytes] = []
        size = 0
        for token_id in reversed(token_ids):
            if size >= self._window:
                break
            piece = self.tokenizer.token_bytes(token_id)
            pieces.append(piece)
            size += len(piece)
        return b"".join(reversed(pieces))

    def _continuations(self, context: bytes) -> list[bytes]:
        """What the patterns say comes next (b"" once complete), best match first."""
        matches: list[tuple[int, int, bytes]] = []
        for index, pattern in enumerate(self.patterns):
            for length in range(min(len(pattern), len(context)), 0, -1):
                if context.endswith(pattern[:length]):
                    matches.append((-length, index, pattern[length:]))
                    break
        if matches:
            return [following for _, _, following in sorted(matches)]
        # Nothing to continue: start the first pattern (after its start token, if any).
        return [self.patterns[0].removeprefix(_EOS_TEXT)] if self.patterns else []


class Mock(Model):
    """A deterministic model for tests: ``models.Mock([b"Paris"])``.

    Args:
        byte_patterns: byte strings (or str) the model prefers to write: at each step it
            continues the pattern whose longest prefix ends the context (starting the first
            pattern when none does) and ends the sequence once a pattern is complete or
            reaches ``<s>``. As in guidance, patterns are written from the start token:
            ``Mock(b"<s>Paris<s>")``.
        chat_template: as for :class:`Transformers`; ChatML by default, whose markers are
            special tokens of the Mock vocabulary.
        merges: the multi-byte tokens of the vocabulary.
        echo: show this Model's steps in the views (in a notebook, the widget); off by
            default for the Mock, so that tests stay quiet.
    """

    def __init__(
        self,
        byte_patterns: Sequence[bytes | str] | bytes | str = (),
        *,
        chat_template: str | ChatTemplate | None = "chatml",
        merges: Iterable[str] = DEFAULT_MERGES,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: int | None = None,
        echo: bool = False,
    ) -> None:
        engine = MockEngine(_patterns(byte_patterns), MockTokenizer(_merges(merges)))
        super().__init__(
            engine,
            chat_template=chat_template,
            sampling=Sampling(top_p=top_p, top_k=top_k, min_p=min_p, seed=seed),
            echo=echo,
        )


def _patterns(byte_patterns: object) -> list[bytes]:
    if isinstance(byte_patterns, (bytes, str)):
        byte_patterns = [byte_patterns]
    if not isinstance(byte_patterns, (list, tuple)) or not all(
        isinstance(p, (bytes, str)) for p in byte_patterns
    ):
        raise WrongTypeError(
            "Mock() takes its byte_patterns as bytes, a str or a list of them, got "
            f'{byte_patterns!r}; e.g. models.Mock([b"Paris", "Rome"])'
        )
    return [p.encode() if isinstance(p, str) else bytes(p) for p in byte_patterns]


def _merges(merges: object) -> list[str]:
    listed = None
    if isinstance(merges, Iterable) and not isinstance(merges, (str, bytes)):
        listed = list(merges)
    if listed is None or not all(isinstance(m, str) for m in listed):
        raise WrongTypeError(
            f"Mock(merges=...) takes a list of str (multi-byte tokens), got {merges!r}; "
            'e.g. merges=["the", " the"]'
        )
    return listed
