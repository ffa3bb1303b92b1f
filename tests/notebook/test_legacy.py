"""The legacy display and the terminal view in a real kernel (nbclient).

``rudder.legacy_mode(True)`` shows each cell's run as static HTML, updated in place while
it generates; ``settings.view = "terminal"`` writes it as plain text into the cell's
stream output. The notebook's Mock writes hostile markup, which must stay text.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from tests.notebook.test_kernel import parse_html

HOSTILE = "<img src=x onerror=alert(1)></script>"

SETUP = """\
import time
import rudder
from rudder import models, gen, user, assistant
rudder.legacy_mode(True)

def slow_mock(text):
    mock = models.Mock(byte_patterns=[text.encode()], echo=True)
    forward = mock.engine._forward
    def slowly(ids):
        time.sleep(0.06)  # long enough for the output to be updated while it runs
        return forward(ids)
    mock.engine._forward = slowly
    return mock
"""

CELLS = {
    "setup": SETUP,
    "legacy": f"""\
lm = slow_mock({HOSTILE!r} + " and more words to write")
with user():
    lm += "Repeat after me."
with assistant():
    lm += gen("said", max_tokens=50)
""",
    "terminal": """\
rudder.settings.view = "terminal"
plain = models.Mock(byte_patterns=[b"terminal <b>text</b>"], echo=True)
plain += "Say: " + gen("said", max_tokens=20)
""",
    # In a kernel the streams are the kernel's, not guarded: the capture is printed apart.
    "said": 'print("SAID:" + plain["said"] + ":END")',
}


class _Recording(NotebookClient):  # type: ignore[misc]
    """A client that keeps every display update the kernel sent, per cell."""

    updates: dict[int, list[dict[str, Any]]]

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "update_display_data":
            self.updates.setdefault(cell_index, []).append(msg["content"]["data"])
        return super().process_message(msg, cell, cell_index)


@pytest.fixture(scope="module")
def executed() -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    client = _Recording(notebook, timeout=180, kernel_name="python3")
    client.updates = {}
    client.execute()
    return dict(zip(CELLS, notebook.cells, strict=True)), client.updates


def test_legacy_mode_shows_one_static_html_output_with_the_text_escaped(
    executed: tuple[dict[str, Any], dict[int, list[dict[str, Any]]]],
) -> None:
    cells, _ = executed
    outputs = [o for o in cells["legacy"]["outputs"] if o["output_type"] == "display_data"]
    assert len(outputs) == 1, outputs
    data = outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    text, tags = parse_html(data["text/html"])
    assert "Repeat after me." in text
    assert HOSTILE in text  # the model's markup is text in the page...
    assert "img" not in tags
    assert "script" not in tags
    assert "done" in text  # the figures of the finished run


def test_legacy_output_is_updated_in_place_while_the_cell_runs(
    executed: tuple[dict[str, Any], dict[int, list[dict[str, Any]]]],
) -> None:
    _, updates = executed
    index = list(CELLS).index("legacy")
    plain = [update["text/plain"] for update in updates.get(index, [])]
    running = [text for text in plain if text.endswith("[running]")]
    assert running, f"no update while running: {plain}"
    assert plain[-1].rstrip().endswith("]")
    assert "[done" in plain[-1]
    # The text grew from update to update while the model generated.
    assert len(set(running)) >= 2


def test_terminal_view_in_a_kernel_writes_the_run_as_plain_text(
    executed: tuple[dict[str, Any], dict[int, list[dict[str, Any]]]],
) -> None:
    cells, _ = executed
    outputs = cells["terminal"]["outputs"]
    assert not [o for o in outputs if o["output_type"] == "display_data"]
    stream = "".join(o["text"] for o in outputs if o["output_type"] == "stream")
    printed = "".join(o["text"] for o in cells["said"]["outputs"] if o["output_type"] == "stream")
    said = printed.split("SAID:")[1].split(":END")[0]
    assert said
    assert f"Say: {said}" in stream
    assert "\x1b[" not in stream  # no escape codes outside a terminal
    assert "✓ run cell" in stream
    assert "tokens" in stream
