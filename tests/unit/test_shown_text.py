"""Untrusted text stays text in every Python view, and every character is shown right.

Hostile text (escape sequences, C1 controls, bidirectional overrides, chat markers, HTML)
goes in as a run name, program text, model text, a role and a capture name; what comes out
of the terminal view (append-only and live), ``describe()``, the static HTML and the legacy
display is checked byte for byte. CJK and emoji are forced and generated over byte-level
tokens (Mock's vocabulary has one token per byte), so their characters are split.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterator

import pytest
from rich.console import Console

import rudder
from rudder import assistant, gen, models, regex, user
from rudder._shown_text import RunDecoder, decode_run, visible, visible_html
from rudder.visual import get_bus
from rudder.visual.html._static_html import static_html, static_outputs
from rudder.visual.notebook._legacy import LegacyDisplay
from rudder.visual.stream._view_state import RunView
from rudder.visual.terminal._terminal import TerminalView
from rudder.visual.terminal._terminal_output import AppendOutput, LiveOutput

ESCAPES = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, set the window title
C1 = "\x9b31m\x9d0;title\x9c"  # CSI and OSC as single C1 characters
BIDI = "abc\u202etxt.exe\u2066"  # right-to-left override, an isolate
MARKERS = "<|im_start|>system </s>"
MARKUP = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
HOSTILE = f"{ESCAPES} {C1} {BIDI} {MARKERS} {MARKUP}"
SPLIT = "日本語 🎉 café"
#: What must never reach a terminal or a page raw.
RAW = ("\x1b", "\x07", "\x9b", "\x9d", "\x9c", "\u202e", "\u2066")
SHOWN_HOSTILE = visible(HOSTILE)


def test_visible_escapes_controls_c1_and_bidi_and_nothing_else() -> None:
    assert visible(ESCAPES) == "\\x1b[2J\\x1b]0;pwned\\x07"
    assert visible(C1) == "\\x9b31m\\x9d0;title\\x9c"
    assert visible(BIDI) == "abc\\u202etxt.exe\\u2066"
    assert visible("\r\x00\x7f\u061c\u200e\u200f\u202a\u2069") == (
        "\\x0d\\x00\\x7f\\u061c\\u200e\\u200f\\u202a\\u2069"
    )
    kept = f"{MARKERS} {MARKUP} {SPLIT} tab\tnewline\n"
    assert visible(kept) == kept
    as_html = visible_html(HOSTILE)
    assert "<" not in as_html
    assert ">" not in as_html
    assert "&lt;/script&gt;" in as_html
    assert "\\u202e" in as_html


def test_a_run_is_decoded_as_one_stream_of_bytes() -> None:
    data = SPLIT.encode()
    shown = decode_run([data[i : i + 1] for i in range(len(data))])
    assert "".join(shown) == SPLIT
    assert shown[:3] == ["", "", "日"]  # shown by the token that ends it
    assert decode_run([b"a\xe6", b"\x97"]) == ["a", "\ufffd"]  # never finished
    decoder = RunDecoder()
    assert decoder.feed(b"\xf0\x9f") == ""
    assert decoder.pending == b"\xf0\x9f"
    decoder.pending = b""  # taken back (a backtrack)
    assert decoder.feed(b"ok") == "ok"


# -- a program with hostile text everywhere ---------------------------------------------------


def hostile_program() -> models.Model:
    """Hostile text as program text, model text (Mock writes it), a role's content, a
    capture name and value; CJK and emoji forced and generated over byte tokens."""
    lm = models.Mock([HOSTILE, SPLIT], merges=(), echo=True)
    with user():
        lm += "Quote: " + HOSTILE
    with assistant():
        lm += gen(f"name {ESCAPES}{BIDI}", max_tokens=len(HOSTILE.encode()))
        lm += " Then: " + regex(SPLIT, name="split")
    return lm


@pytest.fixture
def plain() -> Iterator[tuple[TerminalView, io.StringIO]]:
    stream = io.StringIO()
    view = TerminalView(AppendOutput(stream))
    yield view, stream
    view.close()


def assert_nothing_raw(written: str) -> None:
    found = [char for char in RAW if char in written]
    assert not found, f"raw control characters written: {found!r}"


def test_the_append_only_view_shows_hostile_names_and_text_and_whole_characters(
    plain: tuple[TerminalView, io.StringIO],
) -> None:
    view, stream = plain
    with rudder.run(f"run {HOSTILE}") as run:
        view.follow(run.id)
        lm = hostile_program()
    view.wait_idle()
    written = stream.getvalue()
    assert_nothing_raw(written)
    assert lm["split"] == SPLIT
    model_text = str(lm[f"name {ESCAPES}{BIDI}"])
    assert ESCAPES in model_text  # the model really wrote escape codes
    lines = written.splitlines()
    assert lines[:3] == ["── user ──", f"Quote: {SHOWN_HOSTILE}", "── assistant ──"]
    assert lines[3] == f"{visible(model_text)} Then: {SPLIT}"
    assert "\ufffd" not in written
    assert lines[4].startswith(f"✓ run run {SHOWN_HOSTILE}: done · tokens ")


def test_the_live_view_writes_no_control_from_untrusted_text() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=300, height=40, force_terminal=True, color_system=None)
    view = TerminalView(LiveOutput(screen, console=console))
    try:
        with rudder.run(f"run {HOSTILE}") as run:
            view.follow(run.id)
            lm = hostile_program()
        view.wait_idle()
    finally:
        view.close()
    # rich writes its own cursor moves and styles; none come from the text.
    written = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert_nothing_raw(written)
    assert f"Quote: {SHOWN_HOSTILE}" in written
    assert f"Then: {SPLIT}" in written
    assert visible(str(lm[f"name {ESCAPES}{BIDI}"])) in written
    assert f"✓ run run {SHOWN_HOSTILE}: done" in written


def test_a_failed_generation_shows_its_error_as_text(
    plain: tuple[TerminalView, io.StringIO],
) -> None:
    view, stream = plain
    lm = models.Mock(["x"], echo=True)

    def failing(ids: object) -> object:
        raise RuntimeError(f"engine says {HOSTILE}")

    lm.engine._forward = failing  # type: ignore[method-assign,assignment]

    def program() -> None:
        with rudder.run(f"failing {BIDI}") as run:
            view.follow(run.id)
            lm + "a" + gen(max_tokens=3)

    with pytest.raises(RuntimeError, match="engine says"):
        program()
    view.wait_idle()
    written = stream.getvalue()
    assert_nothing_raw(written)
    assert "✗ generation failed: RuntimeError: engine says " in written
    assert SHOWN_HOSTILE in written
    assert f"✗ run failing {visible(BIDI)}: error" in written


def test_streamed_tokens_that_split_characters_and_are_taken_back_show_right(
    plain: tuple[TerminalView, io.StringIO],
) -> None:
    view, stream = plain
    with rudder.run("cjk") as run:
        view.follow(run.id)
        lm = models.Mock(["日本語 🎉 café. 日本語 🎉 café."], merges=(), echo=True) + "A: "
        lm += gen("x", stop="café", max_tokens=40)
    view.wait_idle()
    assert lm["x"] == "日本語 🎉 "
    assert stream.getvalue().splitlines()[0] == "A: 日本語 🎉 "


def test_describe_shows_hostile_text_names_and_whole_characters() -> None:
    lm = hostile_program()
    out = io.StringIO()
    lm.describe(file=out)
    written = out.getvalue()
    assert_nothing_raw(written)
    assert f"  Quote: {SHOWN_HOSTILE}" in written.splitlines()
    assert f"Then: {SPLIT}" in written
    assert "\ufffd" not in written
    assert f"  name {visible(ESCAPES + BIDI)} = " in written


def test_static_html_and_the_legacy_display_show_hostile_text_as_text() -> None:
    with rudder.run(f"run {HOSTILE}") as run:
        display = LegacyDisplay(run.id)
        lm = hostile_program()
    assert display.flush()
    display.close_stream()
    page = display.mimebundle()["text/html"]
    view = RunView(run.id)
    for message in get_bus().messages(run.id):
        view.apply(message)
    assert page == static_html(view)
    assert_nothing_raw(page)
    assert "<script" not in page
    assert "<img" not in page
    assert visible_html(f"Quote: {HOSTILE}") in page
    text = html.unescape(re.sub(r"<[^>]*>", "", page))  # what a browser shows
    assert f"Then: {SPLIT}" in text
    assert "\ufffd" not in text
    plain_text = static_outputs(view)["text/plain"]
    assert_nothing_raw(plain_text)
    assert visible(f"Quote: {HOSTILE}") in plain_text
    assert lm["split"] == SPLIT


def test_a_hidden_step_counts_split_characters_once() -> None:
    with rudder.run("hidden") as run:
        lm = models.Mock([SPLIT], merges=(), echo=True) + "A: "
        with rudder.hidden():
            lm += regex(SPLIT)
    view = RunView(run.id)
    for message in get_bus().messages(run.id):
        view.apply(message)
    assert view.text() == f"A: [hidden: {len(SPLIT)} characters]"


def fold_nodes(*nodes: tuple[list[object], int]) -> RunView:
    """A run of nodes, each (entries, healed bytes), one the child of the one before."""
    from rudder.trace._records import InputRecord, NodeRecord
    from rudder.visual.stream._protocol import NodeAdded

    view = RunView("r")
    for index, (entries, healed) in enumerate(nodes):
        record = NodeRecord(
            id=index,
            parent_id=index - 1 if index else None,
            run_id="r",
            input=InputRecord(kind="text"),
            entries=entries,  # type: ignore[arg-type]
            healed_bytes=healed,
            created_at=0.0,
        )
        assert view.apply(NodeAdded(seq=index, run_id="r", node=record))
    return view


def byte_token(data: bytes) -> object:
    from rudder.trace._records import TokenRecord

    text = data.decode("utf-8", errors="replace")
    b64 = None if text.encode() == data else base64.b64encode(data).decode()
    return TokenRecord(id=0, text=text, bytes_b64=b64, source="generated")


def test_a_run_of_text_goes_on_from_node_to_node_and_through_healing() -> None:
    from rudder.trace._records import RoleOpenRecord, TextRecord

    # A character split over two generations is shown whole, by the second.
    split = fold_nodes(([byte_token(b"\xe6"), byte_token(b"\x97")], 0), ([byte_token(b"\xa5")], 0))
    assert [p.value for p in split.pieces()] == ["", "", "日"]
    # Healing took back the last byte of é; the generation re-made it and went on.
    healed = fold_nodes(([TextRecord(text="café")], 0), ([byte_token(b"\xa9!")], 1))
    assert healed.text() == "café!"
    # A label ends a run: a character never finished before it is U+FFFD.
    ended = fold_nodes(([byte_token(b"\xe6\x97")], 0), ([RoleOpenRecord(role="user")], 0))
    assert ended.text() == "\ufffd<user>"


def test_a_running_generation_shows_no_half_character_while_it_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rudder.visual.stream import _publisher

    # Batches of two one-byte tokens: most batches end inside a character.
    monkeypatch.setattr(_publisher, "BATCH_TOKENS", 2)
    monkeypatch.setattr(_publisher, "BATCH_S", float("inf"))
    with rudder.run("streaming") as run:
        lm = models.Mock([f"A: {SPLIT}."], merges=(), echo=True) + "A: "
        lm += gen("x", stop=".", max_tokens=40)
    assert lm["x"] == SPLIT
    view = RunView(run.id)
    seen = []
    for message in get_bus().messages(run.id):
        view.apply(message)
        seen.append(view.text())
    assert all("\ufffd" not in text for text in seen), seen
    assert "A: 日" in seen  # a prefix that had the first bytes of 本 showed them not yet
    assert seen[-1] == f"A: {SPLIT}"
