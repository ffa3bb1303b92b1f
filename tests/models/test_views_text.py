"""The issue's reproduction on real tokenizers: CJK and emoji forced by a regex on the tiny
models (byte-level BPE, whose tokens split these characters) are shown whole in the
terminal view, ``describe()``, the static HTML and the export's stream, as the capture is."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import rudder
from rudder import models, regex
from rudder._state import Token
from rudder.visual.html._export import export_messages
from rudder.visual.html._static_html import static_html
from rudder.visual.stream._view_state import RunView
from rudder.visual.terminal._terminal import TerminalView
from rudder.visual.terminal._terminal_output import AppendOutput

SPLIT = "日本語 🎉 café"


def utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_characters_split_over_tokens_show_whole_in_every_python_view(tiny_path: Path) -> None:
    stream = io.StringIO()
    view = TerminalView(AppendOutput(stream))
    try:
        with rudder.run("split") as run:
            view.follow(run.id)
            lm = models.Transformers(str(tiny_path), echo=True) + "Say: "
            lm += regex(SPLIT, name="x")
        view.wait_idle()
    finally:
        view.close()
    assert lm["x"] == SPLIT
    assert lm.trace is not None
    tokens = [e.bytes for e in lm.trace.entries if isinstance(e, Token)]
    assert any(not utf8(data) for data in tokens), "no token splits a character"
    assert stream.getvalue().startswith(f"Say: {SPLIT}\n")
    described = io.StringIO()
    lm.describe(file=described)
    assert f"  Say: {SPLIT}" in described.getvalue().splitlines()
    exported = RunView(lm.trace.run_id)
    for message in export_messages(lm):
        exported.apply(message)
    assert exported.text() == f"Say: {SPLIT}"
    page = html.unescape(re.sub(r"<[^>]*>", "", static_html(exported)))
    assert page.startswith(f"Say: {SPLIT}")
