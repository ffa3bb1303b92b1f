"""The trace: what a program did, step by step, and what it cost.

Every ``lm + x`` makes a :class:`TraceNode` whose parent is the node of ``lm``; a
:class:`Run` groups the nodes of one execution; :class:`Usage` sums token counts and
timings; :class:`SystemMonitor` samples the machine while a run generates. Views subscribe
to the trace's events (:mod:`rudder.trace._events`); the trace knows no view.
``dump_trace``/``load_trace`` write and read a trace as JSON (loaded when first used: they
need pydantic, which ``import rudder`` does not import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rudder.trace._events import TraceListener, add_listener, remove_listener
from rudder.trace._monitor import SystemMonitor, SystemSample
from rudder.trace._node import NodeInput, NodeKind, TraceNode
from rudder.trace._run import Run, RunStatus, active_run, default_run, hidden, run
from rudder.trace._usage import Usage

if TYPE_CHECKING:
    from rudder.trace._records import dump_trace, load_trace

__all__ = [
    "NodeInput",
    "NodeKind",
    "Run",
    "RunStatus",
    "SystemMonitor",
    "SystemSample",
    "TraceListener",
    "TraceNode",
    "Usage",
    "active_run",
    "add_listener",
    "default_run",
    "dump_trace",
    "hidden",
    "load_trace",
    "remove_listener",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in ("dump_trace", "load_trace"):
        from rudder.trace import _records

        return getattr(_records, name)
    raise AttributeError(f"module 'rudder.trace' has no attribute {name!r}")
