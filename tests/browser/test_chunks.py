"""The run's text in chunks laid out once (web/src/chunks.ts), in Chromium: a long run with
hostile text, CJK and emoji split over byte-level tokens, shown inline, streamed, in a saved
notebook, backtracked across a chunk's end; sealed chunks left alone by later messages;
copying and the browser's find across chunks."""

from __future__ import annotations

import colorsys
import json
import math
from typing import Any

import pytest
from playwright.sync_api import Frame, Page

import rudder
from rudder._chromium import serve_files
from rudder.models import Mock
from rudder.trace._records import ExploredRecord
from rudder.visual import get_bus
from rudder.visual.html._page import client_page
from rudder.visual.stream._protocol import Backtrack

#: One line of the long run: markup, a script end, an escape code, a chat marker, CJK and
#: an emoji (several byte-level tokens each).
LINE = "{:03d} <b>bold</b></script> \x1b[31m 東京 🦀 <|im_start|>\n"
LINES = 40

# The view's text, its chunks, its elements, and what a selection of all of it copies,
# beside what the same text as one text node in a box styled alike copies.
READ_JS = """() => {
  const text = document.querySelector(".rd-text");
  const selection = getSelection();
  const copy = (element) => {
    selection.selectAllChildren(element);
    const copied = selection.toString();
    selection.removeAllRanges();
    return copied;
  };
  const plain = document.createElement("div");
  plain.className = "rd-text";
  plain.textContent = text.textContent;
  text.after(plain);
  const reference = {copied: copy(plain)};
  plain.remove();
  const copied = copy(text);
  const shown = [...text.querySelectorAll(".rd-token, .rd-input")]
    .filter((span) => !span.classList.contains("rd-backtracked"))
    .map((span) => span.textContent).join("");
  return {
    text: text.textContent,
    shown,
    copied,
    reference,
    chunks: [...text.children].map((chunk) => ({
      sealed: chunk.classList.contains("rd-sealed"),
      text: chunk.textContent,
      classes: chunk.className,
      backtracked: chunk.querySelectorAll(".rd-backtracked").length,
    })),
    tags: [...new Set([...text.querySelectorAll("*")].map((node) => node.tagName.toLowerCase()))],
    tokens: text.querySelectorAll(".rd-token").length,
    backtracked: [...text.querySelectorAll(".rd-backtracked")].map((span) => span.textContent),
  };
}"""


# Keeps the sealed chunks `selector` finds now, and notes every change inside them.
WATCH_SEALED_JS = """(selector) => {
  window.__sealed = [...document.querySelectorAll(selector)];
  window.__changes = [];
  const observer = new MutationObserver((records) => window.__changes.push(...records));
  const all = {childList: true, subtree: true, characterData: true, attributes: true};
  for (const chunk of window.__sealed) observer.observe(chunk, all);
  return window.__sealed.length;
}"""

# Whether the chunks kept are still the first `selector` finds, untouched.
KEPT_JS = """(selector) => {
  const now = [...document.querySelectorAll(selector)];
  return {
    same: window.__sealed.every((chunk, i) => now[i] === chunk && chunk.isConnected),
    changes: window.__changes.length,
    sealed: now.length,
  };
}"""


def shown(text: str) -> str:
    """The story as the client writes it: the escape code's ESC as ``\\x1b``, a newline as
    ``↵`` and the newline."""
    return text.replace("\x1b", "\\x1b").replace("\n", "↵\n")


def shown_text(run: Any) -> str:
    """What the view shows of ``run`` (``Recorded.shown_text`` with the ESC escaped)."""
    return run.shown_text().replace("\x1b", "\\x1b")


@pytest.fixture(scope="module")
def long_run() -> Any:
    story = "".join(LINE.format(i) for i in range(LINES))
    with rudder.run("long run") as run:
        lm = Mock(["Story: " + story], echo=True) + "Story: " + rudder.gen("s", max_tokens=3000)
    assert str(lm) == "Story: " + story
    return run.id, get_bus().messages(run.id)


def recorded(tools: Any, run: Any) -> Any:
    run_id, messages = run
    return tools.Recorded(run_id, messages)


