"""The cost of the trace, the instrumentation and a renderer, side by side with none of it.

    python benchmarks/trace_overhead.py [--out benchmarks/results/trace_overhead.json]

The same generation (2,000 tokens on the tiny Llama-style model, greedy, one torch
thread) runs alternately in two modes, several times each:

* on: ``rudder.settings.echo`` and ``monitor`` on, and a renderer subscribed to the bus
  that keeps every message (the trace is always built: it is the Model's structure);
* off: echo and the monitor off, nothing subscribed.

Reported: the median and the fastest wall time of each mode and their ratios (target: at
most 1.03; on shared machines the fastest runs are the least disturbed), and the messages of
one run: how many, and their JSON size per generated token.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TOKENS = 2_000
#: Text that cannot end before the token limit: an open-ended regex ends where the model's
#: own choice is not allowed (as in guidance), after a few dozen tokens on the tiny model.
LONG_TEXT = f"[a-z ]{{{TOKENS * 8}}}"
REPEATS = 7
TARGET_RATIO = 1.03


class Recorder:
    """A renderer that keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def send(self, message: Any) -> None:
        self.messages.append(message)


def one_generation(lm: Any) -> tuple[float, Any]:
    import rudder

    with rudder.run("benchmark") as run:
        # As python -m benchmarks does: a collection of garbage an earlier run left (the
        # recorder keeps every message) must not land in this run's time.
        gc.collect()
        started = time.perf_counter()
        result = lm + "Once upon a time" + rudder.gen(regex=LONG_TEXT, max_tokens=TOKENS)
        elapsed = time.perf_counter() - started
    # Healing may add a token that re-makes the prompt's last bytes.
    assert result.usage.output_tokens >= TOKENS, result.usage
    return elapsed, run


def machine() -> dict[str, Any]:
    """The interpreter, torch and processor a figure was measured on."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/trace_overhead.json")
    args = parser.parse_args()

    import torch

    import rudder
    from rudder import models
    from rudder._tiny_models import build_tiny_model
    from rudder.visual import get_bus

    torch.set_num_threads(1)
    recorder = Recorder()
    times: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as directory:
        path = build_tiny_model(Path(directory) / "llama", "llama")
        lm = models.Transformers(str(path))
        lm + "warm up" + rudder.gen(max_tokens=8)
        last_run = None
        for _ in range(REPEATS):
            for mode in ("off", "on"):
                rudder.settings.echo = rudder.settings.monitor = mode == "on"
                subscription = get_bus().subscribe(recorder) if mode == "on" else None
                elapsed, run = one_generation(lm)
                times[mode].append(elapsed)
                if subscription is not None:
                    subscription.wait_idle(60)
                    subscription.close()
                    last_run = run
                get_bus().clear()
    assert last_run is not None
    messages = [m for m in recorder.messages if m.run_id == last_run.id]
    size = sum(len(m.model_dump_json()) for m in messages)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    fastest_on, fastest_off = min(times["on"]), min(times["off"])
    results = {
        "machine": machine(),
        "tokens": TOKENS,
        "repeats": REPEATS,
        "seconds_on": times["on"],
        "seconds_off": times["off"],
        "median_s_on": on,
        "median_s_off": off,
        "ratio_on_to_off": on / off,
        "fastest_s_on": fastest_on,
        "fastest_s_off": fastest_off,
        "fastest_ratio_on_to_off": fastest_on / fastest_off,
        "messages_per_run": len(messages),
        "message_types": sorted({m.type for m in messages}),
        "message_bytes_per_token": size / TOKENS,
        "monitor_samples_last_run": len(last_run.samples),
        "target_ratio": TARGET_RATIO,
        "target_met": on / off <= TARGET_RATIO,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if not k.startswith("seconds")}, indent=2))


if __name__ == "__main__":
    main()
