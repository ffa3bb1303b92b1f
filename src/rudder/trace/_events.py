"""The event hook views subscribe to. The trace knows no view: it calls listeners.

A listener that raises is logged and skipped; generation goes on. With no listener the
cost of an event is one truth test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rudder._state import Token
    from rudder.trace._monitor import SystemSample
    from rudder.trace._node import TraceNode
    from rudder.trace._run import Run

_log = logging.getLogger("rudder.trace")


class TraceListener(Protocol):
    """Receives trace events, from whichever thread made them. Subclass it and override what
    you need (the others do nothing); the trace calls these methods directly."""

    def run_started(self, run: Run) -> None:
        """An explicit run began, or the default run was first used."""
        return

    def run_finished(self, run: Run) -> None:
        """A run ended (``run.status`` says how)."""
        return

    def node_added(self, node: TraceNode) -> None:
        """A node was made; a generation's node is added when it starts, still empty."""
        return

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        """A running generation took back ``backtracked`` tokens, then added ``added``.
        ``healed_bytes`` (non-zero only the first time) were taken from the parent's end."""
        return

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        """A generation ended: its node is complete, or ``error`` says why it failed."""
        return

    def system_sample(self, run: Run, sample: SystemSample) -> None:
        """The monitor of a generating run took a sample."""
        return


listeners: list[TraceListener] = []


def add_listener(listener: TraceListener) -> None:
    if listener not in listeners:
        listeners.append(listener)


def remove_listener(listener: TraceListener) -> None:
    if listener in listeners:
        listeners.remove(listener)


def _each(event: str, call: Callable[[TraceListener], object]) -> None:
    for listener in tuple(listeners):
        try:
            call(listener)
        except Exception:
            _log.exception("trace listener %r failed on %s; generation goes on", listener, event)


class _Broadcast(TraceListener):
    """Calls each event's method on every listener (``emit.node_added(node)``)."""

    def run_started(self, run: Run) -> None:
        _each("run_started", lambda listener: listener.run_started(run))

    def run_finished(self, run: Run) -> None:
        _each("run_finished", lambda listener: listener.run_finished(run))

    def node_added(self, node: TraceNode) -> None:
        _each("node_added", lambda listener: listener.node_added(node))

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        _each(
            "tokens_changed",
            lambda listener: listener.tokens_changed(node, added, backtracked, healed_bytes),
        )

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        _each("node_finished", lambda listener: listener.node_finished(node, error))

    def system_sample(self, run: Run, sample: SystemSample) -> None:
        _each("system_sample", lambda listener: listener.system_sample(run, sample))


#: The trace's side: ``emit.node_added(node)`` tells every listener.
emit = _Broadcast()
