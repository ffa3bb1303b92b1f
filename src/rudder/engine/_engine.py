"""The engine contract: a tokenizer and ``forward(token_ids) -> logits``."""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rudder.engine._tokenizer import EngineTokenizer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Engine(abc.ABC):
    """A local model: everything else (masks, sampling, captures) is the shared loop.

    ``forward`` takes the whole token sequence and returns the logits for the next token
    as a 1-D float array. An engine keeps its own prefix cache (the KV cache of the last
    sequence it saw), so a call that extends the previous sequence only runs the new tokens.

    One engine serves every Model derived from it, from any number of threads: ``forward``
    holds the engine's lock, so calls from different programs never interleave inside the
    model, and each program keeps its own constraint state and random generator.
    """

    def __init__(self, tokenizer: EngineTokenizer, *, context_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        #: The most tokens the model can look at (None: no limit known).
        self.context_length = context_length
        self._lock = threading.Lock()
        #: How many times the model ran, and how many tokens it processed in all.
        self.forward_calls = 0
        self.forward_tokens = 0

    def forward(self, token_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        """Logits for the token after ``token_ids`` (at least one token)."""
        return self.forward_counted(token_ids)[0]

    def forward_counted(self, token_ids: Sequence[int]) -> tuple[npt.NDArray[np.float32], int]:
        """``forward``, and how many of the tokens the model had to process (the rest came
        from its prefix cache)."""
        if not token_ids:
            raise ValueError("forward() needs at least one token")
        with self._lock:
            logits, processed = self._forward(token_ids)
            self.forward_calls += 1
            self.forward_tokens += processed
        return logits, processed

    @property
    def model_name(self) -> str:
        """What the model is called (its hub id or folder for Transformers), for telemetry."""
        return type(self).__name__.removesuffix("Engine").lower() or "engine"

    @abc.abstractmethod
    def _forward(self, token_ids: Sequence[int]) -> tuple[npt.NDArray[np.float32], int]:
        """Run the model; return the logits and how many tokens had to be processed."""

    def note_sampling(self, temperature: float) -> None:  # noqa: B027 (most keep nothing)
        """Called by the decode loop for each token the model chose, with the temperature it
        was chosen at; an engine that keeps figures may record it (the Mock does)."""

    def reset_cache(self) -> None:  # noqa: B027 (engines without a cache need nothing)
        """Forget the prefix cache (the next call runs the whole sequence)."""


class PrefixCachedEngine(Engine):
    """An engine whose model keeps the KV cache of the last sequence it ran.

    ``_forward`` finds the longest common prefix of that sequence and the new one and has
    ``_run`` process only the tokens after it (at least one: logits come from a token that
    runs); the same sequence again returns the last logits without running anything.
    """

    def __init__(self, tokenizer: EngineTokenizer, *, context_length: int | None = None) -> None:
        super().__init__(tokenizer, context_length=context_length)
        self._cached_ids: list[int] = []
        self._last_logits: npt.NDArray[np.float32] | None = None

    def _forward(self, token_ids: Sequence[int]) -> tuple[npt.NDArray[np.float32], int]:
        ids = list(token_ids)
        common = common_prefix(self._cached_ids, ids)
        if common == len(ids) == len(self._cached_ids) and self._last_logits is not None:
            return self._last_logits, 0
        # Forgotten until the run succeeds: a failed run may leave part of a step cached.
        self._cached_ids = []
        self._last_logits = None
        logits, kept = self._run(ids, min(common, len(ids) - 1))
        self._cached_ids = ids
        self._last_logits = logits
        return logits, len(ids) - kept

    @abc.abstractmethod
    def _run(self, ids: list[int], reusable: int) -> tuple[npt.NDArray[np.float32], int]:
        """Drop the cache past its first ``reusable`` tokens, run the rest of ``ids`` and
        return the last position's logits and how many cached tokens were kept (at most
        ``reusable``; 0 when the cache had to be cleared)."""

    def reset_cache(self) -> None:
        self._cached_ids = []
        self._last_logits = None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = min(len(a), len(b))
    if a[:length] == b[:length]:  # the usual case (a sequence extended), compared in C
        return length
    for index in range(length):
        if a[index] != b[index]:
            return index
    return length
