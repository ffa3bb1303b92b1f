"""Fixtures shared by the unit tier's files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import rudder


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    """The process's store set to a fresh file, and set back to none after the test."""
    path = tmp_path / "runs.sqlite"
    rudder.settings.store = path
    try:
        yield path
    finally:
        rudder.settings.store = None
        rudder.settings.store_max_runs = 10_000
        rudder.settings.store_max_bytes = 2**30
