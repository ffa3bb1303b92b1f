"""Debian's Chromium under Playwright, and pages served to it on 127.0.0.1, for tests,
benchmarks and screenshots.

Playwright's own browser download cannot run on machines without network access, so the
system's Chromium is launched instead, headless, with the background services that would
try the network switched off.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def serve_files(files: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serve ``files`` (path: body, content type) on 127.0.0.1; yields the base address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in files:
                self.send_error(404)
                return
            body, kind = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are not news

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
