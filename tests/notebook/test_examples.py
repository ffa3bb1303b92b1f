"""The example notebook runs from top to bottom in a real kernel and shows its runs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.ipynb")), ids=lambda p: p.name)
def test_example_notebook_runs_and_shows_its_runs(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    # rudder's outputs: the widget with its static rendering for viewers without widgets
    # (transformers' loading progress bar is a widget too, without one).
    shown = [
        o["data"]
        for o in outputs
        if o["output_type"] == "display_data" and "rudder-static" in o["data"].get("text/html", "")
    ]
    assert len(shown) == 2, "the program's cell and the cell continuing it each show a run"
    assert all(WIDGET_VIEW in data for data in shown)
    assert all("done" in data["text/html"] for data in shown)
