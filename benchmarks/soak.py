"""Memory of a process that runs small programs for ever, for each view.

    python benchmarks/soak.py [--programs 100000] [--every 10000] [--views none,append,live,widget]
                              [--out benchmarks/results/soak.json]

Each view runs the same loop in a process of its own: ``--programs`` small programs (a Mock
with echo on: a line of text and a generation of a few tokens, each program a new Model),
the process's RSS read every ``--every`` programs. The views:

* ``none``: ``RUDDER_VIEW=none`` (the publisher and the bus still run);
* ``append``: ``RUDDER_VIEW=terminal`` with stdout a pipe (the append-only view), read and
  thrown away by this script;
* ``live``: the live view in a real terminal (tmux, a private socket, 120x40);
* ``widget``: one cell of a real kernel (nbclient), so the programs belong to the cell's
  run and its widget.

Target (issue 18): RSS grows by less than 10 MiB after the first ``--every`` programs, for
every view. Figures go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MIB = 10.0
VIEWS = ("none", "append", "live", "widget")

# The loop every view runs; ``{report}`` is where RSS lines go, one JSON object a line.
LOOP = """
import json, gc, psutil
from rudder import gen, models
_process = psutil.Process()
_base = models.Mock(["Hello there, general <|im_end|> 日本 🙂 done."], echo=True)
with open({report!r}, "a", encoding="utf-8") as _out:
    for _index in range(1, {programs} + 1):
        _lm = _base + f"Question {{_index}}: " + gen("answer", max_tokens=6)
        if _index % {every} == 0:
            gc.collect()
            _rss = _process.memory_info().rss
            _out.write(json.dumps({{"programs": _index, "rss_bytes": _rss}}) + "\\n")
            _out.flush()
"""


#: The model and one program, as the loop runs them (for the figures).
PROGRAM = (
    " ".join(line.strip() for line in LOOP.splitlines() if "_base" in line)
    .replace("{{", "{")
    .replace("}}", "}")
)


def _loop(report: Path, programs: int, every: int) -> str:
    return LOOP.format(report=str(report), programs=programs, every=every)


def _env(view: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("RUDDER_VIEW", None)
    if view is not None:
        env["RUDDER_VIEW"] = view
    return env


def run_piped(report: Path, programs: int, every: int, view: str) -> None:
    code = _loop(report, programs, every)
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        env=_env(view),
    ) as child:
        assert child.stdout is not None
        while child.stdout.read(1 << 16):
            pass  # a reader that keeps up, as a log collector would
    if child.returncode != 0:
        raise RuntimeError(f"the {view} soak exited with {child.returncode}")


def run_live(report: Path, programs: int, every: int, work: Path) -> None:
    assert shutil.which("tmux"), "tmux is missing: scripts/install-test-tools installs it"
    script = work / "live.py"
    script.write_text(_loop(report, programs, every), encoding="utf-8")
    done = work / "live.done"
    socket = work / "tmux.sock"
    command = (
        f"env -u RUDDER_VIEW TERM=xterm-256color PYTHONIOENCODING=utf-8 "
        f"{sys.executable} {script}; echo $? > {done}; sleep 600"
    )
    tmux = ["tmux", "-S", str(socket)]
    subprocess.run([*tmux, "new-session", "-d", "-s", "soak", "-x", "120", "-y", "40", command])
    try:
        while not done.exists():
            time.sleep(1)
        code = done.read_text().strip()
        if code != "0":
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True)
            raise RuntimeError(f"the live soak exited with {code}:\n{screen.stdout}")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def run_widget(report: Path, programs: int, every: int, work: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells.append(nbformat.v4.new_code_cell(_loop(report, programs, every)))
    NotebookClient(
        notebook,
        timeout=None,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    ).execute()


def soak(view: str, programs: int, every: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rudder-soak-") as folder:
        work = Path(folder)
        report = work / "rss.jsonl"
        started = time.perf_counter()
        error = None
        try:
            if view == "none":
                run_piped(report, programs, every, "none")
            elif view == "append":
                run_piped(report, programs, every, "terminal")
            elif view == "live":
                run_live(report, programs, every, work)
            else:
                run_widget(report, programs, every, work)
        except Exception as failure:  # a process that died (out of memory): its figures so far
            error = f"{type(failure).__name__}: {failure}".strip()
        seconds = time.perf_counter() - started
        lines = report.read_text().splitlines() if report.exists() else []
        points = [json.loads(line) for line in lines]
    mib = [point["rss_bytes"] / 2**20 for point in points]
    growth = max(mib[1:], default=mib[0]) - mib[0] if mib else None
    result: dict[str, Any] = {
        "rss_mib": {point["programs"]: round(m, 1) for point, m in zip(points, mib, strict=True)},
        "growth_after_first_mib": None if growth is None else round(growth, 1),
        "meets_target": growth is not None and error is None and growth < TARGET_MIB,
        "seconds": round(seconds, 1),
    }
    if error is not None:
        result["error"] = error
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--views", default=",".join(VIEWS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/soak.json"))
    args = parser.parse_args()
    views = [view for view in args.views.split(",") if view]
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        parser.error(f"unknown views {unknown}; choose from {', '.join(VIEWS)}")
    results: dict[str, Any] = {}
    for view in views:
        results[view] = soak(view, args.programs, args.every)
        print(view, json.dumps(results[view]), flush=True)
    figures = {
        "programs": args.programs,
        "every": args.every,
        "target_growth_mib": TARGET_MIB,
        "program": PROGRAM,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "views": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
