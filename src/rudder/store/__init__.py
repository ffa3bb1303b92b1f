"""Runs that last: every run kept in a SQLite file, read back for every view.

``rudder.settings.store = "runs.sqlite"`` (or ``RUDDER_STORE``) makes the process write each
run's messages to that store as they are published (:mod:`rudder.store._writer`).
``Store(path)`` reads it: the runs (``runs(query)``), a run's messages as the bus streamed
them (``messages``) and its view state (``view``). ``rudder view`` serves a store to the
browser and ``rudder export`` writes one of its runs as a page.
"""

from __future__ import annotations

from rudder.store._store import RunSummary, Store, default_path

__all__ = ["RunSummary", "Store", "default_path"]
