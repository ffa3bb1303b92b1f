"""The notebook widget's kernel side, without a frontend: what it sends, what it saves when
the run ends, how it answers a client, and the static HTML of its output. (A real kernel
and JupyterLab are in tests/notebook.)"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

import pytest
from tests.stream_checks import joined_candidates

import rudder
from rudder import assistant, gen, models, select, user
from rudder.visual import get_bus, parse_server_message
from rudder.visual.html._page import (
    candidates_apart,
    client_page,
    client_script,
    inline_json,
    messages_json,
)
from rudder.visual.notebook._widget import RunWidget
from rudder.visual.stream._bus import Bus
from rudder.visual.stream._view_state import RunView

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


class Sent:
    """What a widget sent to its frontend, as protocol messages."""

    def __init__(self, widget: RunWidget) -> None:
        self.contents: list[Any] = []
        widget.send = self.contents.append  # type: ignore[method-assign,assignment]

    def messages(self) -> list[Any]:
        out = []
        for content in self.contents:
            assert content["rudder"] == "messages"
            out.extend(parse_server_message(item) for item in json.loads(content["json"]))
        return out


def program(lm: models.Model) -> models.Model:
    with user():
        lm += "Where is Paris? " + HOSTILE
    with assistant():
        lm += gen("answer", max_tokens=6) + " " + select(["yes", "no"], name="sure")
    return lm


def test_a_widget_sends_its_run_once_in_order_and_saves_it_when_done() -> None:
    run = rudder.run("shown")
    widget = RunWidget(run.id)  # before the run starts, so that the test sees every send
    sent = Sent(widget)
    with run:
        lm = program(models.Mock([b"Paris is in France"], echo=True))
    assert widget.flush(10)
    messages = sent.messages()
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert {m.run_id for m in messages} == {run.id}
    assert messages[-1].type == "run_finished"
    assert widget.finished
    saved = [parse_server_message(item) for item in json.loads(widget._final)]
    assert saved == get_bus().messages(run.id) == messages
    view = RunView(run.id)
    for message in saved:
        view.apply(message)
    answer = f"{lm['answer']} {lm['sure']}"
    # A role closes when the next step comes: this run ends inside the assistant role.
    assert view.text() == f"<user>Where is Paris? {HOSTILE}</user><assistant>{answer}"
    assert view.run is not None
    assert view.run.status == "done"


def test_a_widget_follows_only_its_own_run() -> None:
    with rudder.run("other") as other:
        models.Mock([b"abc"], echo=True) + "other run"
    run = rudder.run("mine")
    widget = RunWidget(run.id)
    sent = Sent(widget)
    with run:
        models.Mock([b"abc"], echo=True) + "mine"
    widget.flush(10)
    assert {m.run_id for m in sent.messages()} == {run.id}
    assert other.id not in widget._final


def test_replay_requests_are_answered_live_and_after_the_stream_closed() -> None:
    run = rudder.run("replayed")
    widget = RunWidget(run.id)
    sent = Sent(widget)
    with run:
        models.Mock([b"Paris"], echo=True) + "a" + gen("x", max_tokens=3)
        widget.flush(10)
        count = len(sent.messages())
        request = {"type": "replay_request", "v": 1, "seq": 0, "run_id": run.id, "after_seq": 1}
        widget._client_message(widget, {"rudder": "client", "message": request}, [])
        widget.flush(10)
        again = sent.messages()[count:]
        # Everything after seq 1 again (and any message published since).
        assert [m.seq for m in again] == list(range(2, max(count, again[-1].seq + 1)))
    widget.flush(10)
    widget.close_stream()
    total = len(get_bus().messages(run.id))
    before = len(sent.messages())
    ready = {"type": "client_ready", "v": 1, "seq": 1, "run_id": run.id, "last_seq": None}
    widget._client_message(widget, {"rudder": "client", "message": ready}, [])
    assert [m.seq for m in sent.messages()[before:]] == list(range(total))


def test_malformed_client_messages_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with rudder.run("bad client") as run:
        widget = RunWidget(run.id)
        sent = Sent(widget)
    widget.flush(10)
    before = len(sent.contents)
    with caplog.at_level(logging.WARNING, logger="rudder.visual"):
        widget._client_message(widget, {"rudder": "client", "message": {"type": "nonsense"}}, [])
        widget._client_message(widget, {"something": "else"}, [])
    assert "malformed message" in caplog.text
    assert len(sent.contents) == before


def test_a_saved_stream_whose_start_was_dropped_begins_with_a_reset() -> None:
    bus = Bus(max_messages_per_run=8)
    run = rudder.run("long")
    with _publishing_to(bus), run:
        widget = RunWidget(run.id, bus=bus)
        Sent(widget)
        lm = models.Mock([b"Paris"], echo=True)
        for index in range(12):
            lm += f"step {index} "
    widget.flush(10)
    saved = [parse_server_message(item) for item in json.loads(widget._final)]
    assert saved[0].type == "reset"
    assert saved[0].first_seq == saved[1].seq > 0
    view = RunView(run.id)
    assert all(view.apply(message) for message in saved)


class _publishing_to:
    """Publish the trace to ``bus`` (instead of the process's bus) inside the block."""

    def __init__(self, bus: Bus) -> None:
        from rudder.visual.stream._publisher import Publisher

        self.publisher = Publisher(bus)

    def __enter__(self) -> None:
        rudder.trace.add_listener(self.publisher)

    def __exit__(self, *exc: object) -> None:
        rudder.trace.remove_listener(self.publisher)


def test_the_output_carries_the_widget_and_escaped_static_html() -> None:
    with rudder.run("static") as run:
        widget = RunWidget(run.id)
        Sent(widget)
        program(models.Mock([b"<b>bold</b>"], echo=True))
    widget.flush(10)
    bundle = widget.mimebundle()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
    # Saved with the widget's state: a restored view looks its model up by it.
    assert widget.get_state()["_comm_id"] == widget.model_id
    page = bundle["text/html"]
    assert html.escape(HOSTILE) in page
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>" not in page
    assert ">user<" in page
    assert ">assistant<" in page
    assert "<|im_start|>" not in page
    assert "done" in page
    assert bundle["text/plain"].startswith("<user>Where is Paris? " + HOSTILE)
    assert bundle["text/plain"].endswith("]")
    assert "done · tokens" in bundle["text/plain"]
    assert "tokens" in page


def test_the_client_page_inlines_messages_that_cannot_break_out() -> None:
    messages = [{"text": "</script><script>alert(1)</script> <!-- \u2028 & >"}]
    text = json.dumps(messages)
    page = client_page(text)
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    data = re.search(r'<script id="rudder-data" type="application/json">(.*?)</script>', page, re.S)
    assert data is not None
    assert "<" not in data.group(1)
    assert "\u2028" not in data.group(1)
    assert json.loads(data.group(1)) == messages
    assert page.count("</script>") == 2  # the data's end and the client's end
    assert "</script" not in client_script()
    assert inline_json("<>&") == "\\u003c\\u003e\\u0026"
    with pytest.raises(ValueError, match="Expecting value"):
        client_page("[not json")


def test_the_client_page_holds_the_tokens_candidates_apart_in_their_order() -> None:
    """The page's messages come without their streamed tokens' candidates, which follow in a
    document of their own, one ``[c, d, a]`` per token in order: joined, the run's messages."""
    hostile = "</script><|im_start|>東京 🦀\x1b[31m"
    with rudder.run("apart") as run:
        models.Mock([hostile.encode()], echo=True) + "say: " + gen("out", max_tokens=12)
    text = messages_json(get_bus().messages(run.id))
    inlined, candidates = candidates_apart(text)
    assert candidates is not None
    tokens = [t for m in json.loads(text) if m["type"] == "tokens_appended" for t in m["tokens"]]
    assert json.loads(candidates) == [[t["c"], t["d"], t["a"]] for t in tokens]
    assert '"c":' not in inlined
    assert len(inlined) + len(candidates) < len(text) + 3 * len(tokens)
    joined = joined_candidates(inlined, candidates)
    assert joined == json.loads(text)
    assert [parse_server_message(m) for m in joined] == get_bus().messages(run.id)
    page = client_page(text)
    found = re.search(r'<script id="rudder-candidates" type="application/json">(.*?)<', page)
    assert found is not None
    assert json.loads(found.group(1)) == json.loads(candidates)
    # Messages without streamed tokens are inlined as they are, with no second document.
    plain = json.dumps([{"type": "run_started", "text": hostile}])
    assert candidates_apart(plain) == (plain, None)
    assert '<script id="rudder-candidates"' not in client_page(plain)


def test_messages_json_keeps_infinite_log_probabilities() -> None:
    with rudder.run("inf") as run:
        models.Mock([b"ab"], echo=True) + select(["ab", "zz"], name="pick")
    text = messages_json(get_bus().messages(run.id))
    assert [parse_server_message(m) for m in json.loads(text)] == get_bus().messages(run.id)
