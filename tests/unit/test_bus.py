"""The bus and the publisher, end to end: real programs on ``models.Mock`` publish through a
private ``Publisher`` into a private ``Bus``, and renderers read it from their own threads.

Every test has its own bus (``import rudder`` also feeds the process's bus; these tests never
read it), and each renderer's state is rebuilt with ``RunView`` from what it received. No
test sleeps or measures time: renderers are waited for with ``Subscription.wait_idle`` and
blocked with ``threading.Event``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

import rudder
from rudder import assistant, gen, guidance, models, select, user
from rudder._state import RoleCloser, RoleOpener, Text, Token
from rudder.models import Model
from rudder.trace import TraceListener, TraceNode, add_listener, remove_listener
from rudder.trace._node import NodeKind
from rudder.trace._records import RunRecord, token_records
from rudder.trace._run import Run
from rudder.visual import (
    Backtrack,
    Bus,
    ClientReady,
    Metrics,
    NodeAdded,
    Publisher,
    ReplayRequest,
    Reset,
    RunFinished,
    RunStarted,
    Status,
    Subscription,
    TokensAppended,
    parse_client_message,
)
from rudder.visual.stream import _publisher as publisher_module
from rudder.visual.stream._protocol import ServerMessage
from rudder.visual.stream._view_state import RunView

#: Seconds to wait for a delivery thread; reached only when delivery is broken.
TIMEOUT = 30.0

PATTERNS = [b"Paris", b"http://www.example.com"]


# -- renderers and fixtures -------------------------------------------------------------------


class Collector:
    """A renderer that keeps every message it is sent, in order."""

    def __init__(self) -> None:
        self.messages: list[ServerMessage] = []

    def send(self, message: ServerMessage) -> None:
        self.messages.append(message)


class Raising:
    """A renderer that fails on every message."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: ServerMessage) -> None:
        self.calls += 1
        raise RuntimeError(f"renderer broke on {message.type}")


class Blocking(Collector):
    """A renderer stuck in its first ``send`` until the test sets ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: ServerMessage) -> None:
        super().send(message)
        self.entered.set()
        if not self.release.wait(TIMEOUT):
            raise AssertionError("the test never released the renderer")


def fold(run_id: str, messages: Sequence[ServerMessage]) -> RunView:
    """The view a renderer holds after applying ``messages`` of run ``run_id``."""
    view = RunView(run_id)
    for message in messages:
        if message.run_id == run_id:
            view.apply(message)
    return view


def settle(*subscriptions: Subscription) -> None:
    for subscription in subscriptions:
        assert subscription.wait_idle(TIMEOUT), "a delivery thread did not catch up"


@pytest.fixture
def make_bus() -> Iterator[Callable[..., Bus]]:
    """Private buses, each fed by its own publisher for the length of the test."""
    publishers: list[Publisher] = []

    def make(**limits: int) -> Bus:
        bus = Bus(**limits)
        publisher = Publisher(bus)
        add_listener(publisher)
        publishers.append(publisher)
        return bus

    yield make
    for publisher in publishers:
        remove_listener(publisher)


@pytest.fixture
def bus(make_bus: Callable[..., Bus]) -> Bus:
    return make_bus()


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscription]]:
    """``subscribe(bus, renderer, **options)``; every subscription is closed afterwards."""
    made: list[Subscription] = []

    def make(bus: Bus, renderer: Any, **options: Any) -> Subscription:
        subscription = bus.subscribe(renderer, **options)
        made.append(subscription)
        return subscription

    yield make
    for subscription in made:
        if isinstance(subscription.renderer, Blocking):
            subscription.renderer.release.set()
        subscription.close()


@pytest.fixture
def listeners() -> Iterator[Callable[[TraceListener], None]]:
    """``listen(listener)``: a trace listener registered for the length of the test."""
    added: list[TraceListener] = []

    def listen(listener: TraceListener) -> None:
        add_listener(listener)
        added.append(listener)

    yield listen
    for listener in added:
        remove_listener(listener)


# -- what a view should show, from the Model itself -----------------------------------------


def view_text(lm: Model) -> str:
    """The Model's text as ``RunView.text()`` writes it: roles as ``<role>`` markers."""
    parts: list[str] = []
    for entry in lm.entries:
        if isinstance(entry, Text | Token):
            parts.append(entry.text)
        elif isinstance(entry, RoleOpener):
            parts.append(f"<{entry.role}>")
        elif isinstance(entry, RoleCloser):
            parts.append(f"</{entry.role}>")
    return "".join(parts)


