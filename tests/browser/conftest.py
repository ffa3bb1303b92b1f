"""Fixtures of the browser tier: Debian's Chromium driven by Playwright, runs recorded on
``models.Mock``, and a server on 127.0.0.1 for the notebook widget's host page.

One browser is started per session and every test gets a fresh context and page. Nothing
leaves the machine: the client page forbids every fetch (its CSP), and the widget's host
page is served from loopback. Screenshots go to ``tests/browser/artifacts/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Frame, Page

import rudder
from rudder._chromium import serve_files
from rudder.models import Mock
from rudder.models._mock import DEFAULT_MERGES
from rudder.visual import get_bus
from rudder.visual.html._page import client_page, messages_json
from rudder.visual.stream._view_state import RunView

ARTIFACTS = Path(__file__).parent / "artifacts"
WIDGET_JS = Path(str(resources.files("rudder.visual").joinpath("static", "widget.js")))

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"

# The notebook's side of the widget, as anywidget gives it: the real widget module, and a
# model object that hands out the synced traits, delivers the kernel's custom messages and
# records what the view sends to the kernel (or throws, like a saved notebook's).
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>widget host</title>
<style>body { margin: 0; font: 14px sans-serif; } .out { width: 960px; margin: 4px; }</style>
</head><body>
<div id="out1" class="out"></div><div id="out2" class="out"></div>
<script type="module">
import widget from "/widget.js";

class FakeModel {
  constructor(attrs, kernel) {
    this.attrs = attrs;
    this.kernel = kernel;
    this.listeners = new Map();
    this.sent = [];
  }
  get(name) { return this.attrs[name]; }
  on(event, callback) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(callback);
  }
  off(event, callback) { this.listeners.get(event)?.delete(callback); }
  send(content) {
    if (!this.kernel) throw new Error("no kernel: a saved notebook");
    this.sent.push(JSON.parse(JSON.stringify(content)));
  }
  emit(event, content) {
    for (const callback of [...(this.listeners.get(event) ?? [])]) callback(content, []);
  }
}

window.host = {
  model: null,
  setup(attrs, kernel) {
    this.model = new FakeModel(attrs, kernel);
    widget.initialize({model: this.model});
  },
  render(id) { widget.render({model: this.model, el: document.getElementById(id)}); },
  // One custom message per protocol message, as RunWidget.deliver sends them.
  deliver(json) {
    for (const message of JSON.parse(json)) {
      this.model.emit("msg:custom", {rudder: "messages", json: JSON.stringify([message])});
    }
  },
  sent() { return this.model.sent; },
};
window.hostReady = true;
</script></body></html>
"""

# What a view shows, read from the DOM: the text (role labels included), each token span's
# classes and computed background, and the page's img and script elements.
SNAPSHOT_JS = """() => {
  const text = document.querySelector(".rd-text");
  return {
    text: text === null ? null : text.textContent,
    tokens: [...document.querySelectorAll(".rd-text .rd-token")].map((span) => ({
      text: span.textContent,
      classes: [...span.classList],
      background: getComputedStyle(span).backgroundColor,
      decoration: getComputedStyle(span).textDecorationLine,
    })),
    roles: [...document.querySelectorAll(".rd-text .rd-role")].map((label) => label.textContent),
    body: document.body.innerText,
    images: document.querySelectorAll("img").length,
    scripts: [...document.scripts].map((script) => ({id: script.id, type: script.type})),
  };
}"""


def visible(text: str) -> str:
    """Text as the view prints it (web/src/format.ts ``visibleWhitespace``)."""
    return text.replace("\r", "␍").replace("\t", "→").replace("\n", "↵\n")


@dataclass
class Recorded:
    """One run's messages, as the process bus holds them, and what a view must show."""

    run_id: str
    messages: list[Any]
    program_text: str = ""
    view: RunView = field(init=False)

    def __post_init__(self) -> None:
        self.view = RunView(self.run_id)
        for message in self.messages:
            self.view.apply(message)

    @property
    def json(self) -> str:
        return messages_json(self.messages)

    def subset(self, keep: Callable[[int], bool]) -> str:
        """The messages whose seq ``keep`` accepts, as JSON."""
        return messages_json(m for m in self.messages if keep(m.seq))

    @property
    def last_seq(self) -> int:
        return self.messages[-1].seq

    def shown_text(self) -> str:
        """The text a view shows: fixed text and tokens with whitespace made visible, role
        labels as their names, hidden nodes as their placeholders."""
        out = []
        for piece in self.view.pieces():
            if piece.kind in ("text", "token"):
                out.append(visible(piece.value))
            elif piece.kind in ("role_open", "hidden"):
                out.append(piece.value)
        return "".join(out)

    def token_count(self) -> int:
        return sum(piece.kind == "token" for piece in self.view.pieces())


def record(program: Callable[[], Any]) -> Recorded:
    """Run ``program`` inside ``rudder.run()`` and take its messages from the bus."""
    with rudder.run("browser test") as run:
        lm = program()
    return Recorded(run.id, get_bus().messages(run.id), str(lm))


