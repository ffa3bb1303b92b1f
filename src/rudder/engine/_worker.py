"""The decode loop's second thread: the grammar's mask, computed beside the model's forward.

The model's forward (torch) and llguidance's ``compute_mask`` both release the interpreter
lock, so on a second core the mask is computed while the model runs instead of before it.
One worker per generation, started when first used and joined when the generation ends
(normally, on an error or on Ctrl-C), so no thread outlives the generation that started it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")


class Worker:
    """One thread running submitted calls in order."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, call: Callable[..., _T], *args: Any) -> Future[_T]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="rudder-decode")
        return self._executor.submit(call, *args)

    def close(self) -> None:
        """Wait for the calls submitted and stop the thread (a running mask computation is
        not interruptible, and takes milliseconds at most)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
