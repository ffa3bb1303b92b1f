"""The benchmark report: a partial run keeps the other cases, the hand-kept tail survives a
rewrite, and the table of targets reads its figures from the cases and the standalone JSON."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.compare import report, targets
from benchmarks.compare.cases import Case, Figure

HEADER = {
    "command": "python -m benchmarks",
    "seconds": 1.0,
    "machine": {
        "processor": "cpu",
        "cores": 2,
        "memory_gb": 24,
        "system": "Linux",
        "load_before": [1.0],
        "load_after": [1.0],
    },
    "libraries": {
        side: {
            "library": side,
            "version": "1",
            "llguidance": "1",
            "transformers": "5",
            "torch": "2",
            "torch_threads": 1,
            "python": "3.11",
        }
        for side in ("rudder", "guidance")
    },
    "models": "tiny",
}


def _case(number: int, figures: list[Figure]) -> Case:
    return Case(number, f"case {number}", "what it measures", figures)


def _library(name: str, rudder: float, guidance: float) -> Figure:
    return Figure(
        f"{name}: library time per output token",
        "ms",
        {"rudder": [rudder, rudder], "guidance": [guidance]},
    )


def test_a_partial_run_keeps_the_other_cases_and_the_kept_tail(tmp_path: Path) -> None:
    first = [_case(1, [_library("JSON", 0.3, 0.5)]), _case(2, [_library("x", 1.0, 2.0)])]
    report.write(tmp_path, {**HEADER, "date": "2026-12-01"}, first, targets=False)
    markdown = tmp_path / "results.md"
    markdown.write_text(markdown.read_text() + f"\n{report.KEPT_MARK}\n\n## 7. By hand <b>\n")
    again = [_case(1, [_library("JSON", 0.08, 0.5)])]
    report.write(tmp_path, {**HEADER, "date": "2026-12-06"}, again, targets=False)
    data = json.loads((tmp_path / "results" / "compare.json").read_text())
    assert [(case["number"], case["date"]) for case in data["cases"]] == [
        (1, "2026-12-06"),
        (2, "2026-12-01"),
    ]
    assert data["cases"][0]["figures"][0]["rudder"]["median"] == 0.08
    text = markdown.read_text()
    assert text.count(report.KEPT_MARK) == 1
    assert text.endswith("## 7. By hand <b>\n")
    assert "*Measured by an earlier run, on 2026-12-01.*" in text
    assert text.index("## 1. case 1") < text.index("## 2. case 2") < text.index("## 7.")


def test_the_targets_come_from_the_cases_and_the_standalone_results(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "trace_overhead.json").write_text(
        json.dumps({"ratio_on_to_off": 1.02, "message_bytes_per_token": 300.0})
    )
    cases = [report.case_record(_case(1, [_library("regex", 0.04, 0.6)]))]
    rows = {row.label: row for row in targets.targets(results, cases)}
    regex = rows["library time per token, regex, 32k vocabulary"]
    assert (regex.rudder, regex.guidance, regex.met) == (0.04, 0.6, True)
    assert rows["JSON sent per token (top candidates on)"].met is False
    assert rows["views and metrics on / off, case 5"].rudder is None  # case 5 not run
    table = "\n".join(targets.markdown(list(rows.values())))
    assert "| library time per token, regex, 32k vocabulary | 0.04 ms | 0.6 ms |" in table
    assert "| JSON sent per token (top candidates on) | 300 B | – | – | ≤ 250 B | no |" in table
    assert "not run" in table