def generations(lm: Model) -> list[TraceNode]:
    assert lm.trace is not None
    return [n for n in lm.trace.path() if n.input.kind is NodeKind.GRAMMAR]


def final_tokens(node: TraceNode) -> list[Any]:
    """The records of the tokens a finished generation kept, as the wire form carries them."""
    return token_records([e for e in node.entries if isinstance(e, Token)], viewed=True)


def assert_view_matches_model(view: RunView, lm: Model, run: Run) -> None:
    """``view`` (rebuilt from messages alone) shows exactly what the Model holds."""
    assert lm.trace is not None
    assert view.gaps == 0
    assert list(view.nodes) == [n.id for n in lm.trace.path()]
    assert view.text() == view_text(lm)
    for node in generations(lm):
        shown = view.nodes[node.id]
        assert shown.tokens == final_tokens(node), f"tokens of node {node.id}"
        assert shown.usage == node.usage
        assert shown.state == "idle"
    captures = {c.name: c.value for n in view.nodes.values() for c in n.captures}
    assert captures == lm.captures
    assert view.run is not None
    assert view.run.status == "done"
    assert view.usage == run.usage


@guidance
def interview(lm, on_between=None):  # type: ignore[no-untyped-def]
    """Two generations in an assistant message; the second heals ``http:`` into ``://``."""
    with user():
        lm += "Where is the Eiffel tower?"
    with assistant():
        lm += select(["Paris", "Rome", "Oslo"], name="city")
        if on_between is not None:
            on_between()
        lm += " See http:"
        lm += gen("url", stop=" ", max_tokens=10)
    return lm


def check_interview(lm: Model) -> None:
    assert lm["city"] == "Paris"
    assert lm["url"] == "//www.example.com"
    second = generations(lm)[1]
    assert second.healed_bytes == 1  # so the stream carried healed bytes too


# -- replay -----------------------------------------------------------------------------------


def test_replay_after_a_seq_gives_exactly_the_later_messages(
    bus: Bus, subscribe: Callable[..., Subscription]
) -> None:
    with rudder.run("replay") as run:
        lm = models.Mock(PATTERNS, echo=True) + interview()
    check_interview(lm)
    everything = bus.messages(run.id)
    assert [m.seq for m in everything] == list(range(len(everything)))
    assert everything[0].type == "run_started"
    assert everything[-1].type == "run_finished"
    assert all(m.run_id == run.id for m in everything)

    last = everything[-1].seq
    for after in (-1, 0, 4, last - 1, last, last + 10):
        later = bus.messages(run.id, after)
        assert later == everything[after + 1 :]
        assert all(m.seq > after for m in later)
    assert bus.messages("no-such-run") == []

    collector = Collector()
    subscription = subscribe(bus, collector, run_id=run.id, after_seq=4)
    settle(subscription)
    assert collector.messages == everything[5:]
    assert subscription.delivered == len(everything) - 5

    collector.messages.clear()
    subscription.replay(run.id, 9)
    settle(subscription)
    assert collector.messages == everything[10:]

    collector.messages.clear()
    subscription.replay(run.id, -1)
    settle(subscription)
    assert collector.messages == everything
    assert fold(run.id, collector.messages) == fold(run.id, everything)


def test_a_subscription_to_every_run_replays_them_all_then_follows_new_ones(
    bus: Bus, subscribe: Callable[..., Subscription]
) -> None:
    lm = models.Mock(PATTERNS, echo=True)
    with rudder.run("one") as one:
        lm += "A=" + select(["Paris", "Rome"], name="a")
    collector = Collector()
    subscription = subscribe(bus, collector)
    settle(subscription)
    with rudder.run("two") as two:
        lm += " B=" + select(["Paris", "Rome"], name="b")
    settle(subscription)
    assert [m for m in collector.messages if m.run_id == one.id] == bus.messages(one.id)
    assert [m for m in collector.messages if m.run_id == two.id] == bus.messages(two.id)
    assert fold(two.id, collector.messages).text() == str(lm)


