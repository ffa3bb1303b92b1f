"""The commands both workers answer, over a small adapter per library.

A worker holds the loaded models for its whole life; the driver sends it one command per
measured run (see :mod:`benchmarks.compare.cases`). What differs between rudder and
guidance (loading, switching instrumentation, reading captures) is the ``Adapter``; the
programs themselves are :mod:`benchmarks.compare.programs`, the same for both.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from types import ModuleType
from typing import Any, Protocol

from benchmarks.compare import measure, programs, protocol


class Adapter(Protocol):
    """What a worker needs of a library."""

    name: str
    lib: ModuleType

    def load(self, path: str) -> tuple[Any, Any, Any]:
        """A quiet Model (no view, no monitor), its Hugging Face model and tokenizer."""
        ...

    def captures(self, lm: Any) -> dict[str, Any]: ...

    def forget_cache(self, lm: Any) -> None:
        """Empty the engine's KV cache, so that a run cannot reuse the last one's work."""
        ...

    def instrumentation(self, lm: Any, on: bool) -> contextlib.AbstractContextManager[Any]:
        """Views and metrics on or off for the block; yields the Model to run in place of
        ``lm`` and a list that collects what a view was sent."""
        ...


@dataclass
class Loaded:
    lm: Any
    counter: measure.ForwardCounter
    tokenizer: Any


class Commands:
    """The handlers, by name, of :func:`benchmarks.compare.protocol.serve`."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.models: dict[str, Loaded] = {}
        self._prefixes: dict[tuple[str, int], Any] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "hello": self.hello,
            "load": self.load,
            "generate": self.generate,
            "floor": self.floor,
            "build": self.build,
            "instrumented": self.instrumented,
        }

    def hello(self) -> dict[str, Any]:
        import torch

        return {
            "library": self.adapter.name,
            "version": self.adapter.lib.__version__,
            "llguidance": version("llguidance"),
            "transformers": version("transformers"),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        }

    def load(self, models: dict[str, str]) -> dict[str, int]:
        sizes = {}
        for key, path in models.items():
            lm, hf_model, tokenizer = self.adapter.load(path)
            self.models[key] = Loaded(lm, measure.ForwardCounter(hf_model), tokenizer)
            sizes[key] = len(tokenizer)
        return sizes

    def _tokens_added(self, loaded: Loaded, before: Any, after: Any) -> int:
        """Tokens a program added, counted one way for both libraries: the final text's
        tokens minus the starting text's (template markers count as one token each)."""

        def count(lm: Any) -> int:
            return len(loaded.tokenizer.encode(str(lm), add_special_tokens=False))

        return count(after) - count(before)

    def generate(self, model: str, program: str, args: dict[str, Any]) -> dict[str, Any]:
        loaded = self.models[model]
        run = programs.GENERATIONS[program]
        result, figures = measure.timed(
            loaded.counter, lambda: run(self.adapter.lib, loaded.lm, **args)
        )
        figures["tokens"] = self._tokens_added(loaded, loaded.lm, result)
        figures["captures"] = self.adapter.captures(result)
        return figures

    def floor(self, model: str, grammar: dict[str, Any], text: str) -> dict[str, float]:
        return measure.mask_floor(self.models[model].tokenizer, grammar, text)

    def build(
        self,
        model: str,
        kind: str,
        size: int,
        memory: bool,
        prefix: int,
        time_limit_s: float,
        then_token: bool = False,
    ) -> dict[str, Any]:
        """Case 3: ``appends`` of ``size`` steps (``then_token``: and one generated token), or
        ``branches``: ``size`` continuations of a prefix of ``prefix`` lines. Appends stop
        early, between chunks, once ``time_limit_s`` has passed (and then no token follows)."""
        loaded = self.models[model]
        if kind == "branches":
            start = self._prefix(model, prefix)
            action = lambda: (programs.branches(start, size), size, 0.0)  # noqa: E731
        else:
            # Each run starts cold: the last run's program must not be in the KV cache.
            self.adapter.forget_cache(loaded.lm)
            action = lambda: self._appends(loaded.lm, size, time_limit_s, then_token)  # noqa: E731
        if memory:
            (built, done, appends_s), peak = measure.peak_python_memory(action)
            figures: dict[str, Any] = {"peak_bytes": peak}
        else:
            (built, done, appends_s), figures = measure.timed(loaded.counter, action)
        figures["steps_done"] = done
        figures["appends_s"] = appends_s
        # The programs hold what was appended (checked outside the measurement).
        lines = min(str(program).count("\n") for program in built)
        expected = prefix + 1 if kind == "branches" else done
        if lines < expected:
            raise RuntimeError(f"{kind}: a program holds {lines} lines, not {expected}")
        return figures

    def _appends(
        self, lm: Any, size: int, time_limit_s: float, then_token: bool
    ) -> tuple[list[Any], int, float]:
        started = time.perf_counter()
        done = 0
        while done < size and time.perf_counter() - started < time_limit_s:
            chunk = min(50, size - done)
            lm = programs.appends(lm, chunk, start=done)
            done += chunk
        appends_s = time.perf_counter() - started
        if then_token and done == size:
            lm += self.adapter.lib.gen(max_tokens=1)
        return [lm], done, appends_s

    def _prefix(self, model: str, lines: int) -> Any:
        key = (model, lines)
        if key not in self._prefixes:
            self._prefixes[key] = programs.long_prefix(self.models[model].lm, lines)
        return self._prefixes[key]

    def instrumented(self, model: str, on: bool, tokens: int) -> dict[str, Any]:
        """Case 5: one long generation with views and metrics on or off."""
        loaded = self.models[model]
        with self.adapter.instrumentation(loaded.lm, on) as (lm, messages):
            result, figures = measure.timed(
                loaded.counter, lambda: programs.long_regex(self.adapter.lib, lm, tokens)
            )
            started = time.perf_counter()
        # Leaving the block waits until the view has everything (rudder's is a thread).
        figures["view_catch_up_s"] = time.perf_counter() - started
        figures["messages"] = len(messages)
        figures["tokens"] = self._tokens_added(loaded, lm, result)
        return figures


def quiet_environment() -> None:
    """One torch thread, no hub, no tokenizer threads: what every worker runs with."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)


def run(adapter: Adapter) -> None:
    """A worker's main: serve commands until the driver closes stdin."""
    protocol.serve(Commands(adapter).handlers())
    sys.stdout.flush()
