"""The event hook views subscribe to. The trace knows no view: it calls listeners.

A listener that raises is logged and skipped; generation goes on. With no listener the
cost of an event is one truth test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudder._state import Token
    from rudder.trace._monitor import SystemSample
    from rudder.trace._node import TraceNode
    from rudder.trace._run import Run

_log = logging.getLogger("rudder.trace")


class TraceListener:
    """Receives trace events, from whichever thread made them. Override what you need."""

    def run_started(self, run: Run) -> None:
        """An explicit run began, or the default run was first used."""

    def run_finished(self, run: Run) -> None:
        """A run ended (``run.status`` says how)."""

    def node_added(self, node: TraceNode) -> None:
        """A node was made; a generation's node is added when it starts, still empty."""

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        """A running generation took back ``backtracked`` tokens, then added ``added``.
        ``healed_bytes`` (non-zero only the first time) were taken from the parent's end."""

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        """A generation ended: its node is complete, or ``error`` says why it failed."""

    def system_sample(self, run: Run, sample: SystemSample) -> None:
        """The monitor of a generating run took a sample."""


listeners: list[TraceListener] = []


def add_listener(listener: TraceListener) -> None:
    if listener not in listeners:
        listeners.append(listener)


def remove_listener(listener: TraceListener) -> None:
    if listener in listeners:
        listeners.remove(listener)


def emit(event: str, *args: object) -> None:
    """Call ``event`` (a :class:`TraceListener` method name) on every listener."""
    for listener in tuple(listeners):
        try:
            getattr(listener, event)(*args)
        except Exception:
            _log.exception("trace listener %r failed on %s; generation goes on", listener, event)