@pytest.fixture(scope="session")
def chat_run() -> Recorded:
    """Two chat turns: a free generation, then fixed text, a select and a regex (forced and
    generated tokens; the regex's digits are unlikely for the model, so its tooltips list
    forbidden candidates and the table of allowed ones)."""

    def program() -> Any:
        lm = Mock(byte_patterns=[b"The capital of France is Paris.", b"City: Paris"], echo=True)
        with rudder.user():
            lm += "What is the capital of France?"
        with rudder.assistant():
            lm += rudder.gen("answer", max_tokens=20)
        with rudder.user():
            lm += "Which city?\nAnd a\tcode."
        with rudder.assistant():
            lm += (
                "City: "
                + rudder.select(["London", "Berlin", "Paris"], name="city")
                + ", code "
                + rudder.regex("[0-9]{3}", name="code")
            )
        return lm

    return record(program)


@pytest.fixture(scope="session")
def hostile_run() -> Recorded:
    """Markup as a user's text and as the model's tokens."""

    def program() -> Any:
        # Whole tags as tokens: the Mock continues a pattern from its last 48 tokens.
        merges = (*DEFAULT_MERGES, "<img", " src=x", " onerror=", "alert", "<script>", "</script>")
        lm = Mock(byte_patterns=[HOSTILE.encode()], merges=merges, echo=True)
        with rudder.user():
            lm += HOSTILE
        with rudder.assistant():
            lm += rudder.gen("answer", max_tokens=80)
        return lm

    return record(program)


@pytest.fixture(scope="session")
def healed_run() -> Recorded:
    """Token healing: the prompt's last ':' is taken back and re-made as '://www'."""

    def program() -> Any:
        lm = Mock(byte_patterns=[b"Visit http://www.example.com"], echo=True)
        lm += "Visit http:"
        lm += rudder.gen("url", max_tokens=10)
        return lm

    recorded = record(program)
    assert any(getattr(m, "healed_bytes", 0) for m in recorded.messages), "no healing"
    return recorded


# -- the browser ------------------------------------------------------------------------------


@dataclass
class Watched:
    """A page, and what happened on it: dialogs opened (in any frame) and uncaught errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen = Watched(page)

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    yield seen
    context.close()
    assert seen.errors == [], f"uncaught errors in the page: {seen.errors}"


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take


class Tools:
    """The helpers tests use (a fixture, so that test modules import nothing from here)."""

    HOSTILE = HOSTILE
    Recorded = Recorded
    visible = staticmethod(visible)

    @staticmethod
    def snapshot(frame: Page | Frame) -> dict[str, Any]:
        """What the view in ``frame`` shows (see ``SNAPSHOT_JS``)."""
        return frame.evaluate(SNAPSHOT_JS)  # type: ignore[no-any-return]

    @staticmethod
    def wait_rendered(frame: Page | Frame, recorded: Recorded, tokens: int | None = None) -> None:
        """Wait until the view folded the run's last message and shows ``tokens`` spans
        (default: as many as the run's path has tokens)."""
        frame.wait_for_function(
            """([last, tokens]) => window.rudder !== undefined
                && window.rudder.state.lastSeq === last
                && document.querySelectorAll(".rd-text .rd-token").length === tokens""",
            arg=[recorded.last_seq, recorded.token_count() if tokens is None else tokens],
        )

    @staticmethod
    def open_inline(page: Page, messages: Recorded | str) -> None:
        """Load the client page with the messages (a run, or a JSON array) inlined."""
        data = messages if isinstance(messages, str) else messages.json
        page.set_content(client_page(data))


@pytest.fixture
def tools() -> type[Tools]:
    return Tools


# -- the widget's host page -------------------------------------------------------------------


@pytest.fixture(scope="session")
def host_url() -> Iterator[str]:
    """A server on 127.0.0.1 serving the host page and the built widget module."""

    files = {
        "/host.html": (HOST_PAGE.encode(), "text/html; charset=utf-8"),
        "/widget.js": (WIDGET_JS.read_bytes(), "text/javascript; charset=utf-8"),
    }
    with serve_files(files) as base:
        yield base


@dataclass
class Host:
    """The widget's host page with one fake model."""

    page: Page

    def sent(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => host.sent()")  # type: ignore[no-any-return]

    def deliver(self, messages_json_text: str) -> None:
        self.page.evaluate("(json) => host.deliver(json)", messages_json_text)

    def render(self, out: str = "out1") -> Frame:
        self.page.evaluate("(id) => host.render(id)", out)
        handle = self.page.wait_for_selector(f"#{out} iframe", state="attached")
        frame = handle.content_frame()
        assert frame is not None
        frame.wait_for_function("() => window.rudder !== undefined")
        return frame

    def wait_sent(self, predicate_js: str) -> None:
        """Wait until the host sent the kernel something ``predicate_js`` (a JS arrow
        function of one content object) accepts."""
        self.page.wait_for_function(f"() => host.sent().some({predicate_js})")

    def wait_ready(self) -> None:
        """The client said it is ready; the host, holding nothing, passed it to the kernel."""
        self.wait_sent("(c) => c.rudder === 'client' && c.message.type === 'client_ready'")


@pytest.fixture
def host(page: Page, host_url: str) -> Callable[..., Host]:
    def make(run_id: str, *, final: str = "", kernel: bool = True) -> Host:
        page.goto(f"{host_url}/host.html")
        page.wait_for_function("() => window.hostReady === true")
        attrs = {"_page": client_page(), "_final": final, "run_id": run_id}
        page.evaluate("([attrs, kernel]) => host.setup(attrs, kernel)", [attrs, kernel])
        return Host(page)

    return make
