"""What keeping runs in a store adds to a generation.

    python benchmarks/store_overhead.py [--out benchmarks/results/store_overhead.json]

The same generation (2,000 tokens on the tiny Llama-style model, greedy, one torch thread,
echo on, the monitor on) runs alternately in two modes, several times each:

* without: nothing subscribed to the bus (a script whose output goes to a pipe);
* with: ``rudder.settings.store`` set to a file in a temporary folder, so the store's
  writer subscribes to the bus and writes every message.

Reported, per mode: the generation's wall time (median, fastest) and the process's CPU time
from the generation's start until the store holds all of it (the writer's threads
included; without a store, until the generation ends), and their ratios (target: at most
1.03). On a machine shared with other work, wall time mostly measures waiting for a core;
CPU time measures the work the store adds. With the store, the CPU time of each thread:
the generating thread, the bus subscription's (it builds the messages, as for any view)
and the store writer's (JSON and SQLite), each as a share of the generating thread's.
Also: how long after the generation the store held everything (the writer's lag; the
generation does not wait for it), and the store's size per token.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# The same generation as the trace benchmark (run as a script: its folder is on the path).
from trace_overhead import TOKENS, machine, one_generation

REPEATS = 7
TARGET = 1.03


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each of this process's threads, by thread name."""
    import threading

    import psutil

    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    return {
        names.get(thread.id, str(thread.id)): thread.user_time + thread.system_time
        for thread in psutil.Process().threads()
    }


def ratio(times: dict[str, list[float]], pick: Any) -> float:
    return float(pick(times["with"]) / pick(times["without"]))


def share(threads: dict[str, list[float]], name: str) -> float:
    """Median over runs of a thread's CPU time as a share of the generating thread's."""
    pairs = zip(threads[name], threads["MainThread"], strict=True)
    return statistics.median(spent / main for spent, main in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/store_overhead.json")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()

    import torch

    import rudder
    from rudder import models
    from rudder._tiny_models import build_tiny_model
    from rudder.store import Store
    from rudder.store._writer import current_writer
    from rudder.visual import get_bus

    torch.set_num_threads(1)
    rudder.settings.echo = rudder.settings.monitor = True
    times: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    lags: list[float] = []
    threads: dict[str, list[float]] = {"MainThread": [], "rudder-renderer": [], "rudder-store": []}
    with tempfile.TemporaryDirectory() as directory:
        path = build_tiny_model(Path(directory) / "llama", "llama")
        store_path = Path(directory) / "runs.sqlite"
        lm = models.Transformers(str(path))
        lm + "warm up" + rudder.gen(max_tokens=8)
        get_bus().clear()
        for _ in range(args.repeats):
            for mode in ("without", "with"):
                if mode == "with":
                    rudder.settings.store = store_path
                    assert (writer := current_writer()) is not None
                    assert writer.flush(120)
                cpu_started, threads_before = time.process_time(), thread_cpu()
                elapsed, run = one_generation(lm)
                times[mode].append(elapsed)
                writer = current_writer()
                if writer is not None:
                    started = time.perf_counter()
                    assert writer.flush(120)
                    lags.append(time.perf_counter() - started)
                cpu[mode].append(time.process_time() - cpu_started)
                if mode == "with":
                    threads_after = thread_cpu()
                    for name, spent in threads.items():
                        spent.append(threads_after[name] - threads_before[name])
                rudder.settings.store = None
                get_bus().clear()
        with Store(store_path, create=False) as store:
            summary = store.run(run.id)
            stored_bytes, stored_messages = summary.bytes, summary.messages
        file_bytes = store_path.stat().st_size
        rudder.settings.store = None
    without, with_store = statistics.median(times["without"]), statistics.median(times["with"])
    results = {
        "machine": machine(),
        "tokens": TOKENS,
        "repeats": args.repeats,
        "seconds_without": times["without"],
        "seconds_with": times["with"],
        "cpu_seconds_without": cpu["without"],
        "cpu_seconds_with": cpu["with"],
        "median_s_without": without,
        "median_s_with": with_store,
        "ratio_with_to_without": with_store / without,
        "fastest_ratio_with_to_without": ratio(times, min),
        "median_cpu_s_without": statistics.median(cpu["without"]),
        "median_cpu_s_with": statistics.median(cpu["with"]),
        "cpu_ratio_with_to_without": ratio(cpu, statistics.median),
        "least_cpu_ratio_with_to_without": ratio(cpu, min),
        "thread_cpu_s_with": threads,
        "subscription_thread_cpu_share": share(threads, "rudder-renderer"),
        "writer_thread_cpu_share": share(threads, "rudder-store"),
        "writer_lag_s_median": statistics.median(lags),
        "writer_lag_s_max": max(lags),
        "messages_per_run": stored_messages,
        "stored_message_bytes_per_token": stored_bytes / TOKENS,
        "store_file_bytes_after_all_runs": file_bytes,
        "target_ratio": TARGET,
        "target_met_wall": with_store / without <= TARGET,
        "target_met_cpu": ratio(cpu, statistics.median) <= TARGET,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    shown = {k: v for k, v in results.items() if "seconds_" not in k}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
