"""A kernel open for a long time holds a bounded number of live widgets (a real kernel).

ipywidgets keeps every open widget, with the run it saved, for the kernel's life. With
``settings.live_widgets = 2``, five cells that each show a program leave the two newest
outputs live; the older ones have become their static HTML (updated in place through their
display ids) and their widgets are closed.
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest
from tests.notebook.conftest import execute_saved
from tests.notebook.test_kernel import WIDGET_VIEW, parse_html

PROBE = "PROBE:"
SHOWN = 5
SETUP = """\
import rudder
from rudder import models, gen
rudder.settings.live_widgets = 2
"""
PROGRAM = """\
lm = models.Mock(['Hello <b>there</b> 日本 🙂'], echo=True) + 'cell {index}: ' + gen(max_tokens=20)
"""
PROBE_CELL = f"""\
import json
from ipywidgets.widgets.widget import _instances
open_widgets = sum(type(w).__name__ == 'RunWidget' for w in list(_instances.values()))
try:
    rudder.settings.live_widgets = 0
    refused = ''
except rudder.errors.SettingsError as error:
    refused = str(error)
print({PROBE!r} + json.dumps({{'open': open_widgets, 'refused': refused,
                               'kept': rudder.settings.live_widgets}}))
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], dict[str, Any]]:
    notebook = nbformat.v4.new_notebook()
    sources = [SETUP, *(PROGRAM.format(index=i) for i in range(SHOWN)), PROBE_CELL]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    saved = execute_saved(notebook, tmp_path_factory.mktemp("live-widgets"))
    printed = "".join(o.get("text", "") for o in saved.cells[-1]["outputs"] if o.get("name"))
    line = next(line for line in printed.splitlines() if line.startswith(PROBE))
    shown = [
        next(o for o in cell["outputs"] if o["output_type"] == "display_data")["data"]
        for cell in saved.cells[1:-1]
    ]
    return shown, json.loads(line[len(PROBE) :])


def test_only_the_newest_outputs_keep_an_open_widget(
    executed: tuple[list[Any], dict[str, Any]],
) -> None:
    shown, probe = executed
    assert probe["open"] == 2
    assert [WIDGET_VIEW in data for data in shown] == [False, False, False, True, True]


@pytest.mark.parametrize("index", range(SHOWN))
def test_a_retired_output_still_shows_its_run_as_static_html(
    executed: tuple[list[Any], dict[str, Any]], index: int
) -> None:
    data = executed[0][index]
    text, tags = parse_html(data["text/html"])
    assert f"cell {index}:" in text
    assert "<b>there</b> 日本" in text
    assert "b" not in tags  # the model's markup stays text
    assert "<b>there</b> 日本" in data["text/plain"]


def test_a_bad_bound_is_refused_and_the_setting_kept(
    executed: tuple[list[Any], dict[str, Any]],
) -> None:
    probe = executed[1]
    assert probe["kept"] == 2
    assert "live_widgets must be an int >= 1, got 0" in probe["refused"]