# -- late renderers ---------------------------------------------------------------------------


class AttachMidGeneration(TraceListener):
    """Subscribes a renderer from inside the second generation, after its third step.

    Trace events are emitted in the generating thread, after the publisher (registered
    earlier) has published them: the subscription starts with part of the generation's
    tokens on the bus and the rest still to come.
    """

    def __init__(self, attach: Callable[[], None]) -> None:
        self.attach = attach
        self.grammar_nodes: list[int] = []
        self.steps = 0

    def node_added(self, node: TraceNode) -> None:
        if node.input.kind is NodeKind.GRAMMAR:
            self.grammar_nodes.append(node.id)

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        if len(self.grammar_nodes) == 2 and node.id == self.grammar_nodes[1]:
            self.steps += 1
            if self.steps == 3:
                self.attach()


@pytest.mark.parametrize("moment", ["between-generations", "mid-generation"])
def test_a_renderer_attached_mid_run_ends_with_the_same_view(
    bus: Bus,
    subscribe: Callable[..., Subscription],
    listeners: Callable[[TraceListener], None],
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> None:
    # Every token is its own message, so "mid-generation" falls between two of them.
    monkeypatch.setattr(publisher_module, "BATCH_S", 0.0)
    run = rudder.run("late renderer")
    early, late = Collector(), Collector()
    early_subscription = subscribe(bus, early, run_id=run.id)
    attached: list[tuple[Subscription, int]] = []

    def attach() -> None:
        held = len(bus.messages(run.id))
        attached.append((subscribe(bus, late, run_id=run.id), held))

    between = attach if moment == "between-generations" else None
    if moment == "mid-generation":
        listeners(AttachMidGeneration(attach))
    with run:
        lm = models.Mock(PATTERNS, echo=True) + interview(on_between=between)
    check_interview(lm)
    assert len(attached) == 1
    late_subscription, held = attached[0]
    settle(early_subscription, late_subscription)

    everything = bus.messages(run.id)
    second = generations(lm)[1].id
    streamed = [i for i, m in enumerate(everything) if isinstance(m, TokensAppended)]
    of_second = [i for i in streamed if everything[i].node_id == second]  # type: ignore[union-attr]
    if moment == "mid-generation":
        assert of_second[0] < held <= of_second[-1]  # some tokens before, some after
    else:
        assert held <= of_second[0]  # the second generation had not started
        assert any(isinstance(m, TokensAppended) for m in everything[:held])

    assert early.messages == everything
    assert late.messages == everything
    early_view, late_view = fold(run.id, early.messages), fold(run.id, late.messages)
    assert late_view == early_view
    assert_view_matches_model(early_view, lm, run)
    assert_view_matches_model(late_view, lm, run)


# -- renderers that fail or lag ---------------------------------------------------------------


def test_a_failing_renderer_neither_stops_generation_nor_starves_others(
    bus: Bus, subscribe: Callable[..., Subscription], caplog: pytest.LogCaptureFixture
) -> None:
    run = rudder.run("broken renderer")
    broken, healthy = Raising(), Collector()
    broken_subscription = subscribe(bus, broken, run_id=run.id)
    healthy_subscription = subscribe(bus, healthy, run_id=run.id)
    with caplog.at_level(logging.ERROR, logger="rudder.visual"):
        with run:
            lm = models.Mock(PATTERNS, echo=True) + interview()
        settle(broken_subscription, healthy_subscription)
    check_interview(lm)
    everything = bus.messages(run.id)
    assert everything[-1].type == "run_finished"
    assert broken.calls == len(everything)  # it was handed every message, failing each time
    assert broken_subscription.failures == len(everything)
    assert broken_subscription.delivered == len(everything)
    assert healthy_subscription.failures == 0
    assert healthy.messages == everything
    assert_view_matches_model(fold(run.id, healthy.messages), lm, run)
    assert "renderer broke on run_started" in caplog.text


def test_a_blocked_renderer_does_not_block_generation(
    bus: Bus, subscribe: Callable[..., Subscription]
) -> None:
    run = rudder.run("slow renderer")
    slow = Blocking()
    subscription = subscribe(bus, slow, run_id=run.id)
    try:
        with run:
            assert slow.entered.wait(TIMEOUT)  # stuck in send(run_started) from here on
            lm = models.Mock(PATTERNS, echo=True) + interview()
        check_interview(lm)
        # The whole program ran and its run finished while the renderer held one message.
        everything = bus.messages(run.id)
        assert everything[-1].type == "run_finished"
        # Built only now, the generations' node_added still show them as they started:
        # their tokens travel in tokens_appended, once.
        started = [
            m.node
            for m in everything
            if isinstance(m, NodeAdded) and m.node.input.kind == "grammar"
        ]
        assert len(started) == 2
        assert all(n.entries == [] and n.usage is None and n.healed_bytes == 0 for n in started)
        assert [m.type for m in slow.messages] == ["run_started"]
        assert subscription.delivered == 0
    finally:
        slow.release.set()
    settle(subscription)
    assert slow.messages == everything
    assert [m.seq for m in slow.messages] == list(range(len(everything)))
    assert subscription.failures == 0
    assert_view_matches_model(fold(run.id, slow.messages), lm, run)


def test_a_renderer_that_fell_behind_a_bounded_history_gets_a_reset(
    make_bus: Callable[..., Bus], subscribe: Callable[..., Subscription]
) -> None:
    bus = make_bus(max_messages_per_run=8)
    run = rudder.run("bounded")
    slow = Blocking()
    subscription = subscribe(bus, slow, run_id=run.id)
    try:
        with run:
            assert slow.entered.wait(TIMEOUT)
            lm = models.Mock(PATTERNS, echo=True) + interview()
        check_interview(lm)
        kept = bus.messages(run.id)
        assert 0 < len(kept) <= 8
        assert kept[0].seq > 1  # the renderer's next message (seq 1) was dropped
    finally:
        slow.release.set()
    settle(subscription)
    first_seq = kept[0].seq
    assert slow.messages[0].type == "run_started"
    reset = slow.messages[1]
    assert isinstance(reset, Reset)
    assert reset.first_seq == first_seq
    assert reset.seq == first_seq
    assert reset.run_id == run.id
    assert reset.reason
    assert slow.messages[2:] == kept


# -- the client protocol ----------------------------------------------------------------------


def test_client_ready_and_replay_request_resend_from_the_clients_position(
    bus: Bus, subscribe: Callable[..., Subscription]
) -> None:
    with rudder.run("client") as run:
        lm = models.Mock(PATTERNS, echo=True) + interview()
    check_interview(lm)
    everything = bus.messages(run.id)
    client = Collector()
    subscription = subscribe(bus, client, run_id=run.id)
    settle(subscription)
    assert client.messages == everything
    middle = len(everything) // 2

    def answer(message: ClientReady | ReplayRequest) -> list[ServerMessage]:
        client.messages.clear()
        # As a client sends it: JSON, parsed by the kernel.
        subscription.handle(parse_client_message(message.model_dump_json()))
        settle(subscription)
        return list(client.messages)

    assert answer(ClientReady(seq=0, run_id=run.id, last_seq=middle)) == everything[middle + 1 :]
    assert answer(ClientReady(seq=1, run_id=run.id)) == everything  # holds nothing
    assert answer(ClientReady(seq=2, last_seq=middle)) == everything[middle + 1 :]  # every run
    assert answer(ReplayRequest(seq=3, run_id=run.id, after_seq=middle)) == everything[middle + 1 :]
    assert answer(ReplayRequest(seq=4, run_id=run.id, after_seq=-1)) == everything
    last = everything[-1].seq
    assert answer(ReplayRequest(seq=5, run_id=run.id, after_seq=last)) == []

    # A client that reloaded mid-way catches up to the same view as one that never left.
    reloaded = fold(run.id, everything[: middle + 1])
    for message in answer(ClientReady(seq=6, run_id=run.id, last_seq=reloaded.last_seq)):
        reloaded.apply(message)
    assert reloaded == fold(run.id, everything)
    assert_view_matches_model(reloaded, lm, run)


def test_a_late_subscriber_to_a_bounded_history_gets_a_reset_and_the_tail(
    make_bus: Callable[..., Bus], subscribe: Callable[..., Subscription]
) -> None:
    bus = make_bus(max_messages_per_run=8)
    with rudder.run("bounded") as run:
        lm = models.Mock(PATTERNS, echo=True) + interview()
    check_interview(lm)
    kept = bus.messages(run.id)
    first_seq = kept[0].seq
    assert first_seq > 0

    late = Collector()
    subscription = subscribe(bus, late, run_id=run.id)
    settle(subscription)
    assert isinstance(late.messages[0], Reset)
    assert late.messages[0].first_seq == first_seq
    assert late.messages[1:] == kept

    # A client holding messages older than the kept tail is reset the same way.
    late.messages.clear()
    subscription.handle(ClientReady(seq=0, run_id=run.id, last_seq=first_seq - 2))
    settle(subscription)
    assert isinstance(late.messages[0], Reset)
    assert late.messages[1:] == kept

    # The view rebuilt from the reset and the tail is consistent and knows the run ended.
    try:
        view = fold(run.id, late.messages)
    except KeyError as error:
        pytest.fail(
            f"RunView cannot apply the tail after a reset: node {error} is named by a kept "
            "message, but its node_added was dropped"
        )
    assert view.gaps == 0
    assert view.last_seq == kept[-1].seq
    assert view.run is not None
    assert view.run.status == "done"
    assert view.usage == run.usage


def test_a_run_dropped_from_a_full_history_still_reaches_its_subscribers(
    make_bus: Callable[..., Bus], subscribe: Callable[..., Subscription]
) -> None:
    """A run that outlives ``max_runs`` newer runs (the default run of a notebook, a long
    run while others come and go) goes on publishing; its subscribers see what follows."""
    bus = make_bus(max_runs=2)
    outer = rudder.run("long")
    watcher = Collector()
    subscription = subscribe(bus, watcher, run_id=outer.id)
    lm = models.Mock(PATTERNS, echo=True)
    with outer:
        lm += "Start. "
        settle(subscription)
        for number in range(3):
            with rudder.run(f"short {number}"):
                lm + f"Side {number}."
        lm += "A=" + select(["Paris", "Rome"], name="city")
    settle(subscription)
    assert lm.trace is not None
    received = [m.node.id for m in watcher.messages if isinstance(m, NodeAdded)]
    assert received == [n.id for n in lm.trace.path()]
    assert watcher.messages[-1].type == "run_finished"
    view = fold(outer.id, watcher.messages)
    assert view.run is not None
    assert view.run.status == "done"
    assert view.text() == str(lm)


# -- backtracking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_s", "batch_tokens", "backtrack_sent"),
    [
        pytest.param(0.0, 32, "all", id="each-token-sent-at-once"),
        pytest.param(float("inf"), 10**6, "none", id="all-tokens-held-to-the-end"),
        pytest.param(float("inf"), 3, "some", id="batches-of-three"),
    ],
)
def test_tokens_taken_back_leave_the_view_with_the_final_tokens(
    bus: Bus,
    monkeypatch: pytest.MonkeyPatch,
    batch_s: float,
    batch_tokens: int,
    backtrack_sent: str,
) -> None:
    monkeypatch.setattr(publisher_module, "BATCH_S", batch_s)
    monkeypatch.setattr(publisher_module, "BATCH_TOKENS", batch_tokens)
    with rudder.run("backtrack") as run:
        lm = models.Mock([b"abcdefgh"], echo=True) + "Say=" + gen("a", stop="cde")
    assert lm["a"] == "ab"
    assert lm.generation is not None
    taken_back = lm.generation.backtracked
    assert taken_back >= 2  # "c" and "d" were generated before the stop string was seen
    (node,) = generations(lm)
    messages = bus.messages(run.id)
    streamed = sum(len(m.tokens) for m in messages if isinstance(m, TokensAppended))
    backtracks = [m.tokens for m in messages if isinstance(m, Backtrack)]
    assert all(m.node_id == node.id for m in messages if isinstance(m, Backtrack))
    # What was sent, less what was taken back after sending, is what the Model kept.
    assert streamed - sum(backtracks) == len(final_tokens(node))
    if backtrack_sent == "all":
        assert sum(backtracks) == taken_back
    elif backtrack_sent == "none":
        assert backtracks == []
    else:
        assert 0 < sum(backtracks) < taken_back
    view = fold(run.id, messages)
    assert view.nodes[node.id].tokens == final_tokens(node)
    assert view.text() == str(lm) == "Say=ab"
    assert_view_matches_model(view, lm, run)


