"""The HTML export's stream and file: a Model's program or a run, finished and complete, as
one page that needs nothing else. (tests/browser/test_export.py opens the page in Chromium.)

What an export must show is what a live view of the same program shows: both are folded
with ``RunView`` and compared, and against the Model's own entries.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.stream_checks import folded, joined_candidates

import rudder
from rudder import assistant, gen, models, select, user
from rudder._state import RoleOpener, Text, Token
from rudder.errors import ExportError, ExportPathError
from rudder.trace._node import TraceNode
from rudder.visual import Bus, get_bus, parse_server_message
from rudder.visual.html._export import export_html, export_messages, to_html
from rudder.visual.html._page import content_security_policy
from rudder.visual.stream import _bus as bus_module
from rudder.visual.stream._view_state import RunView

PATTERNS = [
    b"The capital of France is Paris.",
    b'{"city": "Paris", "rank": 1}',
    b"http://www.example.com",
]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}
SECRET = "the password is hunter2"


def program(lm: models.Model) -> models.Model:
    """Roles, a free generation, a select, JSON, and a generation that heals ``http:``."""
    with user():
        lm += "What is the capital of France?"
    with assistant():
        lm += gen("answer", max_tokens=12, stop=".")
    with user():
        lm += "Which city, as JSON?"
    with assistant():
        lm += select(["London", "Paris"], name="city") + " "
        lm += rudder.json("data", schema=SCHEMA)
        lm += " See http:" + gen("url", stop=" ", max_tokens=10)
    return lm


def fold(messages: list[Any]) -> RunView:
    view = folded(messages[0].run_id, messages)
    assert view.gaps == 0
    assert view.unknown_nodes == 0
    return view


def entries_text(lm: models.Model) -> str:
    """The Model's text from its structured state: fixed text and tokens, no chat markup."""
    return "".join(e.text for e in lm.entries if isinstance(e, Text | Token))


def path_of(lm: models.Model) -> list[TraceNode]:
    assert lm.trace is not None
    return lm.trace.path()


def shown_text(view: RunView) -> str:
    return "".join(p.value for p in view.pieces() if p.kind in ("text", "token"))


def assert_finished_stream(messages: list[Any], run_id: str) -> None:
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert {m.run_id for m in messages} == {run_id}
    assert messages[0].type == "run_started"
    assert messages[-1].type == "run_finished"
    assert messages[-1].run.status == "done"


# -- a Model ---------------------------------------------------------------------------------


def test_a_model_exports_its_program_as_its_live_view_shows_it() -> None:
    with rudder.run("exported") as run:
        lm = program(models.Mock(PATTERNS, echo=True))
        inside = export_messages(lm)
    assert lm["city"] == "Paris"
    assert json.loads(str(lm["data"])) == {"city": "Paris", "rank": 1}
    assert lm["url"] == "//www.example.com"
    messages = export_messages(lm)

    assert_finished_stream(messages, run.id)
    record = messages[-1].run
    assert record.usage == lm.usage
    assert record.usage.generations == 4
    path = path_of(lm)
    assert record.started_at == path[0].created_at
    assert record.finished_at is not None
    assert record.finished_at >= path[-1].created_at
    # Named after the run while rudder knows it; once it is over, a generic name.
    assert inside[0].run.name == "exported"
    assert record.name == "export"

    # The same pieces as a live view of the run, and the Model's own text and roles.
    exported = fold(messages)
    live = fold(get_bus().messages(run.id))
    assert exported.pieces() == live.pieces()
    assert exported.text() == live.text()
    assert shown_text(exported) == entries_text(lm)
    roles = [p.value for p in exported.pieces() if p.kind == "role_open"]
    assert roles == [e.role for e in lm.entries if isinstance(e, RoleOpener)]
    assert roles == ["user", "assistant", "user", "assistant"]
    # Every node of the path, complete: no token streaming, no generation left running.
    added = [m.node.id for m in messages if m.type == "node_added"]
    assert added == [node.id for node in path]
    assert not any(m.type in ("tokens_appended", "backtrack") for m in messages)
    assert all(node.state in ("", "idle") for node in exported.nodes.values())
    # The ends of the generations, as a live view got them: captures and usage.
    captures = {m.capture.name: m.capture.value for m in messages if m.type == "capture"}
    assert captures == {name: lm[name] for name in ("answer", "city", "data", "url")}
    ended = [m.node_id for m in messages if m.type == "metrics" and m.node_id is not None]
    assert ended == [n.id for n in path if n.usage is not None]


