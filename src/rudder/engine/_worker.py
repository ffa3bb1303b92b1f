"""The decode loop's second thread: the grammar's mask, computed beside the model's forward.

The model's forward (torch) and llguidance's ``compute_mask`` both release the interpreter
lock, so on a second core the mask is computed while the model runs instead of before it.
The threads come from one process-wide pool, started when first needed and idle between
generations: starting and joining a thread for each generation cost more than a short
generation's masks. A generation waits for what it handed over before it returns (normally,
on an error or on Ctrl-C), so nothing a finished generation started is still running.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

_T = TypeVar("_T")

#: Threads in the pool: one per generation running at once, up to this many (more wait).
MAX_THREADS = 4
THREAD_PREFIX = "rudder-decode"

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # a forked child has none of its parent's threads: it starts its own pool
_unfinished = 0  # calls handed over and not finished, in all generations


class Worker:
    """One generation's use of the pool: closing waits for the call it handed over last
    (the loop waits for each call before it hands over the next)."""

    def __init__(self) -> None:
        self._pending: Future[Any] | None = None

    def submit(self, call: Callable[..., _T], *args: Any) -> Future[_T]:
        global _unfinished
        pool = _shared_pool()
        with _lock:
            _unfinished += 1
        try:
            future = pool.submit(call, *args)
        except BaseException:
            _finished(None)
            raise
        future.add_done_callback(_finished)
        self._pending = future
        return future

    def close(self) -> None:
        """Wait for the call handed over last (whoever handed it over reads its outcome;
        a running mask computation is not interruptible, and takes milliseconds at most)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            wait([pending])

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def idle() -> bool:
    """Whether no call handed to the pool is waiting or running."""
    with _lock:
        return _unfinished == 0


def _finished(_: Future[Any] | None) -> None:
    global _unfinished
    with _lock:
        _unfinished -= 1


def _shared_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid, _unfinished
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix=THREAD_PREFIX)
            _pool_pid = os.getpid()
            _unfinished = 0
        return _pool
