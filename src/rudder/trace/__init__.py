"""The trace: what a program did, step by step, and what it cost.

Every ``lm + x`` makes a :class:`TraceNode` whose parent is the node of ``lm``; a
:class:`Run` groups the nodes of one execution; :class:`Usage` sums token counts and
timings; :class:`SystemMonitor` samples the machine while a run generates. Views subscribe
to the trace's events (:mod:`rudder.trace._events`); the trace knows no view.
"""

from rudder.trace._events import TraceListener, add_listener, remove_listener
from rudder.trace._monitor import SystemMonitor, SystemSample
from rudder.trace._node import NodeInput, NodeKind, TraceNode
from rudder.trace._run import Run, RunStatus, active_run, default_run, hidden, run
from rudder.trace._usage import Usage

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
    "hidden",
    "remove_listener",
    "run",
]
