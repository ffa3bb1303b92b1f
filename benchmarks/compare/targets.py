"""The per-token targets: the benchmarks that measure rudder alone, and one table of targets.

``python -m benchmarks`` runs the side-by-side cases, then (unless ``--tiny`` or
``--skip-standalone``) the benchmarks that measure rudder alone, each a script of its own
that writes its JSON under ``results/``: ``trace_overhead.py`` (views on and off, the JSON
sent per token), ``model_overhead.py`` (rudder's own time per token on a tiny model) and
``client_render.py`` (how fast the client paints 10,000 tokens, in Chromium). The table of
targets reads every figure from those files and from the cases just run, so it always says
which measurement each figure comes from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: The scripts, in the order they run; each takes ``--out``.
STANDALONE = ("trace_overhead", "model_overhead", "client_render")


def run_standalone(results: Path, say: Callable[[str], None]) -> None:
    """Run each standalone benchmark on the checkout's rudder (its ``src`` first on the path)."""
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*inherited, str(ROOT / "src"), str(ROOT)]),
    }
    for name in STANDALONE:
        say(f"{name}: running")
        out = results / f"{name}.json"
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--out", str(out)],
            cwd=ROOT,
            env=environment,
            check=True,
        )


@dataclass(frozen=True)
class Target:
    label: str
    unit: str
    target: float
    rudder: float | None
    guidance: float | None = None
    floor: float | None = None
    source: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.rudder is None else self.rudder <= self.target


def _figure(cases: list[dict[str, Any]], number: int, label: str) -> dict[str, Any] | None:
    for case in cases:
        if case["number"] == number:
            for figure in case["figures"]:
                if figure["label"] == label:
                    return dict(figure)
    return None


def _median(figure: dict[str, Any] | None, side: str) -> float | None:
    return None if figure is None else float(figure[side]["median"])


def _read(results: Path, name: str) -> dict[str, Any]:
    path = results / f"{name}.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def targets(results: Path, cases: list[dict[str, Any]]) -> list[Target]:
    """Every target with its figures (None where its benchmark has not been run)."""
    rows = []
    for name, limit in (("JSON", 0.10), ("regex", 0.05), ("unconstrained gen", 0.05)):
        figure = _figure(cases, 1, f"{name}: library time per output token")
        floor_label = f"{name}: llguidance alone (mask and consume) per token, the floor"
        floor = _figure(cases, 1, floor_label)
        rows.append(
            Target(
                f"library time per token, {name}, 32k vocabulary",
                "ms",
                limit,
                _median(figure, "rudder"),
                _median(figure, "guidance"),
                _median(floor, "rudder"),
                "case 1",
            )
        )
    instrumented = _figure(cases, 5, "time with views and metrics on / time with them off")
    rows.append(
        Target(
            "views and metrics on / off, case 5",
            "×",
            1.03,
            _median(instrumented, "rudder"),
            _median(instrumented, "guidance"),
            source="case 5",
        )
    )
    trace = _read(results, "trace_overhead")
    rows.append(
        Target(
            "views and metrics on / off, 2,000 tokens with a recording renderer",
            "×",
            1.03,
            trace.get("ratio_on_to_off"),
            source="trace_overhead.json",
        )
    )
    rows.append(
        Target(
            "JSON sent per token (top candidates on)",
            "B",
            250.0,
            trace.get("message_bytes_per_token"),
            source="trace_overhead.json",
        )
    )
    model = _read(results, "model_overhead").get("tokens_unconstrained", {})
    rows.append(
        Target(
            "library time per token, unconstrained gen, tiny Llama (1.5k vocabulary)",
            "ms",
            0.05,
            model.get("library_ms_per_token"),
            source="model_overhead.json",
        )
    )
    render = _read(results, "client_render")
    for mode, label, limit in (
        ("live", "10,000 tokens streamed to the client: all painted", 300.0),
        ("inline", "10,000 tokens inline in the page: all painted", 200.0),
    ):
        rows.append(
            Target(
                label,
                "ms",
                limit,
                render.get(mode, {}).get("median_all_tokens_ms"),
                source="client_render.json",
            )
        )
    return rows


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "not run"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def markdown(rows: list[Target]) -> list[str]:
    lines = [
        "## Targets",
        "",
        "The per-token targets, each figure a median from the benchmark named in the last "
        "column (this run's cases, or the JSON a standalone benchmark wrote under `results/`).",
        "",
        "| figure | rudder | guidance | llguidance alone | target | met | from |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = {None: "–", True: "yes", False: "no"}[row.met]
        guidance = "–" if row.guidance is None else _value(row.guidance, row.unit)
        floor = "–" if row.floor is None else _value(row.floor, row.unit)
        lines.append(
            f"| {row.label} | {_value(row.rudder, row.unit)} | {guidance} | {floor} | "
            f"≤ {_value(row.target, row.unit)} | {met} | {row.source} |"
        )
    return [*lines, ""]
