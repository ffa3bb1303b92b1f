"""What the notebook outputs that follow one run on the bus share (the widget, the legacy
display): waiting until they have everything published, and letting the run go."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudder.visual.stream._bus import Subscription

#: Seconds the kernel waits, at the end of a cell, for an output to get what was published.
FLUSH_TIMEOUT_S = 10.0


class FollowedRun:
    """Mixed into an output that sets ``_subscription`` and sets ``_finished`` when its
    run's ``run_finished`` passes."""

    _subscription: Subscription | None
    _finished: threading.Event

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until everything published so far was handled (True when it was)."""
        subscription = self._subscription
        return subscription.wait_idle(timeout) if subscription is not None else True

    def close_stream(self) -> None:
        """Stop following the bus (the run is over)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()
