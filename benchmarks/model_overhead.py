"""rudder's own cost on a tiny local model: per append, and per generated token.

    python benchmarks/model_overhead.py [--out benchmarks/results/model_overhead.json]

* appends: a program of 1,000 ``lm += "short text"`` on a Transformers model; the time
  per append (nothing is tokenized and the model does not run).
* tokens: 10,000 generated tokens on the tiny Llama-style model, greedy; rudder's own time
  per token is the generation's total time minus the time inside the model's forward
  (mask, sampling, candidate recording, bookkeeping all count as rudder's). Measured for
  unconstrained text, for a regex, and for unconstrained text without recording the top
  candidates of each step (``Sampling.candidates=0``).
* short generations: a program that writes an item's label, then a ``gen`` to the end of
  the line and a ``select`` after fixed text, 100 times (the same two grammars each time,
  the prompt growing to about 2,000 tokens); rudder's own time per generation (its time
  minus the model's forward): the grammar's interpreter, token healing over the prompt's
  end, the masks, sampling and bookkeeping.

Runs with one torch thread. Targets (issue 8): an append at most 20 us, rudder's own cost
per generated token at most 0.1 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

APPENDS = 1_000
TOKENS = 10_000
CHUNK = 500  # tokens per generation: keeps the prompt well inside the context
SHORT_ITEMS = 100
GRADES = ["A", "B", "C"]


def measure_appends(lm: Any) -> dict[str, float]:
    runs = []
    for _ in range(5):
        program = lm
        started = time.perf_counter()
        for index in range(APPENDS):
            program += f"line {index}\n"
        runs.append((time.perf_counter() - started) / APPENDS)
    assert str(program).count("\n") == APPENDS
    return {"appends": APPENDS, "per_append_us_median": statistics.median(runs) * 1e6}


def measure_tokens(lm: Any, grammar_factory: Any) -> dict[str, float]:
    generated = library = forward = total = 0.0
    calls = 0
    while generated < TOKENS:
        result = lm + "Once upon a time" + grammar_factory()
        stats = result.generation
        generated += sum(1 for t in stats.tokens if t.kind.value == "generated")
        library += stats.total_s - stats.forward_s
        forward += stats.forward_s
        total += stats.total_s
        calls += stats.forward_passes
    return {
        "generated_tokens": generated,
        "forward_calls": calls,
        "library_ms_per_token": library / generated * 1e3,
        "forward_ms_per_token": forward / generated * 1e3,
        "total_ms_per_token": total / generated * 1e3,
    }


def measure_short_generations(lm: Any) -> dict[str, float]:
    from rudder import gen, select

    runs = []
    for _ in range(3):
        program = lm + "Grades:\n"
        library = 0.0
        generations = 0
        for index in range(SHORT_ITEMS):
            program += f"Item {index}: "
            for grammar in (gen(stop="\n", max_tokens=5), " grade " + select(GRADES) + "\n"):
                program += grammar
                stats = program.generation
                library += stats.total_s - stats.forward_s
                generations += 1
        runs.append(library / generations)
    return {
        "generations": generations,
        "prompt_tokens_at_the_end": stats.prompt_tokens,
        "library_ms_per_generation_median": statistics.median(runs) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/model_overhead.json")
    args = parser.parse_args()

    import torch

    from rudder import gen, models
    from rudder._tiny_models import build_tiny_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        path = build_tiny_model(Path(directory) / "llama", "llama")
        lm = models.Transformers(str(path))
        lm + "warm up" + gen(max_tokens=8)
        results: dict[str, Any] = {
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "processor": platform.processor() or platform.machine(),
            },
            "append": measure_appends(lm),
            "tokens_unconstrained": measure_tokens(lm, lambda: gen(max_tokens=CHUNK)),
            "tokens_regex": measure_tokens(lm, lambda: gen(regex="[a-z ]+", max_tokens=CHUNK)),
            # The same without recording the top candidates of each step.
            "tokens_no_candidates": measure_tokens(
                lm.with_sampling(candidates=0), lambda: gen(max_tokens=CHUNK)
            ),
            "short_generations": measure_short_generations(lm),
        }
    results["targets"] = {
        "per_append_us": 20.0,
        "library_ms_per_token": 0.1,
        "append_met": results["append"]["per_append_us_median"] <= 20.0,
        "tokens_met": all(
            results[k]["library_ms_per_token"] <= 0.1
            for k in ("tokens_unconstrained", "tokens_regex")
        ),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
