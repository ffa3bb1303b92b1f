"""Runs that last: every run kept in a SQLite file, read back for every view.

``rudder.settings.store = "runs.sqlite"`` (or ``RUDDER_STORE``) makes the process write each
run's messages to that store as they are published (:mod:`rudder.store._writer`).
``Store(path)`` reads it: the runs (``runs(query)``), a run's messages as the bus streamed
them (``messages``) and its view state (``view``). ``rudder view`` serves a store to the
browser and ``rudder export`` writes one of its runs as a page.

The package loads its parts when first used: ``import rudder`` loads no SQLite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rudder.store._store import RunSummary, Store, default_path

__all__ = ["RunSummary", "Store", "default_path"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'rudder.store' has no attribute {name!r}")
    return getattr(importlib.import_module("rudder.store._store"), name)
