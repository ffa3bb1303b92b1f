"""A process that runs programs for ever: what the views and the bus keep is bounded by
their settings, not by the number of programs, and no trace outlives its Models.

(``benchmarks/soak.py`` measures the process's memory over 100,000 programs per view.)
"""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Iterator

import pytest
from tests.stream_checks import folded

import rudder
from rudder import gen, models
from rudder.models._model import Model
from rudder.trace._events import add_listener, remove_listener
from rudder.trace._node import TraceNode
from rudder.visual.notebook._widget import RunWidget
from rudder.visual.stream._bus import Bus
from rudder.visual.stream._publisher import Publisher
from rudder.visual.terminal import _terminal
from rudder.visual.terminal._terminal import TerminalView
from rudder.visual.terminal._terminal_output import AppendOutput

PROGRAMS = 120
KEPT = 20  # nodes a live view keeps, lowered so that a few programs go past it


def trace_nodes() -> weakref.WeakSet[TraceNode]:
    """The trace nodes alive now (weakly): what earlier tests left is not this test's."""
    gc.collect()
    return weakref.WeakSet(o for o in gc.get_objects() if type(o) is TraceNode)


@pytest.fixture(autouse=True)
def earlier_nodes() -> Iterator[None]:
    global _earlier
    _earlier = trace_nodes()
    yield
    _earlier = weakref.WeakSet()


_earlier: weakref.WeakSet[TraceNode] = weakref.WeakSet()


def unheld_trace_nodes() -> list[TraceNode]:
    """The trace nodes this test made that are alive although no Model's path holds them."""
    gc.collect()
    objects = gc.get_objects()
    held: set[int] = set()
    # type() rather than isinstance(): isinstance reads __class__, which some objects
    # (torch's deprecated module attributes) answer with a warning.
    for model in (o for o in objects if issubclass(type(o), Model)):
        if model.trace is not None:
            held.update(id(node) for node in model.trace.path())
    return [o for o in objects if type(o) is TraceNode and id(o) not in held and o not in _earlier]


def many_programs(base: models.Model, count: int = PROGRAMS) -> str:
    """``count`` programs in the current run, each a new Model dropped at once; returns the
    text of the last."""
    text = ""
    for index in range(count):
        lm = base + f"Q{index} <|im_start|> 日本: " + gen("answer", max_tokens=3)
        text = str(lm)
    return text


@pytest.fixture
def followed_default_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TerminalView, str]]:
    """The terminal view (append-only, to a string) following the process's default run."""
    monkeypatch.setattr(_terminal, "LIVE_VIEW_NODES", KEPT)
    stream = io.StringIO()
    view = TerminalView(AppendOutput(stream))
    first = models.Mock(["x"], echo=True) + "the default run starts"
    assert first.trace is not None
    run_id = first.trace.run_id
    del first
    view.follow(run_id)
    yield view, run_id
    view.close()
    assert stream.getvalue()


def test_after_many_programs_the_terminal_view_keeps_a_bounded_run_and_no_trace(
    followed_default_run: tuple[TerminalView, str],
) -> None:
    view, run_id = followed_default_run
    base = models.Mock(["Hello there, friend."], echo=True)
    last = many_programs(base)
    assert view.wait_idle(30)
    run_view = view._runs[run_id].view
    assert len(run_view.nodes) <= KEPT
    # What it still holds draws the last program whole.
    assert run_view.text().endswith(last[-20:])
    assert unheld_trace_nodes() == []


def test_the_bus_keeps_no_trace_alive_when_no_one_reads_it() -> None:
    bus = Bus(max_runs=4, max_messages_per_run=100_000)
    publisher = Publisher(bus)
    add_listener(publisher)
    try:
        with rudder.run("unread") as run:
            many_programs(models.Mock(["Hello there."], echo=True))
        unread = bus.messages(run.id)
    finally:
        remove_listener(publisher)
    # The held messages were never read, yet the programs' traces are gone ...
    assert unheld_trace_nodes() == []
    # ... and the messages still build (from snapshots of the nodes) when read.
    nodes = [m.node for m in unread if m.type == "node_added"]
    assert len(nodes) >= 2 * PROGRAMS
    assert nodes[-1].parent_id == nodes[-2].id
    assert "日本" in nodes[-2].entries[0].text


def test_a_bounded_run_view_keeps_the_path_of_the_last_node_whole() -> None:
    bus = Bus()
    publisher = Publisher(bus)
    add_listener(publisher)
    try:
        with rudder.run("long") as run:
            base = models.Mock(["Hello there."], echo=True) + "a shared system prompt · "
            for index in range(40):
                _ = base + f"question {index}"  # short programs on one base: forgotten
            interleaved = base + "started early · "
            for index in range(40):
                _ = base + f"question {index}"
            lm = base + "the last question"
            late = interleaved + "ended late"
    finally:
        remove_listener(publisher)
    view = folded(run.id, bus.messages(run.id), max_nodes=16)
    assert len(view.nodes) <= 16
    # The base, the oldest node, is on the last path, so it stays.
    assert view.text(lm.trace.id) == str(lm)  # type: ignore[union-attr]
    # A path whose older part was forgotten starts at the oldest node still held.
    assert view.text() == "ended late" != str(late)
    assert view.text(interleaved.trace.id) == ""  # type: ignore[union-attr]


def test_a_widget_following_a_run_of_many_programs_keeps_a_bounded_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rudder.visual.notebook import _widget

    monkeypatch.setattr(_widget, "LIVE_VIEW_NODES", KEPT)
    run = rudder.run("a cell that loops")
    widget = RunWidget(run.id)
    widget.send = lambda *args, **kwargs: None  # type: ignore[method-assign,assignment]
    with run:
        last = many_programs(models.Mock(["Hello there."], echo=True))
    assert widget.flush(30)
    widget.close_stream()
    assert len(widget._view.nodes) <= KEPT
    assert last[-12:] in widget.mimebundle()["text/plain"]
    widget.close()
