"""Cells as runs in a real kernel (nbclient): what a saved notebook holds.

One notebook runs once per module: it loads the tiny model, runs a program with roles,
``gen`` and ``select``, continues it in a later cell, runs a cell without rudder, a cell
that raises, a cell with ``settings.view = "none"`` and a Mock that writes hostile markup;
its last cell prints what the kernel's bus holds. The tests read the executed notebook:
each output's static HTML, and the widget state saved with it (``_final``: the run's
messages, so that the notebook shows the run without a kernel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tests.notebook.conftest import execute_saved

from rudder.visual import parse_server_message

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RUN_WIDGET = "rudder.visual.notebook._widget.RunWidget"
HOSTILE = "<img src=x onerror=alert(1)>"
PROBE = "PROBE:"

SETUP = """\
import torch
torch.set_num_threads(1)
import transformers
transformers.utils.logging.disable_progress_bar()
import rudder
from rudder import models, gen, select, user, assistant
lm = models.Transformers({path!r})
"""

#: The cells, by name; the executed notebook keeps this order.
CELLS: dict[str, str] = {
    "setup": "",  # filled in with the model's path
    "program": f"""\
with user():
    lm += 'What is the capital of France? {HOSTILE}'
with assistant():
    lm += 'Answer: ' + gen('answer', regex='[a-z]+', max_tokens=6) + '. Sure? '
    lm += select(['yes', 'no'], name='choice')
""",
    "continued": "lm += ' Again: ' + gen('more', regex='[a-z]+', max_tokens=4)",
    "plain": "x = 1 + 1",
    "raises": """\
broken = lm + ' Oops: ' + gen('oops', regex='[a-z]+', max_tokens=3)
raise ValueError('the cell failed <b>on purpose</b>')
""",
    "hidden": """\
rudder.settings.view = 'none'
hidden = lm + ' Hidden: ' + gen(regex='[a-z]+', max_tokens=3)
""",
    "shown_again": """\
rudder.settings.view = 'auto'
shown = lm + ' Shown: ' + gen(regex='[a-z]+', max_tokens=3)
""",
    "mock": """\
mock = models.Mock(byte_patterns=[b'<script>alert(1)</script>'], echo=True)
mock += 'Say: ' + gen('said', max_tokens=40)
""",
    "probe": f"""\
import json
from rudder.visual import get_bus
bus = get_bus()
runs = []
for run_id in bus.runs():
    held = bus.messages(run_id)
    record = held[-1].run if held[-1].type == 'run_finished' else held[0].run
    runs.append({{'id': run_id, 'name': record.name, 'status': record.status}})
texts = {{
    'answer': lm['answer'], 'choice': lm['choice'], 'more': lm['more'],
    'said': mock['said'], 'mock': str(mock),
}}
print({PROBE!r} + json.dumps({{'runs': runs, 'texts': texts}}))
""",
}

#: The cells that show a program (each gets exactly one rudder output).
SHOWN = ("program", "continued", "raises", "shown_again", "mock")


class _Text(HTMLParser):
    """The text of an HTML fragment and the tags it opens."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_html(html: str) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts), parser.tags


@dataclass
class Executed:
    cells: dict[str, Any]
    widgets: dict[str, dict[str, Any]]
    probe: dict[str, Any]

    def outputs(self, name: str) -> list[dict[str, Any]]:
        return list(self.cells[name]["outputs"])

    def shown(self, name: str) -> dict[str, Any]:
        """The data of the cell's one rudder output (asserted to be one)."""
        shown = [o for o in self.outputs(name) if o["output_type"] == "display_data"]
        assert len(shown) == 1, f"cell {name!r}: {len(shown)} display_data outputs: {shown}"
        return dict(shown[0]["data"])

    def html(self, name: str) -> str:
        return str(self.shown(name)["text/html"])

    def widget(self, name: str) -> dict[str, Any]:
        model_id = self.shown(name)[WIDGET_VIEW]["model_id"]
        assert model_id in self.widgets, f"cell {name!r}: widget {model_id} was not saved"
        return self.widgets[model_id]

    def final(self, name: str) -> list[Any]:
        saved = self.widget(name)["_final"]
        assert saved, f"cell {name!r}: the widget's _final is empty"
        return [parse_server_message(item) for item in json.loads(saved)]

    def run_name(self, name: str) -> str:
        return f"cell {self.cells[name]['execution_count']}"