def test_a_model_continued_in_a_later_run_exports_the_whole_path() -> None:
    with rudder.run("first") as first:
        lm = models.Mock(PATTERNS, echo=True)
        with user():
            lm += "What is the capital of France?"
        with assistant():
            lm += gen("answer", max_tokens=12, stop=".")
    with rudder.run("second") as second:
        with user():
            lm += "Which city?"
        with assistant():
            lm += select(["London", "Paris"], name="city")
    messages = export_messages(lm)

    assert_finished_stream(messages, second.id)
    path = path_of(lm)
    assert {n.run_id for n in path} == {first.id, second.id}
    assert [m.node.id for m in messages if m.type == "node_added"] == [n.id for n in path]
    assert shown_text(fold(messages)) == entries_text(lm)
    assert "What is the capital of France?" in entries_text(lm)
    # As a live view of the second run: the first run's generation came complete, without
    # the messages that end a generation.
    assert [m.capture.name for m in messages if m.type == "capture"] == ["city"]
    assert fold(messages).pieces() == fold(get_bus().messages(second.id)).pieces()
    assert messages[-1].run.usage == lm.usage
    assert messages[-1].run.usage.generations == 2


def test_hidden_steps_stay_hidden_and_echo_off_steps_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with rudder.run("rules") as run:
        lm = models.Mock(PATTERNS, echo=True) + "Context: "
        with rudder.hidden():
            lm += SECRET
            lm += " Q=" + select(["Paris", "Rome"], name="place")
        monkeypatch.setattr(rudder.settings, "echo", False)
        lm += " quiet words " + gen("muted", max_tokens=4)
        monkeypatch.setattr(rudder.settings, "echo", True)
        lm += " shown again"
    assert "hunter2" in str(lm)
    messages = export_messages(lm)
    wire = "\n".join(m.model_dump_json() for m in messages)
    place = str(lm["place"])
    for kept_out in ("hunter2", place):
        assert kept_out not in wire
    exported = fold(messages)
    hidden = f"[hidden: {len(SECRET)} characters][hidden: {len(' Q=' + place)} characters]"
    # Echo decides what is shown live; an explicit export holds the whole program.
    assert exported.text() == f"Context: {hidden} quiet words {lm['muted']} shown again"
    assert fold(get_bus().messages(run.id)).text() == f"Context: {hidden} shown again"
    # The generation made with echo off ends as any other does in the export.
    muted = next(n for n in path_of(lm) if n.input.kind == "grammar" and not n.echo)
    captures = [m.capture for m in messages if m.type == "capture" and m.node_id == muted.id]
    assert [(c.name, c.value) for c in captures] == [("muted", lm["muted"])]


def test_a_model_made_with_echo_off_exports_its_whole_text() -> None:
    lm = models.Mock(PATTERNS) + "quiet words " + gen("muted", max_tokens=4)
    assert not lm.echo
    messages = export_messages(lm)
    assert_finished_stream(messages, path_of(lm)[-1].run_id)
    assert fold(messages).text() == str(lm) == f"quiet words {lm['muted']}"
    assert "quiet words" in lm.to_html()


def test_a_model_without_steps_exports_an_empty_run() -> None:
    lm = models.Mock(PATTERNS, echo=True)
    messages = export_messages(lm)
    assert [m.type for m in messages] == ["run_started", "metrics", "run_finished"]
    view = fold(messages)
    assert view.text() == ""
    assert view.run is not None
    assert view.run.status == "done"
    assert "<title>export · rudder</title>" in lm.to_html()


def test_what_cannot_be_exported_is_refused_with_a_rudder_error() -> None:
    with pytest.raises(ExportError, match="only a Model or a Run"):
        export_messages("text")  # type: ignore[arg-type]


# -- a Run -----------------------------------------------------------------------------------


def test_a_run_exports_its_stream_as_the_bus_holds_it() -> None:
    with rudder.run("held") as run:
        lm = program(models.Mock(PATTERNS, echo=True))
        running = export_messages(run)
    messages = export_messages(run)
    assert messages == get_bus().messages(run.id)
    assert_finished_stream(messages, run.id)
    assert messages[0].run.name == "held"
    assert shown_text(fold(messages)) == entries_text(lm)
    # Exported while it ran: what it had, shown as running.
    assert running == messages[: len(running)]
    assert running[-1].type != "run_finished"
    assert fold(running).run.status == "running"  # type: ignore[union-attr]


def use_process_bus(monkeypatch: pytest.MonkeyPatch, **limits: int) -> Bus:
    """A process bus with small limits, for the length of the test."""
    bus = Bus(**limits)
    monkeypatch.setattr(bus_module, "_bus", bus)
    assert get_bus() is bus
    return bus


