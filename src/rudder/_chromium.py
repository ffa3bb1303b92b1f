"""Debian's Chromium under Playwright, for tests, benchmarks and screenshots.

Playwright's own browser download cannot run on machines without network access, so the
system's Chromium is launched instead, headless, with the background services that would
try the network switched off.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

#: Where Debian's ``chromium`` package puts the browser; ``RUDDER_CHROMIUM`` overrides it.
CHROMIUM_PATH = os.environ.get("RUDDER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium_path() -> str:
    """The browser's path; a clear error naming the install command when it is missing."""
    path = CHROMIUM_PATH if os.path.exists(CHROMIUM_PATH) else shutil.which("chromium")
    if path is None:
        raise FileNotFoundError(
            f"Chromium is not at {CHROMIUM_PATH}: install Debian's package "
            "(`bash scripts/install-test-tools`, or `apt-get install chromium`), or set "
            "RUDDER_CHROMIUM to a Chromium binary"
        )
    return path


def launch_chromium(playwright: Any, **options: Any) -> Any:
    """``playwright.chromium.launch`` on the system's Chromium, headless."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=list(CHROMIUM_ARGS), **options
    )
