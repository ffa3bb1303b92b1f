"""The publisher: turns trace events into protocol messages on the bus.

Each run's stream is self-contained: the first time a run's stream needs a node whose
parents it has not carried (a notebook cell continuing a Model made in an earlier cell),
those parents are sent first, complete. Tokens of a running generation are sent in
batches: at once when the previous batch left more than ``BATCH_S`` ago, else when
``BATCH_TOKENS`` are waiting or the generation ends. Tokens taken back before they were
sent are simply not sent. Tokens travel in the compact wire form: a batch carries the table
entries of the ids the run's stream has not named yet.

The generating thread pays for little per step: it appends the step's tokens to the batch
and, when the batch is due, publishes a closure over it. The message (its wire tokens, the
tokens' candidates, which ids are new: :class:`~._token_table.StreamTable`) is built by the
thread that first reads it. Each message wakes the subscriptions' threads, and each wake-up
takes the interpreter lock from the generating thread (on shared cores, often for longer
than the work it does), so batches are spaced by ``BATCH_S``: ten a second, about what a
view redraws (the terminal view draws eight).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rudder._state import Capture, Token
from rudder.trace._events import TraceListener
from rudder.trace._node import NodeKind
from rudder.visual.stream._bus import Bus, get_bus
from rudder.visual.stream._healing import TraceCuts

if TYPE_CHECKING:
    from rudder.trace._monitor import SystemSample
    from rudder.trace._node import NodeSnapshot, TraceNode
    from rudder.trace._run import Run
    from rudder.visual.stream._token_table import StreamTable

#: A batch is sent when it holds this many tokens, or ``BATCH_S`` after the last one left.
BATCH_TOKENS = 256
BATCH_S = 0.1
MAX_REMEMBERED_NODES = 10_000


class _Batch:
    __slots__ = ("cuts", "healed_bytes", "last_sent", "tokens")

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self.healed_bytes = 0
        self.cuts: list[tuple[int, int]] = []
        self.last_sent = 0.0


class Publisher(TraceListener):
    """The trace listener that feeds a bus (by default the process's bus); with
    ``show_echo_off`` (an explicit export) nodes made with echo off are sent with their text."""

    def __init__(self, bus: Bus | None = None, *, show_echo_off: bool = False) -> None:
        self._bus = bus
        self._show_echo_off = show_echo_off
        self._lock = threading.Lock()
        # run id -> ids of the nodes its stream carried (a dict: it keeps their order)
        self._sent: dict[str, dict[int, None]] = {}
        # run id -> the token table its stream carries
        self._tables: dict[str, StreamTable] = {}
        self._batches: dict[int, _Batch] = {}
        self._cuts = TraceCuts(self._elided, MAX_REMEMBERED_NODES)

    def _elided(self, node: TraceNode) -> bool:
        """Whether views get ``node`` without its text (see ``node_record``)."""
        return node.hidden or not (node.echo or self._show_echo_off)

    @property
    def bus(self) -> Bus:
        return self._bus if self._bus is not None else get_bus()

    # -- runs -----------------------------------------------------------------------------

    def run_started(self, run: Run) -> None:
        from rudder.trace._records import run_record
        from rudder.visual.stream._protocol import RunStarted

        record = run_record(run)
        self.bus.publish(run.id, RunStarted, run=record)

    def run_finished(self, run: Run) -> None:
        from rudder.trace._records import run_record
        from rudder.visual.stream._protocol import Metrics, RunFinished

        self.bus.publish(run.id, Metrics, usage=run.usage)
        record = run_record(run)
        self.bus.publish(run.id, RunFinished, run=record)
        with self._lock:
            self._sent.pop(run.id, None)
            self._tables.pop(run.id, None)

    def system_sample(self, run: Run, sample: SystemSample) -> None:
        from rudder.visual.stream._protocol import Metrics

        self.bus.publish(run.id, Metrics, usage=run.usage, samples=[sample])

    # -- nodes ----------------------------------------------------------------------------

    def node_added(self, node: TraceNode) -> None:
        from rudder.visual.stream._protocol import NodeAdded, Status

        run_id = node.run_id
        for missing in self._unsent_path(node):
            # A node's record is made when first read, from a copy without its parent (the
            # bus must not keep the trace alive); a running generation is sent as it started.
            started = missing.input.kind is NodeKind.GRAMMAR and missing.usage is None
            # A node's healing is worked out now, while its parents can be read.
            cuts = [] if started else self._cuts.of(missing)
            snapshot = missing.snapshot()
            shown = () if started or self._elided(missing) else missing.entries
            tokens = [e for e in shown if isinstance(e, Token)]
            with self._lock:  # as for a batch of tokens: the table before its uses
                fresh = self._table(run_id).enlist(tokens)
                fields = functools.partial(
                    _node_fields, snapshot, started, self._show_echo_off, cuts, fresh
                )
                self.bus.publish_later(run_id, NodeAdded, fields)
        if node.input.kind is NodeKind.GRAMMAR and node.usage is None:
            self.bus.publish(run_id, Status, state="generating", node_id=node.id)

    def _unsent_path(self, node: TraceNode) -> list[TraceNode]:
        """``node`` and those of its parents the run's stream has not carried, oldest first."""
        with self._lock:
            sent = self._sent.setdefault(node.run_id, {})
            if len(sent) > MAX_REMEMBERED_NODES:
                # A long run (the default run of a script) forgets the older half of what it
                # sent; the recent nodes a new node descends from are still known.
                for old in list(sent)[: len(sent) // 2]:
                    del sent[old]
            missing: list[TraceNode] = []
            current: TraceNode | None = node
            while current is not None and current.id not in sent:
                missing.append(current)
                sent[current.id] = None
                current = current.parent
        missing.reverse()
        return missing

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        if node.hidden:
            if healed_bytes:
                self._cuts.remember(node.id, [])  # nor does it cut what is before it
            return  # a hidden generation shows only its size, when it ends
        batch = self._batches.get(node.id)
        if batch is None:
            batch = self._batches[node.id] = _Batch()
        if healed_bytes:
            batch.healed_bytes += healed_bytes
            batch.cuts.extend(self._cuts.of(node, healed_bytes))
        if backtracked:
            self._take_back(node, batch, backtracked)
        tokens = batch.tokens
        tokens.extend(added)
        if not tokens:
            return  # healed bytes wait for the first tokens, so that they travel together
        now = time.perf_counter()
        if len(tokens) >= BATCH_TOKENS or now - batch.last_sent >= BATCH_S:
            self._flush(node, batch)
            batch.last_sent = now

    def _take_back(self, node: TraceNode, batch: _Batch, backtracked: int) -> None:
        """Drop the tokens taken back that were not sent yet; a ``backtrack`` for the rest."""
        unsent = min(backtracked, len(batch.tokens))
        if unsent:
            del batch.tokens[-unsent:]
        if backtracked > unsent:
            from rudder.visual.stream._protocol import Backtrack

            count = backtracked - unsent
            self.bus.publish(node.run_id, Backtrack, node_id=node.id, tokens=count)

    def _flush(self, node: TraceNode, batch: _Batch) -> None:
        if not batch.tokens and not batch.healed_bytes:
            return
        from rudder.visual.stream._protocol import TokensAppended

        tokens, healed, cuts = batch.tokens, batch.healed_bytes, batch.cuts
        batch.tokens, batch.healed_bytes, batch.cuts = [], 0, []
        # Under the lock, so that the stream carries a table entry before any use of it.
        with self._lock:
            fresh = self._table(node.run_id).enlist(tokens)
            fields = functools.partial(_tokens_fields, node.id, healed, cuts, tokens, fresh)
            self.bus.publish_later(node.run_id, TokensAppended, fields)

    def _table(self, run_id: str) -> StreamTable:
        """The token table of the run's stream (called under the lock)."""
        table = self._tables.get(run_id)
        if table is None:
            from rudder.visual.stream._token_table import StreamTable

            table = self._tables[run_id] = StreamTable()
        return table

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        from rudder.trace._records import capture_record, text_size
        from rudder.visual.stream._protocol import CaptureSet, Metrics, Status

        batch = self._batches.pop(node.id, None)
        if batch is not None:
            self._flush(node, batch)
        run_id = node.run_id
        if error is None and not node.hidden:
            for entry in node.entries:
                if isinstance(entry, Capture):
                    record = capture_record(entry)
                    self.bus.publish(run_id, CaptureSet, node_id=node.id, capture=record)
        if node.usage is not None:  # a failed generation's too: what it did is counted
            size = text_size(node.entries) if node.hidden else None
            usage = node.usage
            self.bus.publish(run_id, Metrics, node_id=node.id, usage=usage, hidden_chars=size)
        if error is not None:
            self.bus.publish(run_id, Status, state="error", node_id=node.id, message=error)
        else:
            self.bus.publish(run_id, Status, state="idle", node_id=node.id)


def _cut_records(cuts: list[tuple[int, int]]) -> list[dict[str, int]]:
    return [{"node_id": node_id, "bytes": count} for node_id, count in cuts]


def _node_fields(
    node: NodeSnapshot,
    started: bool,
    show_echo_off: bool,
    cuts: list[tuple[int, int]],
    fresh: Callable[[], list[tuple[int, bytes]]],
) -> dict[str, Any]:
    from rudder.trace._records import node_record
    from rudder.visual.stream._token_table import node_in_wire_form, wire_form

    record = node_record(node, for_view=True, started=started, show_echo_off=show_echo_off)
    record, records = node_in_wire_form(record)
    tokens = [e for e in node.entries if isinstance(e, Token)] if records else []
    table, wire = wire_form(tokens, fresh())
    return {"node": record, "cuts": _cut_records(cuts), "table": table, "tokens": wire}


def _tokens_fields(
    node_id: int,
    healed_bytes: int,
    cuts: list[tuple[int, int]],
    tokens: list[Token],
    fresh: Callable[[], list[tuple[int, bytes]]],
) -> dict[str, Any]:
    from rudder.visual.stream._token_table import wire_form

    table, wire = wire_form(tokens, fresh())
    return {
        "node_id": node_id,
        "healed_bytes": healed_bytes,
        "cuts": _cut_records(cuts),
        "table": table,
        "tokens": wire,
    }


_installed: Publisher | None = None


def install() -> Publisher:
    """Register the process's publisher with the trace (once)."""
    global _installed
    if _installed is None:
        from rudder.trace._events import add_listener

        _installed = Publisher()
        add_listener(_installed)
    return _installed
