"""Samples to figures: medians, spreads and ratios, written as Markdown and JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.compare import targets as target_table
from benchmarks.compare.cases import SIDES, Case, Figure


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, quartiles (inclusive method), extremes and the samples themselves."""
    ordered = sorted(samples)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "q1": q1,
        "q3": q3,
        "min": ordered[0],
        "max": ordered[-1],
        "runs": len(ordered),
        "samples": samples,
    }


def figure_record(figure: Figure) -> dict[str, Any]:
    sides = {side: summary(figure.samples[side]) for side in SIDES}
    guidance = sides["guidance"]["median"]
    return {
        "label": figure.label,
        "unit": figure.unit,
        **sides,
        # rudder's median over guidance's: below 1, rudder's figure is the smaller one.
        "ratio": sides["rudder"]["median"] / guidance if guidance else None,
        "bounds": figure.bounds,
    }


def case_record(case: Case) -> dict[str, Any]:
    return {
        "number": case.number,
        "title": case.title,
        "measures": case.measures,
        "notes": case.notes,
        "figures": [figure_record(figure) for figure in case.figures],
    }


def _number(value: float) -> str:
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e6:
        return f"{int(value):,}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
    return f"{value:.2g}"


def _cell(side: dict[str, Any], unit: str, bound: str | None) -> str:
    median = ("≥ " if bound else "") + _number(side["median"]) + (f" {unit}" if unit else "")
    if side["runs"] == 1:
        return median
    spread = f"IQR {_number(side['q1'])}–{_number(side['q3'])}"
    return f"{median} <br><sub>{spread}, range {_number(side['min'])}–{_number(side['max'])}</sub>"


def _ratio(record: dict[str, Any]) -> str:
    ratio = record["ratio"]
    if ratio is None:
        return "–"
    text = _number(ratio)
    return f"≤ {text}" if "guidance" in record["bounds"] else text


def case_markdown(record: dict[str, Any]) -> list[str]:
    lines = [f"## {record['number']}. {record['title']}", "", record["measures"], ""]
    lines += ["| figure | rudder | guidance | rudder / guidance |", "| --- | --- | --- | --- |"]
    bounds = []
    for figure in record["figures"]:
        cells = [_cell(figure[side], figure["unit"], figure["bounds"].get(side)) for side in SIDES]
        lines.append(f"| {figure['label']} | {cells[0]} | {cells[1]} | {_ratio(figure)} |")
        bounds += [f"{side}, {figure['label']}: {why}." for side, why in figure["bounds"].items()]
    lines.append("")
    # Notes may quote model output: no raw HTML.
    lines += [f"- {note}".replace("<", "&lt;") for note in [*record["notes"], *bounds]]
    return [*lines, ""] if record["notes"] or bounds else lines


#: What follows this line in ``results.md`` was written by other commands or by hand (the
#: llama.cpp section, re-runs with notes); rewriting the file keeps it.
KEPT_MARK = "<!-- Kept when python -m benchmarks rewrites this file: -->"


def write(
    directory: Path, header: dict[str, Any], cases: list[Case], *, targets: bool = True
) -> tuple[Path, Path]:
    """``results.md`` and ``results/compare.json`` under ``directory``. Cases not run this
    time keep their records from the last run that had them (marked with its date)."""
    json_path = directory / "results" / "compare.json"
    earlier = json.loads(json_path.read_text()) if json_path.exists() else {}
    records = {
        record["number"]: {**record, "date": record.get("date", earlier.get("date"))}
        for record in earlier.get("cases", [])
    }
    for case in cases:
        records[case.number] = {**case_record(case), "date": header["date"]}
    ordered = [records[number] for number in sorted(records)]
    data = {**header, "cases": ordered}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    markdown_path = directory / "results.md"
    kept = ""
    if markdown_path.exists():
        _, mark, tail = markdown_path.read_text().partition(KEPT_MARK)
        kept = mark + tail
    lines = _header_markdown(header)
    if targets:
        lines += target_table.markdown(target_table.targets(json_path.parent, ordered))
    lines += _cases_markdown(ordered, header["date"])
    markdown_path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    return markdown_path, json_path


def _cases_markdown(records: list[dict[str, Any]], date: str) -> list[str]:
    lines: list[str] = []
    for record in records:
        case = case_markdown(record)
        if record.get("date") not in (None, date):
            case[2:2] = [f"*Measured by an earlier run, on {record['date']}.*", ""]
        lines += case
    return lines


def _header_markdown(header: dict[str, Any]) -> list[str]:
    machine = header["machine"]
    versions = header["libraries"]
    library_lines = [
        f"- {side}: {versions[side]['library']} {versions[side]['version']}, llguidance "
        f"{versions[side]['llguidance']}, transformers {versions[side]['transformers']}, "
        f"torch {versions[side]['torch']} ({versions[side]['torch_threads']} thread), "
        f"Python {versions[side]['python']}"
        for side in SIDES
    ]
    return [
        "# rudder and guidance, side by side",
        "",
        f"Made by `{header['command']}` on {header['date']} in {header['seconds']:.0f} s.",
        "",
        f"- machine: {machine['processor']}, {machine['cores']} cores usable, "
        f"{machine['memory_gb']:.0f} GB memory, {machine['system']}; load average "
        f"{machine['load_before']} before and {machine['load_after']} after",
        *library_lines,
        f"- models: {header['models']}",
        "",
        "Each figure is the median of the runs (the number is in the JSON), with its "
        "interquartile range and its range; the two libraries run in separate worker "
        "processes, one after the other, their order swapped every run, so that the noise of "
        "this shared machine falls on both. The ratio is rudder's median over guidance's: "
        "below 1, rudder's figure is smaller (faster, fewer passes, less memory). `≥` marks "
        "a figure that is a lower bound (a program stopped at a time limit), and its ratio `≤`.",
        "",
    ]