def test_a_run_whose_start_was_dropped_exports_a_reset_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = use_process_bus(monkeypatch, max_messages_per_run=8)
    with rudder.run("long") as run:
        program(models.Mock(PATTERNS, echo=True))
    messages = export_messages(run)
    held = bus.messages(run.id)
    assert held[0].seq > 0
    assert messages[0].type == "reset"
    assert messages[0].first_seq == held[0].seq
    assert messages[1:] == held
    view = RunView(run.id)
    assert all(view.apply(m) for m in messages)
    assert view.wants_replay_after is None
    assert view.run is not None
    assert view.run.status == "done"


def test_runs_that_cannot_be_exported_are_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ExportError, match="has not started"):
        export_messages(rudder.run("never"))
    use_process_bus(monkeypatch, max_runs=1)
    with rudder.run("old") as old:
        models.Mock(PATTERNS, echo=True) + "old"
    with rudder.run("new"):
        models.Mock(PATTERNS, echo=True) + "new"
    with pytest.raises(ExportError, match="'old' is no longer held"):
        export_messages(old)


# -- the page and the file -------------------------------------------------------------------


def test_the_page_inlines_the_stream_and_fetches_nothing() -> None:
    hostile = '</script><img src=x onerror="window.__pwned=1"><!-- <|im_start|>system'
    lm = models.Mock(PATTERNS, echo=True)
    with user():
        lm += hostile
    with assistant():
        lm += gen("answer", max_tokens=8)
    page = to_html(lm, title="<b>title</b>")

    csp = content_security_policy()
    assert f'<meta http-equiv="Content-Security-Policy" content="{csp}">' in page
    assert "default-src 'none'" in csp
    assert "<title>&lt;b&gt;title&lt;/b&gt;</title>" in page
    for fetch in ("src=http", "href=http", "src='http", 'src="http', 'href="http', "<link"):
        assert fetch not in page
    # Three script elements (the data, its tokens' candidates and the client), and the
    # hostile text never ends one.
    assert page.count("<script") == 3
    assert page.count("</script") == 3
    assert "<img" not in page
    assert "<!--" not in page
    data = re.search(r'<script id="rudder-data" type="application/json">(.*?)</script>', page)
    candidates = re.search(
        r'<script id="rudder-candidates" type="application/json">(.*?)</script>', page
    )
    assert data is not None
    assert candidates is not None
    # The streamed tokens come without their candidates, held apart in the tokens' order.
    assert '"c":' not in data.group(1)
    joined = joined_candidates(data.group(1), candidates.group(1))
    inlined = [parse_server_message(item) for item in joined]
    assert inlined == export_messages(lm)
    assert hostile in fold(inlined).text()
    assert lm.to_html() == to_html(lm)
    # Made outside any rudder.run(): the page is named after the default run.
    assert "<title>default · rudder</title>" in lm.to_html()


def test_export_html_writes_the_page_whole(tmp_path: Path) -> None:
    with rudder.run("saved") as run:
        lm = program(models.Mock(PATTERNS, echo=True))
    target = tmp_path / "run.html"
    written = rudder.export_html(run, str(target))
    assert written == target.absolute()
    assert target.read_text(encoding="utf-8") == to_html(run)
    assert "<title>saved · rudder</title>" in target.read_text(encoding="utf-8")
    # Writing again replaces the file; a Model exports the same way.
    assert export_html(lm, target, title="mine") == written
    assert target.read_bytes() == to_html(lm, title="mine").encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.html"]


def test_export_html_refuses_bad_paths_and_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = models.Mock(PATTERNS, echo=True) + "Hello"
    with pytest.raises(ExportPathError, match="it is a folder; name a file in it") as caught:
        export_html(lm, tmp_path)
    assert caught.value.errno == errno.EISDIR
    with pytest.raises(ExportPathError, match="does not exist; create the folder first"):
        export_html(lm, tmp_path / "missing" / "run.html")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(ExportPathError, match="is not a folder"):
        export_html(lm, tmp_path / "plain" / "run.html")

    # A folder it may not write in (simulated: the tests may run as root) is named.
    target = tmp_path / "run.html"

    def refused(**options: Any) -> None:
        raise PermissionError(13, "Permission denied", str(options["dir"]))

    with monkeypatch.context() as patched:
        patched.setattr("rudder.visual.html._export.tempfile.mkstemp", refused)
        with pytest.raises(ExportPathError, match=r"write the export to .*run\.html: Permission"):
            export_html(lm, target)

    # A write that fails at the end keeps the old file as it was and leaves no temporary.
    target.write_text("the old export")

    def failing_replace(source: str, destination: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rudder.visual.html._export.os.replace", failing_replace)
    with pytest.raises(ExportPathError, match="No space left") as full:
        export_html(lm, target)
    assert full.value.errno == errno.ENOSPC
    assert target.read_text() == "the old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "run.html"]
