"""The guidance side: ``python -m benchmarks.compare.guidance_worker``, in the peer's environment.

Models run with ``echo=False`` and ``enable_monitoring=False``. Case 5's "on" is guidance's
own instrumentation: a Model made with ``echo=True`` (token probabilities and top-k recorded,
trace messages published on guidance's exchange) and ``enable_monitoring=True`` (its CPU
and memory monitor), with a subscriber on the exchange that keeps every message, standing
for a view. This module must not import rudder: its environment has none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from benchmarks.compare import worker


class GuidanceAdapter:
    name = "guidance"

    def __init__(self) -> None:
        import guidance

        self.lib = guidance
        self._sources: dict[int, tuple[Any, Any]] = {}
        self._echoing: dict[int, Any] = {}

    def load(self, path: str) -> tuple[Any, Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        lm = self.lib.models.Transformers(model, tokenizer, echo=False, enable_monitoring=False)
        self._sources[id(lm)] = (model, tokenizer)
        return lm, model, tokenizer

    def captures(self, lm: Any) -> dict[str, Any]:
        # guidance 0.3 has no public list of a Model's captures; its state holds them.
        return {name: lm[name] for name in lm._interpreter.state.captures}

    def forget_cache(self, lm: Any) -> None:
        # The three attributes TransformersEngine.get_logits keeps its cache in (no public reset).
        engine = lm.engine
        engine._past_key_values = None
        engine._cached_token_ids = []
        engine._cached_logits = None

    def _monitor(self, on: bool) -> None:
        # guidance's monitor is a process-wide singleton that, once started, runs for good:
        # "off" stops it and pauses its metrics messages, "on" starts it again.
        from guidance.registry import _registry, get_monitor

        if on:
            monitor = get_monitor()
            if monitor.task is None:
                monitor.start()
            _registry._periodic_metrics_gen.resume()
        elif _registry._monitor is not None:
            _registry._monitor.stop()
            _registry._periodic_metrics_gen.pause()

    def _echoing_model(self, lm: Any) -> Any:
        if id(lm) not in self._echoing:
            model, tokenizer = self._sources[id(lm)]
            self._echoing[id(lm)] = self.lib.models.Transformers(
                model, tokenizer, echo=True, enable_monitoring=True
            )
        return self._echoing[id(lm)]

    @contextlib.contextmanager
    def instrumentation(self, lm: Any, on: bool) -> Iterator[tuple[Any, list[Any]]]:
        from guidance.registry import get_exchange

        messages: list[Any] = []
        if not on:
            self._monitor(False)
            yield lm, messages
            return
        echoing = self._echoing_model(lm)
        self._monitor(True)
        keep = messages.append
        get_exchange().subscribe(keep)
        try:
            yield echoing, messages
        finally:
            get_exchange().unsubscribe(keep)


if __name__ == "__main__":
    worker.quiet_environment()
    worker.run(GuidanceAdapter())
