"""rudder and guidance on llama.cpp, side by side: the library's time per output token.

    python -m benchmarks.llama_cpp [--runs 5] [--out benchmarks/results/llama_cpp.json]

Both load the same GGUF file (the comparison's 32k-vocabulary Llama-style model, written
with ``rudder._tiny_gguf``) through llama-cpp-python with one thread, and run case 1's
programs (``benchmarks.compare.programs``: 1,000 tokens of a regex, an array of 20 records
from a JSON schema), greedy. The library's time is the program's wall time minus the time
inside the engine's model call (rudder's ``LlamaCppEngine._forward``, guidance's
``LlamaCppEngine.get_logits``: llama.cpp's decode and reading the logits), per output token
(the output's tokens as llama.cpp tokenizes it). Runs alternate between the two sides.

guidance runs in a virtual environment of its own (``benchmarks.compare.peer``, at
``$RUDDER_TEST_CACHE/guidance-llama-cpp``) with llama-cpp-python installed from the wheel
``scripts/install-llama-cpp`` keeps; this module is its worker too (``--side guidance``), so
it imports nothing from rudder at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
REGEX_TOKENS = 1_000
JSON_RECORDS = 20
CONTEXT = 4_096
SETTINGS: dict[str, Any] = {"n_ctx": CONTEXT, "n_threads": 1, "n_threads_batch": 1}


def _timed_method(owner: Any, name: str) -> list[float]:
    """Wrap ``owner.name`` so that each call's seconds are appended to the returned list."""
    spent: list[float] = []
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    setattr(owner, name, wrapper)
    return spent


def run_side(side: str, gguf: str, runs: int) -> list[dict[str, Any]]:
    """Each program ``runs`` times on one side; the figures of each run."""
    from benchmarks.compare import programs

    if side == "rudder":
        import rudder as lib

        lm = lib.models.LlamaCpp(gguf, echo=False, **SETTINGS)
        engine = lm.engine
        llama = engine.llama  # type: ignore[attr-defined]
        spent = _timed_method(engine, "_forward")
        version = lib.__version__
    else:
        import guidance as lib

        lm = lib.models.LlamaCpp(gguf, echo=False, enable_monitoring=False, **SETTINGS)
        engine = lm._interpreter.engine
        llama = engine.model_obj
        spent = _timed_method(engine, "get_logits")
        version = lib.__version__
    cases = {
        "regex": lambda: programs.long_regex(lib, lm, REGEX_TOKENS),
        "json": lambda: programs.long_json(lib, lm, JSON_RECORDS),
    }
    cases["regex"]()  # warm up: grammar caches, first allocations
    results = []
    for _ in range(runs):
        for name, program in cases.items():
            spent.clear()
            started = time.perf_counter()
            out = program()
            wall = time.perf_counter() - started
            tokens = len(llama.tokenize(str(out["out"]).encode(), add_bos=False))
            forward = sum(spent)
            results.append(
                {
                    "side": side,
                    "version": version,
                    "case": name,
                    "tokens": tokens,
                    "forward_calls": len(spent),
                    "wall_s": wall,
                    "forward_s": forward,
                    "library_ms_per_token": (wall - forward) / tokens * 1e3,
                    "forward_ms_per_token": forward / tokens * 1e3,
                }
            )
    return results


def _gguf_model() -> Path:
    from benchmarks.compare.models import CACHE, build_wide_model
    from rudder._tiny_gguf import write_tiny_gguf

    wide = build_wide_model(CACHE / "wide")
    return write_tiny_gguf(wide, CACHE / "wide.gguf")


def _guidance_python() -> Path:
    from benchmarks.compare.peer import ensure_peer

    cache = Path(os.environ.get("RUDDER_TEST_CACHE") or Path.home() / ".cache" / "rudder-tests")
    python = ensure_peer(cache / "guidance-llama-cpp")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-llama-cpp")],
        env={**os.environ, "PYTHON": str(python)},
        check=True,
    )
    return python


def _median(rows: list[dict[str, Any]], side: str, case: str, key: str) -> float:
    return statistics.median(r[key] for r in rows if r["side"] == side and r["case"] == case)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/llama_cpp.json")
    parser.add_argument("--side", choices=["guidance"], help=argparse.SUPPRESS)
    parser.add_argument("--gguf", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:  # the guidance worker: one run of each program, as JSON on stdout
        print(json.dumps(run_side(args.side, args.gguf, 1)))
        return

    gguf = str(_gguf_model())
    guidance_python = _guidance_python()
    rows: list[dict[str, Any]] = []
    for index in range(args.runs):
        order = ["rudder", "guidance"] if index % 2 == 0 else ["guidance", "rudder"]
        for side in order:
            if side == "rudder":
                rows.extend(run_side("rudder", gguf, 1))
                continue
            worker = subprocess.run(
                [str(guidance_python), "-m", "benchmarks.llama_cpp", "--side", "guidance",
                 "--gguf", gguf],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.extend(json.loads(worker.stdout.splitlines()[-1]))
    summary = {
        case: {
            side: {
                key: _median(rows, side, case, key)
                for key in ("library_ms_per_token", "forward_ms_per_token", "tokens")
            }
            for side in ("rudder", "guidance")
        }
        for case in ("regex", "json")
    }
    for figures in summary.values():
        figures["library_ratio"] = {
            "rudder_over_guidance": figures["rudder"]["library_ms_per_token"]
            / figures["guidance"]["library_ms_per_token"]
        }
    import llama_cpp

    results = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "llama_cpp_python": llama_cpp.__version__,
        "settings": SETTINGS,
        "summary": summary,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
