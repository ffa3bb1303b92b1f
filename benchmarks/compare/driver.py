"""``python -m benchmarks``: sets up the peer, builds the models, runs the cases, writes results.

The driver itself loads no model: it starts two workers (rudder in this interpreter's
environment, guidance in the peer's), sends them commands (:mod:`.protocol`) and writes
``results.md`` and ``results/compare.json`` under ``--output`` (default ``benchmarks/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shlex
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.compare import cases, models, peer, report, targets
from benchmarks.compare.protocol import Worker

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="rudder and guidance side by side: six cases, one command.",
    )
    parser.add_argument("--tiny", action="store_true", help="few runs, short programs (tests)")
    parser.add_argument("--cases", default="1,2,3,4,5,6", help="which cases, e.g. 1,3")
    parser.add_argument("--runs", type=int, help="measured runs per figure")
    parser.add_argument(
        "--skip-standalone",
        action="store_true",
        help="do not run the benchmarks that measure rudder alone (trace, model, client)",
    )
    parser.add_argument("--output", type=Path, default=BENCHMARKS, help="where results go")
    parser.add_argument(
        "--cache", type=Path, default=models.CACHE, help="where the built models and logs go"
    )
    arguments = parser.parse_args(argv)
    wanted = sorted({int(part) for part in arguments.cases.split(",") if part.strip()})
    unknown = set(wanted) - set(cases.CASES)
    if unknown or not wanted:
        parser.error(f"--cases takes numbers from 1 to 6, got {arguments.cases!r}")
    if arguments.runs is not None and arguments.runs < 1:
        parser.error("--runs must be at least 1")
    arguments.case_numbers = wanted
    return arguments


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _worker_environment(side: str) -> dict[str, str]:
    """The workers' environment. rudder's worker imports the rudder of the checkout these
    benchmarks are run from (not whatever an editable install points at), unless
    PYTHONPATH names another; the peer's sees the benchmarks package and nothing of
    rudder's."""
    paths = [str(ROOT)]
    if side == "rudder":
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        paths = [*inherited, str(ROOT / "src"), str(ROOT)]
    environment = dict(os.environ)
    environment.update(
        PYTHONPATH=os.pathsep.join(paths),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return environment


def _machine(load_before: tuple[float, ...]) -> dict[str, Any]:
    import psutil

    processor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "processor": processor,
        "cores": usable,
        "memory_gb": psutil.virtual_memory().total / 1e9,
        "system": f"{platform.system()} {platform.release()}",
        "load_before": ", ".join(f"{value:.1f}" for value in load_before),
        "load_after": ", ".join(f"{value:.1f}" for value in os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    config = cases.TINY if arguments.tiny else cases.Config()
    if arguments.runs is not None:
        config = dataclasses.replace(config, runs=arguments.runs)
    peer_python = peer.ensure_peer(say=_say)
    _say(f"models: building or reusing them in {arguments.cache}")
    wide = models.build_wide_model(arguments.cache / "wide")
    chat, chat_kind = models.chat_model(arguments.cache)
    if chat_kind == "tiny":
        _say("models: rudder's built-in model is not built here; case 4 uses the tiny model")
    interpreters = {"rudder": sys.executable, "guidance": str(peer_python)}
    with ExitStack() as stack:
        workers = {
            side: stack.enter_context(
                Worker(
                    side,
                    [interpreters[side], "-m", f"benchmarks.compare.{side}_worker"],
                    env=_worker_environment(side),
                    cwd=ROOT,
                    log=arguments.cache / "logs" / f"{side}-worker.log",
                )
            )
            for side in cases.SIDES
        }
        versions = {side: workers[side].call("hello") for side in cases.SIDES}
        for side in cases.SIDES:
            workers[side].call("load", models={"wide": str(wide), "chat": str(chat)})
        setting = cases.Setting(workers, config, chat_kind)
        done = []
        for number in arguments.case_numbers:
            case_started = time.perf_counter()
            _say(f"case {number}: running")
            done.append(cases.CASES[number](setting))
            _say(f"case {number}: done in {time.perf_counter() - case_started:.0f} s")
    if not (arguments.tiny or arguments.skip_standalone):
        targets.run_standalone(arguments.output / "results", _say)
    header = {
        "command": shlex.join(["python", "-m", "benchmarks", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "seconds": time.perf_counter() - started,
        "machine": _machine(load_before),
        "libraries": versions,
        "models": (
            "a Llama-style model of one layer (hidden size 64) over a 32,000-token BPE "
            "vocabulary with a 131,072-token context, random weights (cases 1, 2, 3, 5, 6); "
            + (
                "rudder's built-in model (case 4)"
                if chat_kind == "builtin"
                else "the tiny test model of rudder._tiny_models (case 4: the built-in model "
                "is not built in this checkout)"
            )
        ),
        "config": dataclasses.asdict(config),
    }
    markdown, data = report.write(arguments.output, header, done, targets=not arguments.tiny)
    _say(f"wrote {markdown} and {data}")