def read(frame: Page | Frame) -> dict[str, Any]:
    """What the view shows, once it showed the latest state."""
    frame.wait_for_function("() => rudder.view.shownRevision === rudder.state.revision")
    return frame.evaluate(READ_JS)  # type: ignore[no-any-return]


def assert_whole_story(view: dict[str, Any], text: str) -> None:
    """The view shows ``text`` in several chunks, each sealed one ending a line, as text."""
    assert view["text"] == text
    # Copying gives what it gives of the text alone: chunks add no line breaks.
    assert view["copied"] == view["reference"]["copied"]
    assert view["copied"].rstrip("\n") == text.rstrip("\n")
    sealed = [chunk for chunk in view["chunks"] if chunk["sealed"]]
    assert len(sealed) >= 3, view["chunks"]
    assert all(chunk["text"].endswith("↵\n") for chunk in sealed)
    assert "".join(chunk["text"] for chunk in view["chunks"]) == text
    # No markup became an element.
    assert set(view["tags"]) == {"span"}


def test_a_long_run_inlined_shows_in_sealed_chunks_with_its_text_as_text(
    page, watched, tools, long_run
) -> None:
    run = recorded(tools, long_run)
    tools.open_inline(page, run)
    tools.wait_rendered(page, run)
    view = read(page)
    assert_whole_story(view, "Story: " + shown("".join(LINE.format(i) for i in range(LINES))))
    assert view["tokens"] == run.token_count()
    assert "東京 🦀" in view["text"]  # characters split over tokens shown whole
    assert "\ufffd" not in view["text"]
    assert watched.dialogs == []


def test_a_token_in_a_sealed_chunk_still_has_its_tooltip(page, tools, long_run) -> None:
    run = recorded(tools, long_run)
    tools.open_inline(page, run)
    tools.wait_rendered(page, run)
    page.locator(".rd-sealed .rd-token").nth(3).hover()
    assert page.locator(".rd-tooltip").is_visible()
    assert page.locator(".rd-tooltip .rd-tip-source").text_content() == "generated"


def test_the_browser_finds_text_in_a_chunk_off_screen(page, tools, long_run) -> None:
    run = recorded(tools, long_run)
    tools.open_inline(page, run)
    tools.wait_rendered(page, run)
    last = f"{LINES - 1:03d} <b>"
    page.evaluate("() => window.scrollTo(0, 0)")
    # The last line is in a chunk far below the window: skipped by layout, still found.
    assert page.evaluate("(text) => window.find(text)", last)
    assert page.evaluate("() => getSelection().toString()") == last


# The tokens the view's text holds: spans, and tokens held as text by chunks not yet built.
HELD_JS = """() => ({
  spans: document.querySelectorAll(".rd-text .rd-token").length,
  unbuilt: [...document.querySelectorAll(".rd-text .rd-lazy")]
    .reduce((sum, chunk) => sum + Number(chunk.dataset.unbuilt), 0),
  lazy: document.querySelectorAll(".rd-text .rd-lazy").length,
})"""


