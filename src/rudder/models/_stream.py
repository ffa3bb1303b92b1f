"""``lm.stream()``: the Models of a program as it runs, from a worker thread."""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rudder.models._model import stream_sink

if TYPE_CHECKING:
    from rudder.models._model import Model


class _Closed(Exception):
    """Raised inside the worker when the reader stopped iterating."""


class ModelStream:
    """Steps to run on a Model, yielding every intermediate Model when iterated.

    ``lm.stream() + "Q: " + gen("a")`` runs nothing; iterating runs the steps in a worker
    thread (with a copy of the caller's context, so role blocks apply) and yields each Model
    as it is made, token by token during generation; the last one yielded is the result.
    Leaving the loop early stops the program at its next token.
    """

    def __init__(self, model: Model, steps: tuple[object, ...]) -> None:
        self._model = model
        self._steps = steps

    def __add__(self, step: object) -> ModelStream:
        return ModelStream(self._model, (*self._steps, step))

    def __iter__(self) -> Iterator[Model]:
        messages: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=64)
        closed = threading.Event()

        def sink(model: Model) -> None:
            if closed.is_set():
                raise _Closed
            messages.put(("model", model))

        def work() -> None:
            stream_sink.set(sink)
            try:
                lm = self._model
                for step in self._steps:
                    lm = lm + step
                messages.put(("done", lm))
            except _Closed:
                return
            except BaseException as error:  # handed to the reader, which re-raises it
                messages.put(("error", error))

        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(work,), daemon=True)
        worker.start()
        last: object = None
        try:
            while True:
                kind, value = messages.get()
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                if kind == "done" and value is last:
                    return
                last = value
                yield value  # type: ignore[misc]
                if kind == "done":
                    return
        finally:
            closed.set()
            while worker.is_alive():
                with contextlib.suppress(queue.Empty):
                    messages.get(timeout=0.05)
