"""The legacy display: a run as static HTML in a notebook output, updated in place.

For notebook hosts that cannot show widgets, and for those who prefer the plain display
(``rudder.legacy_mode(True)``). It follows its run on the bus like the widget, and has the
same surface for the notebook hooks (``flush``, ``finished``, ``close_stream``,
``mimebundle``); the hooks update the output from the cell's own thread, a few times a
second while the run generates and once at the cell's end.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rudder.visual.html._static_html import static_outputs
from rudder.visual.notebook._followed import FollowedRun
from rudder.visual.stream._bus import Bus, Subscription, get_bus
from rudder.visual.stream._view_state import LIVE_VIEW_NODES, RunView

if TYPE_CHECKING:
    from rudder.visual.stream._protocol import ServerMessage


class LegacyDisplay(FollowedRun):
    """The static HTML output of one run (``run_id``)."""

    def __init__(self, run_id: str, *, bus: Bus | None = None) -> None:
        self.run_id = run_id
        self._bus = bus if bus is not None else get_bus()
        self._view = RunView(run_id, LIVE_VIEW_NODES)
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._subscription: Subscription | None = self._bus.subscribe(self, run_id=run_id)

    def send(self, message: ServerMessage) -> None:
        with self._lock:
            self._view.apply(message)
        if message.type == "run_finished":
            self._finished.set()

    def mimebundle(self) -> dict[str, Any]:
        with self._lock:
            return static_outputs(self._view)

    #: Static already: nothing to retire.
    live = False

    def retire(self, handle: Any) -> None:
        self.close_stream()