@pytest.fixture(scope="module")
def executed(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Executed:
    notebook = nbformat.v4.new_notebook()
    for name, source in CELLS.items():
        if name == "setup":
            source = SETUP.format(path=str(tiny_model_path))
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["name"] = name
        if name == "raises":
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
    directory = tmp_path_factory.mktemp("kernel-notebook")
    saved = execute_saved(notebook, directory, store_widget_state=True)
    cells = {cell.metadata["name"]: cell for cell in saved.cells}
    state = saved.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    widgets = {model_id: dict(entry["state"]) for model_id, entry in state.items()}
    printed = "".join(o.get("text", "") for o in cells["probe"]["outputs"] if o.get("name"))
    line = next(line for line in printed.splitlines() if line.startswith(PROBE))
    return Executed(cells=cells, widgets=widgets, probe=json.loads(line[len(PROBE) :]))


@pytest.mark.parametrize("name", SHOWN)
def test_a_shown_cell_has_one_output_with_the_widget_and_static_html(
    executed: Executed, name: str
) -> None:
    data = executed.shown(name)
    assert WIDGET_VIEW in data
    assert data["text/html"].startswith('<div class="rudder-static">')
    assert executed.widget(name)["_anywidget_id"] == RUN_WIDGET


def test_the_static_html_holds_the_run_text_escaped(executed: Executed) -> None:
    texts = executed.probe["texts"]
    html = executed.html("program")
    text, tags = parse_html(html)
    assert f"What is the capital of France? {HOSTILE}" in text
    assert f"Answer: {texts['answer']}. Sure? {texts['choice']}" in text
    assert texts["answer"]
    assert texts["choice"] in ("yes", "no")
    assert "<img" not in html
    assert "img" not in tags
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "done" in text


def test_hostile_generated_text_is_escaped(executed: Executed) -> None:
    texts = executed.probe["texts"]
    assert "<script>alert(1)</script>" in texts["said"]  # the Mock wrote the markup
    html = executed.html("mock")
    text, tags = parse_html(html)
    assert texts["mock"] in text
    assert "script" not in tags
    assert "<script" not in html


@pytest.mark.parametrize("name", SHOWN)
def test_the_saved_widget_holds_the_whole_run(executed: Executed, name: str) -> None:
    messages = executed.final(name)
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert messages[0].type == "run_started"
    assert messages[-1].type == "run_finished"
    assert {m.run_id for m in messages} == {executed.widget(name)["run_id"]}
    assert messages[-1].run.name == executed.run_name(name)
    assert any(m.type == "tokens_appended" for m in messages)


@pytest.mark.parametrize("name", ["program", "continued", "shown_again", "mock"])
def test_a_cell_that_ends_well_is_done(executed: Executed, name: str) -> None:
    finished = executed.final(name)[-1]
    assert finished.run.status == "done"
    assert finished.run.error is None


def test_a_cell_that_raises_is_an_error(executed: Executed) -> None:
    errors = [o for o in executed.outputs("raises") if o["output_type"] == "error"]
    assert [o["ename"] for o in errors] == ["ValueError"]
    finished = executed.final("raises")[-1]
    assert finished.run.status == "error"
    assert "ValueError" in (finished.run.error or "")
    html = executed.html("raises")
    assert "error: ValueError" in parse_html(html)[0]
    assert "&lt;b&gt;on purpose&lt;/b&gt;" in html
    assert "<b>" not in html


def test_a_continued_model_shows_the_whole_path_in_its_own_output(executed: Executed) -> None:
    texts = executed.probe["texts"]
    first, _ = parse_html(executed.html("program"))
    later, _ = parse_html(executed.html("continued"))
    assert "Again:" not in first  # the earlier output was left as it was
    assert f"What is the capital of France? {HOSTILE}" in later
    assert f"Sure? {texts['choice']} Again: {texts['more']}" in later
    earlier = {m.node.id for m in executed.final("program") if m.type == "node_added"}
    resent = {m.node.id for m in executed.final("continued") if m.type == "node_added"}
    assert earlier < resent
    assert executed.widget("program")["run_id"] != executed.widget("continued")["run_id"]


def test_view_none_shows_nothing(executed: Executed) -> None:
    assert executed.outputs("hidden") == []
    # The run is made all the same; it is just not shown.
    runs = {run["name"]: run for run in executed.probe["runs"]}
    assert runs[executed.run_name("hidden")]["status"] == "done"


def test_a_cell_without_rudder_leaves_no_output_and_no_run(executed: Executed) -> None:
    assert executed.outputs("plain") == []
    assert executed.cells["plain"]["execution_count"] is not None
    names = {run["name"] for run in executed.probe["runs"]}
    assert executed.run_name("plain") not in names
    assert executed.run_name("setup") not in names
    assert executed.run_name("program") in names


def test_only_shown_cells_made_widgets(executed: Executed) -> None:
    shown = {executed.shown(name)[WIDGET_VIEW]["model_id"] for name in SHOWN}
    saved = {mid for mid, state in executed.widgets.items() if state.get("_anywidget_id")}
    assert saved == shown
    runs = {run["id"]: run for run in executed.probe["runs"]}
    for name in SHOWN:
        assert runs[executed.widget(name)["run_id"]]["name"] == executed.run_name(name)
