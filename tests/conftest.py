"""Fixtures shared by the tiers.

``browser``: one Debian Chromium under Playwright for the whole session. The browser and
notebook tiers share it: Playwright's sync API runs one event loop per thread, so a second
``sync_playwright()`` opened while the first is alive fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from rudder._chromium import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