def test_chunks_away_from_the_screen_hold_text_until_scrolled_near(browser, tools, long_run):
    """On a short screen the long run's later chunks wait to be built: their text is in the
    page (found, copied), their spans are built when scrolled near, with their tooltips."""
    run = recorded(tools, long_run)
    context = browser.new_context(
        viewport={"width": 1000, "height": 240}, screen={"width": 1000, "height": 240}
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        tools.open_inline(page, run)
        view = read(page)
        held = page.evaluate(HELD_JS)
        assert held["lazy"] >= 3, held
        assert held["spans"] + held["unbuilt"] == run.token_count()
        assert_whole_story(view, shown_text(run))
        assert "東京 🦀" in view["text"]
        # The browser's find sees the text of a chunk not built; its selection is kept
        # when the find scrolls the chunk near and it is built.
        last = f"{LINES - 1:03d} <b>bold</b></script>"
        page.evaluate("() => window.scrollTo(0, 0)")
        assert page.evaluate("(text) => window.find(text)", last)
        page.wait_for_function(
            "() => document.querySelector('.rd-text > .rd-chunk:last-child .rd-token') !== null"
        )
        assert page.evaluate("() => getSelection().toString()") == last
        # Scrolled into view, a chunk's tokens have their tooltips.
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        page.locator(".rd-text > .rd-chunk:last-child .rd-token").nth(2).hover()
        assert page.locator(".rd-tooltip").is_visible()
        assert page.locator(".rd-tooltip .rd-tip-source").text_content() == "generated"
        # Built, each chunk holds what it held as text.
        page.evaluate(
            "() => { for (const c of document.querySelectorAll('.rd-text > .rd-chunk')) {"
            " c.scrollIntoView(); } }"
        )
        page.wait_for_function("() => document.querySelector('.rd-text .rd-lazy') === null")
        built = read(page)
        assert built["chunks"] == [
            {**chunk, "classes": chunk["classes"].replace(" rd-lazy", "")}
            for chunk in view["chunks"]
        ]
        assert built["tokens"] == run.token_count()
        assert built["shown"] == built["text"] == shown_text(run)
    finally:
        context.close()


# At the client's first render of the run (the mutations' callback after the task that
# rendered), before the browser said which chunks are near: where each chunk starts, in the
# window and below the text's start, and whether it is built.
FIRST_RENDER_JS = """
new MutationObserver((records, observer) => {
  const chunks = document.querySelectorAll(".rd-text > .rd-chunk");
  if (chunks.length === 0) return;
  observer.disconnect();
  const textTop = document.querySelector(".rd-text").getBoundingClientRect().top;
  window.__firstRender = [...chunks].map((chunk) => {
    const top = chunk.getBoundingClientRect().top;
    return {top, below_text: top - textTop, built: !chunk.classList.contains("rd-lazy")};
  });
}).observe(document, {childList: true, subtree: true});
"""


@pytest.fixture(scope="module")
def paragraph_run() -> Any:
    """A long paragraph without line ends, so that how many characters a line holds (the
    window's width) decides how far down each chunk starts. Mostly ASCII: a wide character
    (東京, 🦀) counts as one, so text made of them is estimated shorter than it shows."""
    words = " ".join(f"word{i:04d} <b>" + (" 東京🦀" if i % 20 == 0 else "") for i in range(200))
    with rudder.run("paragraph run") as run:
        lm = Mock(["Text: " + words], echo=True) + "Text: " + rudder.gen("s", max_tokens=3500)
    assert str(lm) == "Text: " + words
    return run.id, get_bus().messages(run.id)


@pytest.mark.parametrize("width", [420, 1000, 1800])
def test_the_first_render_builds_the_chunks_that_start_on_screen_and_no_more(
    browser, tools, paragraph_run, width: int
) -> None:
    """Whatever the window's width: every chunk that starts on screen is built by the first
    render (the first frame shows coloured tokens), and every chunk built then starts within
    a screen's height of the text's start (the first frame builds no spans far below it)."""
    run = recorded(tools, paragraph_run)
    height = 150
    context = browser.new_context(
        viewport={"width": width, "height": height}, screen={"width": width, "height": height}
    )
    page_html = client_page(run.json).encode()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.add_init_script(FIRST_RENDER_JS)  # runs in a document loaded, not one written
        with serve_files({"/run.html": (page_html, "text/html; charset=utf-8")}) as base:
            page.goto(f"{base}/run.html")
        chunks = page.wait_for_function("() => window.__firstRender").json_value()
        assert len(chunks) >= 4, chunks
        assert any(chunk["top"] < height for chunk in chunks)
        assert any(chunk["top"] >= height for chunk in chunks), "the run is longer than a screen"
        for chunk in chunks:
            if chunk["top"] < height:
                assert chunk["built"], (width, chunks)
            if chunk["built"]:
                assert chunk["below_text"] < height, (width, chunks)
        # Chunks below are built when scrolled near, to the same text.
        page.evaluate(
            "() => { for (const c of document.querySelectorAll('.rd-text > .rd-chunk')) {"
            " c.scrollIntoView(); } }"
        )
        page.wait_for_function("() => document.querySelector('.rd-text .rd-lazy') === null")
        assert read(page)["shown"] == shown_text(run)
    finally:
        context.close()


def open_empty(page: Page) -> None:
    page.set_content(client_page())
    page.wait_for_function("() => window.rudder !== undefined")


def receive(page: Page, messages: list[Any]) -> None:
    """Give the client ``messages`` and wait until the view showed them."""
    page.evaluate("(json) => window.rudder.receive(JSON.parse(json))", dumps(messages))
    page.wait_for_function(
        """(seq) => window.rudder.state.lastSeq === seq
            && window.rudder.view.shownRevision === window.rudder.state.revision""",
        arg=messages[-1].seq,
    )


def dumps(messages: list[Any]) -> str:
    return "[" + ",".join(message.model_dump_json() for message in messages) + "]"


def test_sealed_chunks_are_left_alone_by_later_messages(page, tools, long_run) -> None:
    run = recorded(tools, long_run)
    messages = run.messages
    appended = [i for i, m in enumerate(messages) if m.type == "tokens_appended"]
    assert len(appended) >= 4, "the run must stream in several batches"
    half = appended[len(appended) // 2] + 1
    open_empty(page)
    receive(page, messages[:half])
    sealed_before = page.evaluate(WATCH_SEALED_JS, ".rd-text .rd-sealed")
    assert sealed_before >= 2
    receive(page, messages[half:])
    tools.wait_rendered(page, run)
    kept = page.evaluate(KEPT_JS, ".rd-text .rd-sealed")
    # The same elements, in the same places, not touched: never laid out again.
    assert kept["same"]
    assert kept["changes"] == 0
    assert kept["sealed"] > sealed_before
    assert read(page)["text"] == shown_text(run)


def with_backtrack(messages: list[Any], tokens: int) -> list[Any]:
    """The run's messages with a backtrack of ``tokens`` tokens after its last batch (seq
    numbers made again)."""
    last = max(i for i, m in enumerate(messages) if m.type == "tokens_appended")
    node_id = messages[last].node_id
    back = Backtrack(seq=0, run_id=messages[0].run_id, node_id=node_id, tokens=tokens)
    stream = [*messages[: last + 1], back, *messages[last + 1 :]]
    return [m.model_copy(update={"seq": seq}) for seq, m in enumerate(stream)]


def test_backtracking_across_a_chunk_end_shows_the_text_that_is_left(page, tools, long_run) -> None:
    run = recorded(tools, long_run)
    # How many tokens the last chunk holds, from the run shown whole.
    open_empty(page)
    receive(page, run.messages)
    chunks = read(page)["chunks"]
    assert len(chunks) >= 3
    tokens_in_last = page.locator(".rd-text > .rd-chunk").last.locator(".rd-token").count()
    # Take back the last chunk's tokens and ten more: the cut lands in the chunk before.
    taken = tokens_in_last + 10
    messages = with_backtrack(run.messages, taken)
    after = tools.Recorded(run.run_id, messages)
    back_at = next(i for i, m in enumerate(messages) if m.type == "backtrack")
    open_empty(page)
    receive(page, messages[:back_at])
    assert read(page)["chunks"] == chunks
    receive(page, messages[back_at:])
    view = read(page)
    # What is left is the Python view's text; the taken tokens are shown struck through,
    # after it, in their order.
    assert view["shown"] == shown_text(after)
    # Each taken token shows its own text (a character's first bytes alone are U+FFFD).
    appended = [m for m in run.messages if m.type == "tokens_appended"]
    table = {entry.id: entry for m in appended for entry in m.table}
    records = [t for m in appended for t in m.tokens]
    assert view["backtracked"] == [shown(table[record.i].text) for record in records[-taken:]]
    assert view["text"] == view["shown"] + "".join(view["backtracked"])
    assert view["copied"] == view["reference"]["copied"]
    # Chunks end where they did (at the same line ends); those before the cut are as they were.
    assert len(view["chunks"]) == len(chunks)
    assert view["chunks"][:-2] == chunks[:-2]
    assert [c["backtracked"] for c in view["chunks"][-2:]] == [10, tokens_in_last]


def test_a_saved_notebook_shows_the_long_run_in_chunks(page, watched, host, tools, long_run):
    run = recorded(tools, long_run)
    widget = host(run.run_id, final=run.json, kernel=False)
    frame = widget.render()
    tools.wait_rendered(frame, run)
    view = read(frame)
    assert_whole_story(view, shown_text(run))
    assert watched.dialogs == []


def test_the_widget_streams_the_long_run_into_chunks(page, host, tools, long_run) -> None:
    run = recorded(tools, long_run)
    widget = host(run.run_id)
    frame = widget.render()
    widget.wait_ready()
    widget.deliver(run.json)
    tools.wait_rendered(frame, run)
    view = read(frame)
    assert_whole_story(view, shown_text(run))
    # The host posted JSON text: the same messages, folded in order, none missed.
    assert frame.evaluate("() => window.rudder.state.gaps") == 0
    assert json.loads(run.json)[-1]["seq"] == frame.evaluate("() => window.rudder.state.lastSeq")


def hsl(hue: float, saturation: float, lightness: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


def test_probability_and_latency_colours_come_in_twenty_one_steps(page, tools, chat_run) -> None:
    """A token's background is the hue of its probability (or latency) rounded to a step of
    5%: 6 degrees of hue a step, light theme's lightness."""
    tools.open_inline(page, chat_run)
    tools.wait_rendered(page, chat_run)
    records = [piece.token for piece in chat_run.view.pieces() if piece.kind == "token"]
    spans = page.locator(".rd-text .rd-token")
    background = "(spans) => spans.map((span) => getComputedStyle(span).backgroundColor)"
    for mode, hue in (
        ("probability", lambda r: round(r.prob * 20) * 6),
        ("latency", lambda r: 120 - round(latency_scale(r.latency_s) * 20) * 6),
    ):
        page.get_by_label("colour").select_option(mode)
        colours = spans.evaluate_all(background)
        checked = 0
        for record, colour in zip(records, colours, strict=True):
            if record.prob is None:
                continue
            got = tuple(int(part) for part in colour[colour.index("(") + 1 : -1].split(","))
            want = hsl(hue(record), 0.7, 0.86)
            assert all(abs(a - b) <= 1 for a, b in zip(got, want, strict=True)), (mode, record)
            checked += 1
        assert checked > 5


def latency_scale(latency_s: float) -> float:
    """web/src/format.ts latencyScale: 1 ms and below is 0, 1 s and above is 1."""
    if not latency_s > 0:
        return 0.0
    return min(1.0, max(0.0, (math.log10(latency_s) + 3) / 3))


def with_branch(messages: list[Any]) -> list[Any]:
    """The run's messages, then an explored branch from its generation's first token that
    streams the same tokens again (seq numbers made again)."""
    batches = [m for m in messages if m.type == "tokens_appended"]
    added = next(m for m in messages if m.type == "node_added" and m.node.id == batches[0].node_id)
    branch_id = max(m.node.id for m in messages if m.type == "node_added") + 1
    explored = ExploredRecord(node_id=added.node.id, token_index=0, token_id=batches[0].tokens[0].i)
    node = added.node.model_copy(update={"id": branch_id, "explored": explored})
    branch = [
        added.model_copy(update={"node": node}),
        *(batch.model_copy(update={"node_id": branch_id}) for batch in batches),
    ]
    return [m.model_copy(update={"seq": seq}) for seq, m in enumerate([*messages, *branch])]


def test_a_long_explored_branch_streams_into_chunks_left_alone(page, tools, long_run) -> None:
    run = recorded(tools, long_run)
    messages = with_branch(run.messages)
    half = len(run.messages) + (len(messages) - len(run.messages)) // 2
    open_empty(page)
    receive(page, messages[:half])
    sealed = page.evaluate(WATCH_SEALED_JS, ".rd-branch-text .rd-sealed")
    assert sealed >= 2
    receive(page, messages[half:])
    kept = page.evaluate(KEPT_JS, ".rd-branch-text .rd-sealed")
    assert kept["same"]
    assert kept["changes"] == 0
    assert kept["sealed"] > sealed
    # The generation's own text: token healing took the prompt's last space into it.
    story = " " + "".join(LINE.format(i) for i in range(LINES))
    assert page.locator(".rd-branch-text").text_content() == shown(story)
    # The program's text is the original's, whole.
    assert read(page)["text"] == shown_text(run)
