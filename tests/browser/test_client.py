"""The run view in Chromium: the client page with a run inlined, and the notebook widget's
real module (``static/widget.js``) hosting it in a sandboxed iframe, fed as the kernel feeds
it. Runs are recorded on ``models.Mock``; what a view must show comes from the Python side
(``RunView``, the program's text). Screenshots: ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from rudder.visual import Backtrack, NodeAdded, TokensAppended

REPLAY = "(c) => c.rudder === 'client' && c.message.type === 'replay_request'"


def label(token: Any) -> str:
    """A token or candidate as the tooltip names it (web/src/format.ts ``tokenLabel``): its
    text quoted, controls as escapes, whitespace shown; its bytes as escapes when they are
    not valid UTF-8."""
    if token.bytes_b64 is not None:
        return 'b"' + "".join(f"\\x{b:02x}" for b in base64.b64decode(token.bytes_b64)) + '"'
    text = re.sub(
        "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m[0]):02x}", token.text
    )
    shown = text.replace(" ", "·").replace("\r", "␍").replace("\t", "→").replace("\n", "↵")
    return f'"{shown}"'


def path_tokens(recorded: Any) -> list[Any]:
    """The token records of the shown path, in the order of their spans."""
    return [piece.token for piece in recorded.view.pieces() if piece.kind == "token"]


def without_chat_markup(text: str) -> str:
    """ChatML text as the view shows it: each turn's header as the role's label."""
    text = re.sub(r"<\|im_start\|>(\w+)\n", r"\1", text)
    return text.replace("<|im_end|>\n", "").replace("<|im_end|>", "")


# -- the page with the run inlined -------------------------------------------------------------


def test_inline_page_shows_text_roles_and_token_types(page, chat_run, tools, screenshot):
    tools.open_inline(page, chat_run)
    tools.wait_rendered(page, chat_run)
    shown = tools.snapshot(page)
    screenshot(page, "inline-type-colours")

    # The text, as the Python side folds the same messages, and as the program wrote it.
    assert shown["text"] == chat_run.shown_text()
    assert "<|im_start|>" in chat_run.program_text
    assert shown["text"] == tools.visible(without_chat_markup(chat_run.program_text))
    # Roles come from the structured state, as labels; the chat format's markers never show.
    assert shown["roles"] == ["user", "assistant", "user", "assistant"]
    assert page.locator(".rd-role", has_text="assistant").count() == 2
    for marker in ("<|im_start|>", "<|im_end|>", "im_start"):
        assert marker not in shown["body"]

    tokens = shown["tokens"]
    assert len(tokens) == chat_run.token_count() > 0
    sources = {"rd-src-input", "rd-src-forced", "rd-src-generated"}
    for token in tokens:
        assert len(sources & set(token["classes"])) == 1, token
    by_source: dict[str, set[str]] = {}
    for token in tokens:
        source = next(c for c in token["classes"] if c in sources)
        by_source.setdefault(source, set()).add(token["background"])
    # The default colouring is by type: one colour per source, forced unlike generated.
    assert page.locator(".rudder").get_attribute("data-background") == "type"
    assert len(by_source["rd-src-forced"]) == 1
    assert len(by_source["rd-src-generated"]) == 1
    assert by_source["rd-src-forced"] != by_source["rd-src-generated"]
    assert "rgba(0, 0, 0, 0)" not in by_source["rd-src-forced"] | by_source["rd-src-generated"]

    # Colour by probability: generated tokens take their probability's colour.
    page.get_by_label("colour").select_option("probability")
    expect(page.locator(".rudder")).to_have_attribute("data-background", "probability")
    recolored = tools.snapshot(page)["tokens"]
    screenshot(page, "inline-probability-colours")
    records = path_tokens(chat_run)
    generated = [
        (record.prob, after["background"])
        for record, before, after in zip(records, tokens, recolored, strict=True)
        if record.source == "generated"
    ]
    assert all(
        after["background"] != before["background"]
        for record, before, after in zip(records, tokens, recolored, strict=True)
        if record.source == "generated"
    )
    likely = {colour for prob, colour in generated if prob > 0.9}
    unlikely = {colour for prob, colour in generated if prob < 0.01}
    assert likely
    assert unlikely
    assert not likely & unlikely


def test_tooltip_shows_token_probability_and_candidates(page, chat_run, tools, screenshot):
    tools.open_inline(page, chat_run)
    tools.wait_rendered(page, chat_run)
    records = path_tokens(chat_run)
    spans = page.locator(".rd-text .rd-token")
    tooltip = page.locator(".rd-tooltip")
    expect(tooltip).to_be_hidden()

    def has_forbidden(record: Any) -> bool:
        return any(not c.allowed for c in record.top[:5])

    # A likely choice among candidates some of which the grammar forbade, then an unlikely
    # one the grammar made (the regex's first digit: the model wanted letters).
    likely = next(
        i
        for i, r in enumerate(records)
        if r.source == "generated" and r.prob >= 0.5 and has_forbidden(r)
    )
    unlikely = next(
        i
        for i, r in enumerate(records)
        if r.source == "generated" and r.prob < 0.5 and has_forbidden(r)
    )
    for index, name in ((likely, "likely"), (unlikely, "unlikely")):
        record = records[index]
        spans.nth(index).hover()
        expect(tooltip).to_be_visible()
        expect(tooltip.locator(".rd-tip-token")).to_have_text(label(record))
        expect(tooltip.locator(".rd-tip-facts")).to_contain_text(
            f"probability {record.prob * 100:.1f}%"
        )
        rows = tooltip.locator(".rd-tip-top .rd-tip-row")
        assert 3 <= rows.count() <= 7
        assert rows.count() == min(5, len(record.top))
        assert rows.locator(".rd-tip-cand").all_text_contents() == [
            label(c) for c in record.top[: rows.count()]
        ]
        for row, candidate in zip(rows.all(), record.top[: rows.count()], strict=True):
            decoration = row.locator(".rd-tip-cand").evaluate(
                "(cell) => getComputedStyle(cell).textDecorationLine"
            )
            classes = row.get_attribute("class") or ""
            if candidate.allowed:
                assert "rd-forbidden" not in classes
                assert "line-through" not in decoration
            else:
                assert "rd-forbidden" in classes
                assert "line-through" in decoration
        assert tooltip.locator(".rd-forbidden").count() >= 1
        allowed = tooltip.locator(".rd-tip-allowed")
        if record.prob < 0.5:
            # The chosen token was unlikely: the likeliest ones the grammar allowed.
            expect(allowed).to_have_count(1)
            allowed_rows = allowed.locator(".rd-tip-row")
            assert allowed_rows.count() >= 1
            assert allowed.locator(".rd-forbidden").count() == 0
            expected = [c for c in (record.top_allowed or record.top) if c.allowed][:5]
            assert allowed_rows.locator(".rd-tip-cand").all_text_contents() == [
                label(c) for c in expected
            ]
        else:
            expect(allowed).to_have_count(0)
        screenshot(page, f"tooltip-{name}")

    page.mouse.move(990, 890)
    expect(tooltip).to_be_hidden()


def test_token_healing_is_shown_once(page, host, healed_run, tools):
    # The prompt's last byte is taken off the text before the generation that re-made it.
    assert healed_run.program_text == "Visit http://www.example.com"
    tools.open_inline(page, healed_run)
    tools.wait_rendered(page, healed_run)
    assert tools.snapshot(page)["text"] == healed_run.program_text == healed_run.shown_text()

    # Live, the prompt is shown whole first, then cut when the healed tokens arrive.
    widget = host(healed_run.run_id)
    frame = widget.render()
    widget.wait_ready()
    healed_at = next(m.seq for m in healed_run.messages if getattr(m, "healed_bytes", 0))
    widget.deliver(healed_run.subset(lambda seq: seq < healed_at))
    frame.wait_for_function(
        "(last) => window.rudder.state.lastSeq === last"
        " && document.querySelector('.rd-text').textContent === 'Visit http:'",
        arg=healed_at - 1,
    )
    widget.deliver(healed_run.subset(lambda seq: seq >= healed_at))
    tools.wait_rendered(frame, healed_run)
    assert tools.snapshot(frame)["text"] == healed_run.program_text


# -- the notebook widget's module, hosting the client ----------------------------------------


def test_widget_streams_a_run_into_a_sandboxed_iframe(page, host, chat_run, tools, screenshot):
    inline = page.context.new_page()
    tools.open_inline(inline, chat_run)
    tools.wait_rendered(inline, chat_run)
    expected = tools.snapshot(inline)
    inline.close()

    widget = host(chat_run.run_id)
    frame = widget.render()
    assert page.locator("#out1 iframe").get_attribute("sandbox") == "allow-scripts"
    widget.wait_ready()
    widget.deliver(chat_run.json)
    tools.wait_rendered(frame, chat_run)
    shown = tools.snapshot(frame)
    screenshot(page, "widget-live")
    assert shown["text"] == expected["text"] == chat_run.shown_text()
    assert len(shown["tokens"]) == len(expected["tokens"])
    assert shown["roles"] == expected["roles"]
    # Nothing missed, nothing asked for but the first ready.
    assert [c["message"]["type"] for c in widget.sent()] == ["client_ready"]


def test_widget_asks_the_kernel_to_replay_a_hole(page, host, chat_run, tools, screenshot):
    widget = host(chat_run.run_id)
    frame = widget.render()
    widget.wait_ready()
    widget.deliver(chat_run.subset(lambda seq: not 3 <= seq <= 5))
    widget.wait_sent(REPLAY)
    replays = [c for c in widget.sent() if c["message"]["type"] == "replay_request"]
    assert len(replays) == 1, replays
    assert replays[0]["message"]["after_seq"] == 2
    assert replays[0]["message"]["run_id"] == chat_run.run_id
    assert replays[0]["message"]["v"] == 1
    # Messages after a hole wait for the replay: the view holds the stream up to seq 2.
    assert frame.evaluate("() => window.rudder.state.lastSeq") == 2

    widget.deliver(chat_run.subset(lambda seq: seq > 2))  # the kernel's replay
    tools.wait_rendered(frame, chat_run)
    shown = tools.snapshot(frame)
    screenshot(page, "widget-after-replay")
    assert shown["text"] == chat_run.shown_text()
    assert len(shown["tokens"]) == chat_run.token_count()
    assert frame.evaluate("() => window.rudder.state.wantsReplayAfter") is None


def test_widget_asks_for_a_replay_when_the_stream_starts_late(page, host, chat_run, tools):
    widget = host(chat_run.run_id)
    frame = widget.render()
    widget.wait_ready()
    widget.deliver(chat_run.subset(lambda seq: seq >= 3))
    widget.wait_sent(REPLAY)
    replays = [c["message"] for c in widget.sent() if c["message"]["type"] == "replay_request"]
    assert [m["after_seq"] for m in replays] == [-1]
    assert frame.evaluate("() => window.rudder.state.lastSeq") == -1

    widget.deliver(chat_run.json)
    tools.wait_rendered(frame, chat_run)
    assert tools.snapshot(frame)["text"] == chat_run.shown_text()


def test_widget_view_made_later_starts_from_the_hosts_store(page, host, chat_run, tools):
    widget = host(chat_run.run_id)
    first = widget.render("out1")
    widget.wait_ready()
    widget.deliver(chat_run.json)
    tools.wait_rendered(first, chat_run)
    sent = widget.sent()

    second = widget.render("out2")
    tools.wait_rendered(second, chat_run)
    assert tools.snapshot(second)["text"] == tools.snapshot(first)["text"]
    assert len(tools.snapshot(second)["tokens"]) == chat_run.token_count()
    assert widget.sent() == sent  # the kernel was not asked for anything


def test_widget_saved_output_renders_without_a_kernel(page, host, chat_run, tools, screenshot):
    widget = host(chat_run.run_id, final=chat_run.json, kernel=False)
    frame = widget.render()
    tools.wait_rendered(frame, chat_run)
    shown = tools.snapshot(frame)
    screenshot(page, "widget-saved")
    assert shown["text"] == chat_run.shown_text()
    assert shown["roles"] == ["user", "assistant", "user", "assistant"]
    assert frame.locator(".rudder").get_attribute("data-status") == "done"


# -- hostile output ---------------------------------------------------------------------------


def assert_inert(shown: dict[str, Any], hostile: str, scripts: list[dict[str, str]]) -> None:
    # Shown as text twice: the user's text, and the tokens the model generated.
    assert shown["text"].count(hostile) == 2, shown["text"]
    assert shown["images"] == 0
    assert shown["scripts"] == scripts


def test_hostile_text_is_shown_not_run_in_the_page(watched, hostile_run, tools, screenshot):
    page = watched.page
    hostile = tools.HOSTILE
    assert hostile_run.program_text.endswith(hostile)  # the model generated it too
    tools.open_inline(page, hostile_run)
    tools.wait_rendered(page, hostile_run)
    shown = tools.snapshot(page)
    assert shown["text"] == hostile_run.shown_text()
    page_scripts = [
        {"id": "rudder-data", "type": "application/json"},
        {"id": "rudder-candidates", "type": "application/json"},
        {"id": "", "type": ""},
    ]
    assert_inert(shown, hostile, page_scripts)
    # The tooltip of a generated token shows candidates made of the same bytes.
    generated = page.locator(".rd-text .rd-src-generated")
    generated.nth(0).hover()
    expect(page.locator(".rd-tooltip")).to_be_visible()
    screenshot(page, "hostile-inline")
    assert tools.snapshot(page)["images"] == 0
    assert watched.dialogs == []


def test_hostile_text_is_shown_not_run_in_the_widget(watched, host, hostile_run, tools):
    page = watched.page
    widget = host(hostile_run.run_id)
    frame = widget.render()
    widget.wait_ready()
    widget.deliver(hostile_run.json)
    tools.wait_rendered(frame, hostile_run)
    shown = tools.snapshot(frame)
    assert_inert(shown, tools.HOSTILE, [{"id": "", "type": ""}])
    frame.locator(".rd-text .rd-src-generated").nth(0).hover()
    expect(frame.locator(".rd-tooltip")).to_be_visible()
    assert tools.snapshot(frame)["images"] == 0
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert watched.dialogs == []


# -- backtracking ----------------------------------------------------------------------------


@pytest.fixture
def backtracked(chat_run, tools):
    """A generation that wrote five tokens, took back two and wrote four more (by hand, from
    the chat run's first generation: 'The capital of France is Paris.')."""
    messages = chat_run.messages
    node = next(
        m.node for m in messages if m.type == "node_added" and m.node.input.kind == "grammar"
    )
    appended = [m for m in messages if m.type == "tokens_appended" and m.node_id == node.id]
    tokens = [t for m in appended for t in m.tokens]
    table = [entry for m in appended for entry in m.table]  # the ids the tokens name
    run_id = chat_run.run_id
    stream = [
        messages[0],
        NodeAdded(seq=1, run_id=run_id, node=node.model_copy(update={"parent_id": None})),
        TokensAppended(seq=2, run_id=run_id, node_id=node.id, table=table, tokens=tokens[:5]),
        Backtrack(seq=3, run_id=run_id, node_id=node.id, tokens=2),
        TokensAppended(seq=4, run_id=run_id, node_id=node.id, tokens=tokens[3:]),
    ]
    recorded = tools.Recorded(run_id, stream)
    assert recorded.view.text() == "The capital of France is Paris."
    return recorded


BACKTRACK_TEXTS = ["The", " capital", " of", " France", " is", " France", " is", " Paris", "."]
BACKTRACK_FLAGS = [False, False, False, True, True, False, False, False, False]


def assert_backtrack_shown(shown: dict[str, Any], recorded: Any, tools: Any) -> None:
    tokens = shown["tokens"]
    assert [t["text"] for t in tokens] == BACKTRACK_TEXTS
    assert ["rd-backtracked" in t["classes"] for t in tokens] == BACKTRACK_FLAGS
    for token, taken_back in zip(tokens, BACKTRACK_FLAGS, strict=True):
        assert ("line-through" in token["decoration"]) == taken_back, token
    kept = "".join(t["text"] for t in tokens if "rd-backtracked" not in t["classes"])
    assert kept == tools.visible(recorded.view.text())


def test_backtracked_tokens_are_struck_through_inline(page, backtracked, tools, screenshot):
    tools.open_inline(page, backtracked)
    tools.wait_rendered(page, backtracked, tokens=len(BACKTRACK_TEXTS))
    page.locator(".rd-text .rd-backtracked").first.hover()
    expect(page.locator(".rd-tooltip .rd-tip-backtracked")).to_have_text("backtracked")
    screenshot(page, "backtrack-inline")
    assert_backtrack_shown(tools.snapshot(page), backtracked, tools)


def test_backtracked_tokens_are_struck_through_live(page, host, backtracked, tools, screenshot):
    widget = host(backtracked.run_id)
    frame = widget.render()
    widget.wait_ready()
    widget.deliver(backtracked.subset(lambda seq: seq <= 2))
    frame.wait_for_function(
        "() => window.rudder.state.lastSeq === 2"
        " && document.querySelectorAll('.rd-text .rd-token').length === 5"
    )
    assert frame.locator(".rd-text .rd-backtracked").count() == 0
    widget.deliver(backtracked.subset(lambda seq: seq > 2))
    tools.wait_rendered(frame, backtracked, tokens=len(BACKTRACK_TEXTS))
    screenshot(page, "backtrack-live")
    assert_backtrack_shown(tools.snapshot(frame), backtracked, tools)
