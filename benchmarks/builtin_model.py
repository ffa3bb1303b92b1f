"""The built-in model's size, its training run and the demo's wall time on this machine.

    python benchmarks/builtin_model.py [--runs 3] [--out benchmarks/results/builtin_model.json]

* size: every file of the shipped model (``src/rudder/_builtin/model``), in bytes;
* parameters: counted on the loaded model (tied weights once);
* training: what ``python -m rudder._builtin.train`` recorded in ``training.json`` when the
  shipped model was trained (steps, final loss, seconds, seed, torch threads);
* demo: ``python -m rudder demo`` run as a subprocess ``--runs`` times with
  ``OMP_NUM_THREADS=1``: the median wall time of the whole process (start-up, imports,
  loading, the program, the report) and of the program alone (as the demo prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_PROGRAM_WALL = re.compile(r"program wall time:\s+([0-9.]+) s")


def model_files(directory: Path) -> dict[str, Any]:
    sizes = {
        path.name: path.stat().st_size for path in sorted(directory.iterdir()) if path.is_file()
    }
    return {"files": sizes, "total_bytes": sum(sizes.values())}


def parameters(directory: Path) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(directory)
    return sum(parameter.numel() for parameter in model.parameters())


def demo_wall_times(runs: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process_s: list[float] = []
    program_s: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for index in range(runs):
            report = Path(directory) / f"demo-{index}.html"
            command = [sys.executable, "-m", "rudder", "demo", "--output", str(report)]
            started = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            process_s.append(time.perf_counter() - started)
            match = _PROGRAM_WALL.search(result.stdout)
            if match is None:
                raise RuntimeError(f"the demo printed no program wall time:\n{result.stdout}")
            program_s.append(float(match.group(1)))
    return {
        "runs": runs,
        "torch_threads": 1,
        "process_wall_s_median": statistics.median(process_s),
        "program_wall_s_median": statistics.median(program_s),
        "process_wall_s": process_s,
        "program_wall_s": program_s,
        "last_output": result.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/builtin_model.json")
    args = parser.parse_args()

    import torch

    from rudder._builtin import TRAINING_FILE, builtin_model_path

    directory = builtin_model_path()
    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "size": model_files(directory),
        "parameters": parameters(directory),
        "training": json.loads((directory / TRAINING_FILE).read_text()),
        "demo": demo_wall_times(args.runs),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
