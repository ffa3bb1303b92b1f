"""The rudder side: ``python -m benchmarks.compare.rudder_worker``, in rudder's environment.

Models run quiet (``settings.echo`` and ``settings.monitor`` off) except in case 5, which
turns both on and subscribes a renderer to the bus, as ``benchmarks/trace_overhead.py`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from benchmarks.compare import worker


class RudderAdapter:
    name = "rudder"

    def __init__(self) -> None:
        import rudder

        self.lib = rudder
        rudder.settings.echo = rudder.settings.monitor = False

    def load(self, path: str) -> tuple[Any, Any, Any]:
        from transformers import AutoTokenizer

        lm = self.lib.models.Transformers(path)
        return lm, lm.engine.model, AutoTokenizer.from_pretrained(path)

    def captures(self, lm: Any) -> dict[str, Any]:
        return dict(lm.captures)

    def forget_cache(self, lm: Any) -> None:
        lm.engine.reset_cache()

    @contextlib.contextmanager
    def instrumentation(self, lm: Any, on: bool) -> Iterator[tuple[Any, list[Any]]]:
        from benchmarks.trace_overhead import Recorder
        from rudder.visual import get_bus

        settings = self.lib.settings
        recorder = Recorder()
        settings.echo = settings.monitor = on
        subscription = get_bus().subscribe(recorder) if on else None
        try:
            with self.lib.run("benchmark"):
                yield lm, recorder.messages
            if subscription is not None:
                subscription.wait_idle(60)
        finally:
            if subscription is not None:
                subscription.close()
            settings.echo = settings.monitor = False
            get_bus().clear()


if __name__ == "__main__":
    worker.quiet_environment()
    worker.run(RudderAdapter())
