"""``python -m benchmarks --tiny``: both libraries run every case and the figures are written.

The full comparison takes minutes and is not part of the suite; this runs its tiny
configuration (two runs, short programs) so that the command cannot rot. The first run
creates guidance's virtual environment (``~/.cache/rudder/benchmark-peer``, or where
``RUDDER_BENCH_PEER`` says) from PyPI; later runs reuse it, and the built models in
``benchmarks/.cache``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIDES = ("rudder", "guidance")


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("benchmarks")
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--output", str(directory)],
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=1800,  # creating the peer's environment downloads torch and guidance
    )
    return directory


@pytest.fixture(scope="module")
def results(output: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((output / "results" / "compare.json").read_text())
    return data


def _figures(results: dict[str, Any], number: int) -> list[dict[str, Any]]:
    (case,) = [case for case in results["cases"] if case["number"] == number]
    figures: list[dict[str, Any]] = case["figures"]
    return figures


def test_each_library_ran_in_its_own_environment(results: dict[str, Any]) -> None:
    libraries = results["libraries"]
    assert libraries["rudder"]["library"] == "rudder"
    assert libraries["guidance"]["library"] == "guidance"
    assert libraries["guidance"]["version"].startswith("0.3.")
    assert all(libraries[side]["torch_threads"] == 1 for side in SIDES)


def test_every_case_has_both_figures_and_a_ratio(results: dict[str, Any]) -> None:
    assert [case["number"] for case in results["cases"]] == [1, 2, 3, 4, 5, 6]
    for case in results["cases"]:
        assert case["figures"], case["title"]
        for figure in case["figures"]:
            for side in SIDES:
                summary = figure[side]
                assert summary["runs"] >= 1
                assert len(summary["samples"]) == summary["runs"]
                assert summary["min"] <= summary["median"] <= summary["max"]
                assert summary["median"] > 0, (case["title"], figure["label"], side)
            ratio = figure["ratio"]
            assert math.isfinite(ratio)
            assert ratio == pytest.approx(figure["rudder"]["median"] / figure["guidance"]["median"])


def test_forward_passes_per_token_are_shares(results: dict[str, Any]) -> None:
    for figure in _figures(results, 2):
        for side in SIDES:
            assert 0 < figure[side]["median"] < 1, (figure["label"], side)


def test_the_llguidance_floor_is_reported_for_both_grammars(results: dict[str, Any]) -> None:
    labels = [figure["label"] for figure in _figures(results, 1)]
    assert sum("floor" in label for label in labels) == 2
    assert sum("library time per output token" in label for label in labels) == 3
    assert "unconstrained gen: library time per output token" in labels


def test_every_schema_is_compiled_by_both(results: dict[str, Any]) -> None:
    figures = _figures(results, 6)
    assert len(figures) == results["config"]["schemas"] + 1  # and the total
    assert figures[-1]["label"] == "all schemas together"


def test_markdown_shows_the_command_and_every_figure(output: Path, results: dict[str, Any]) -> None:
    lines = (output / "results.md").read_text().splitlines()
    markdown = "\n".join(lines)
    assert "python -m benchmarks --tiny" in markdown
    for case in results["cases"]:
        assert f"## {case['number']}. {case['title']}" in markdown
        for figure in case["figures"]:
            (row,) = [line for line in lines if line.startswith(f"| {figure['label']} |")]
            assert row.count("|") == 5  # figure, rudder, guidance, ratio


def _imported_rudder(side: str) -> Path:
    from benchmarks.compare.driver import _worker_environment

    found = subprocess.run(
        [sys.executable, "-c", "import rudder; print(rudder.__file__)"],
        env=_worker_environment(side),
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip()).resolve()


def test_the_rudder_worker_imports_the_checkout_the_benchmarks_run_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not an editable install's checkout: run from a worktree, the worktree is measured.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert _imported_rudder("rudder") == ROOT / "src" / "rudder" / "__init__.py"
    # A PYTHONPATH given on purpose (another checkout's src) still wins.
    other = tmp_path / "rudder"
    other.mkdir()
    (other / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert _imported_rudder("rudder") == other / "__init__.py"