# -- runs continuing earlier Models -----------------------------------------------------------


def test_a_run_continuing_an_earlier_model_sends_its_ancestors_first(bus: Bus) -> None:
    with rudder.run("first") as first:
        lm = (
            models.Mock(PATTERNS, echo=True)
            + "Capital of France? A="
            + select(["Paris", "Rome"], name="city")
        )
    with rudder.run("second") as second:
        left = lm + " Yes."
        right = lm + " See http:" + gen("url", stop=" ", max_tokens=10)
    with rudder.run("third") as third:
        onwards = right + " Done."
    assert right["url"] == "//www.example.com"
    assert lm.trace is not None
    assert left.trace is not None
    assert right.trace is not None
    assert onwards.trace is not None
    earlier = lm.trace.path()

    messages = bus.messages(second.id)
    added = [m.node for m in messages if isinstance(m, NodeAdded)]
    ids = [n.id for n in added]
    assert len(ids) == len(set(ids))  # no node twice in one run's stream, branches included
    # The stream starts with the earlier run's nodes, complete, before anything of its own.
    assert [m.type for m in messages[: 1 + len(earlier)]] == ["run_started"] + ["node_added"] * len(
        earlier
    )
    assert ids[: len(earlier)] == [n.id for n in earlier]
    assert all(n.run_id == first.id for n in added[: len(earlier)])
    assert all(n.run_id == second.id for n in added[len(earlier) :])
    # The earlier generation, whole: its tokens in the message, in the wire form.
    generation = [m for m in messages if isinstance(m, NodeAdded)][len(earlier) - 1]
    assert generation.node.entries[0].kind == "token_ref"
    assert generation.tokens is not None
    assert len(generation.tokens) == sum(e.kind == "token_ref" for e in generation.node.entries)
    assert all(m.run_id == second.id for m in messages)

    view = fold(second.id, messages)
    assert view.gaps == 0
    assert view.text() == str(right)
    assert view.text(left.trace.id) == str(left)

    # A third run carries both earlier runs' nodes, oldest first.
    third_view = fold(third.id, bus.messages(third.id))
    assert third_view.text() == str(onwards)
    assert [v.record.run_id for v in third_view.nodes.values()] == [
        n.run_id for n in onwards.trace.path()
    ]
    # The first run's own stream never carried the later runs' nodes.
    first_ids = {m.node.id for m in bus.messages(first.id) if isinstance(m, NodeAdded)}
    assert first_ids == {n.id for n in earlier}


# -- hidden and silent Models -----------------------------------------------------------------


SECRET = "The password is hunter2. "


class ReadWhileGenerating(TraceListener):
    """Reads the run's stream during every generation step, as a live view does."""

    def __init__(self, bus: Bus, run_id: str) -> None:
        self.bus = bus
        self.run_id = run_id
        self.reads = 0

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        self.bus.messages(self.run_id)
        self.reads += 1


def test_hidden_nodes_show_their_size_and_never_their_text(
    bus: Bus, listeners: Callable[[TraceListener], None]
) -> None:
    run = rudder.run("hidden")
    reader = ReadWhileGenerating(bus, run.id)
    listeners(reader)
    with run:
        lm = models.Mock([b"Zanzibar"], echo=True) + "Q="
        with rudder.hidden():
            lm += SECRET
            lm += select(["Zanzibar", "Rome"], name="place")
        lm += "!"
    assert lm["place"] == "Zanzibar"
    assert str(lm) == "Q=" + SECRET + "Zanzibar!"
    assert reader.reads > 0  # the stream was read while the hidden generation ran
    messages = bus.messages(run.id)
    hidden = [m.node for m in messages if isinstance(m, NodeAdded) and m.node.hidden]
    hidden_ids = {n.id for n in hidden}
    assert len(hidden_ids) == 2
    for record in hidden:
        assert record.entries == []
        assert record.input.value == ""
    text_node = next(n for n in hidden if n.input.kind == "text")
    assert text_node.hidden_chars == len(SECRET)

    wire = "\n".join(m.model_dump_json() for m in messages)
    assert "hunter2" not in wire
    assert "Zanzibar" not in wire
    # The hidden generation streamed no tokens and no captures; it still ended.
    for message in messages:
        if isinstance(message, TokensAppended | Backtrack):
            assert message.node_id not in hidden_ids
        if message.type == "capture":
            assert message.node_id not in hidden_ids
    generation = next(n for n in hidden if n.input.kind == "grammar")
    states = [m.state for m in messages if isinstance(m, Status) and m.node_id == generation.id]
    assert states == ["generating", "idle"]

    # A view shows each hidden node's size: the generation's too, once it has ended.
    view = fold(run.id, messages)
    assert view.gaps == 0
    size = len("Zanzibar")
    assert view.text() == f"Q=[hidden: {len(SECRET)} characters][hidden: {size} characters]!"


@pytest.mark.parametrize("switch", ["model-echo", "settings-echo"])
def test_models_without_echo_publish_nothing(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    if switch == "settings-echo":
        monkeypatch.setattr(rudder.settings, "echo", False)
    with rudder.run("quiet") as run:
        lm = models.Mock(PATTERNS, echo=switch != "model-echo") + interview()
    check_interview(lm)
    messages = bus.messages(run.id)
    assert {m.type for m in messages} <= {"run_started", "metrics", "run_finished"}
    assert all(m.node_id is None for m in messages if isinstance(m, Metrics))
    assert isinstance(messages[0], RunStarted)
    assert isinstance(messages[-1], RunFinished)


# -- the bus alone ----------------------------------------------------------------------------


def test_publish_numbers_each_runs_stream_from_zero() -> None:
    bus = Bus()
    first = [bus.publish("a", Status, state="idle") for _ in range(3)]
    other = bus.publish("b", RunStarted, run=RunRecord(id="b", name="b", status="running"))
    later = bus.publish("a", Status, state="error", message="boom")
    assert [m.seq for m in first] == [0, 1, 2]
    assert other.seq == 0
    assert later.seq == 3
    assert later.run_id == "a"
    assert bus.runs() == ["a", "b"]
    assert bus.messages("a") == [*first, later]


def test_a_view_folds_in_order_and_asks_for_a_replay_after_a_hole(bus: Bus) -> None:
    with rudder.run("holes") as run:
        lm = models.Mock(PATTERNS, echo=True) + interview()
    check_interview(lm)
    messages = bus.messages(run.id)
    assert len(messages) > 6
    complete = fold(run.id, messages)

    view = RunView(run.id)
    for message in messages[:3]:
        assert view.apply(message)
    # Message 3 is lost: what follows is held back, and the view says where to resume.
    assert not view.apply(messages[4])
    assert not view.apply(messages[5])
    assert view.gaps == 1
    assert view.wants_replay_after == 2
    assert view.last_seq == 2
    # The replay after seq 2 fills the hole; messages already held are ignored.
    for message in bus.messages(run.id, after_seq=view.wants_replay_after):
        view.apply(message)
    assert view.wants_replay_after is None
    assert view.last_seq == messages[-1].seq
    assert view.text() == complete.text()
    assert view.nodes.keys() == complete.nodes.keys()


def test_a_long_run_forgets_old_nodes_but_never_resends_recent_ones(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "MAX_REMEMBERED_NODES", 4)
    with rudder.run("long") as run:
        lm = models.Mock(PATTERNS, echo=True)
        for index in range(20):
            lm += f"line {index}\n"
    added = [m.node.id for m in bus.messages(run.id) if isinstance(m, NodeAdded)]
    assert lm.trace is not None
    assert added == [node.id for node in lm.trace.path()]  # each once, in order
    assert fold(run.id, bus.messages(run.id)).text() == str(lm)
