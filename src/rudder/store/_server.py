"""``rudder view``: a store's runs in the browser, served by the standard library.

The page is the viewer (``static/viewer.js``, built from ``web/src/viewer.ts``): the list of
runs, search, one run in the same view as the widget, two runs side by side, and runs still
being written, polled as they grow. It reads a small JSON API:

- ``api/runs?q=TEXT``: the runs (newest first), those matching ``q`` when given;
- ``api/runs/ID``: one run's summary;
- ``api/runs/ID/messages?after=SEQ``: its messages after ``SEQ`` (the protocol's JSON);
- ``export/ID``: the run as the self-contained page ``rudder export`` writes;
- ``POST api/runs/ID/explore`` (JSON: ``node_id``, ``token_index``, ``token_id``): explore
  that generation from that token on the attached model (``rudder view --model``), the
  branch added to the stored run; answers ``{"branch_node_id": N}`` or ``{"error": TEXT}``.
  Only JSON from the page's own origin is taken: a page elsewhere cannot make the server
  run the model (a cross-origin JSON request needs a preflight this server never allows).

Bound to a loopback address by default, the server answers only requests addressed to
loopback (a page elsewhere cannot reach it through a DNS name it rebinds). Bound to any
other address, every path starts with a random token, so only who has the printed URL can
read the runs.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import secrets
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

from rudder.errors import RudderError, StoreError
from rudder.store._store import Store

if TYPE_CHECKING:
    from rudder.store._explore import StoredExplorer

#: The page's policy: its own inline script and style, requests to its own origin only.
VIEWER_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:"
)
#: The largest request body read (an explore request is a few numbers).
MAX_POST_BYTES = 4096
#: Loopback names a browser may put in the Host header.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def viewer_page(title: str) -> str:
    from html import escape

    from rudder.visual.html._page import static_script

    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{VIEWER_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body><div id="rudder-viewer"></div>'
        f"<script>{static_script('viewer.js')}</script></body></html>\n"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ViewServer:
    """Serves ``store`` on ``host:port`` (port 0: a free one). ``token``: whether paths
    start with a random token (default: when ``host`` is not loopback)."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: bool | None = None,
        explorer: StoredExplorer | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise StoreError(f"a port is an int from 0 to 65535, got {port!r}")
        self.store = store
        #: Explores stored generations on the attached model (None: no model attached).
        self.explorer = explorer
        self.loopback = is_loopback(host)
        guarded = not self.loopback if token is None else token
        self.token = secrets.token_urlsafe(18) if guarded else None
        self.base = "/" if self.token is None else f"/{self.token}/"
        try:
            self._server = http.server.ThreadingHTTPServer((host, port), _handler(self))
        except OSError as error:
            raise StoreError(f"cannot serve on {host}:{port}: {error.strerror}") from error
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.base}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> ViewServer:
        """Serve from a daemon thread (for tests and notebooks); ``close()`` stops it."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rudder-view", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> ViewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers ------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path`` below the base."""
        parts = [urllib.parse.unquote(part) for part in path.split("/")] if path else []
        if not parts:
            return 200, "text/html; charset=utf-8", viewer_page("rudder runs").encode()
        if parts[0] == "api" and len(parts) >= 2 and parts[1] == "runs":
            return self._api(parts[2:], query)
        if parts[0] == "export" and len(parts) == 2:
            return self._export(parts[1])
        return _not_found(path)

    def _api(self, parts: list[str], query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if not parts:
            found = self.store.runs(query.get("q", [""])[0])
            return _json([summary.as_json() for summary in found])
        if len(parts) == 1:
            return _json(self.store.run(parts[0]).as_json())
        if len(parts) == 2 and parts[1] == "messages":
            after = query.get("after", ["-1"])[0]
            try:
                after_seq = int(after)
            except ValueError:
                return 400, "text/plain; charset=utf-8", b"after must be an int (a seq)"
            bodies = self.store.messages_json(parts[0], after_seq)
            body = "[" + ",".join(bodies) + "]"
            return 200, "application/json", body.encode()
        return _not_found("/".join(parts))

    def explore(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """The answer to a POST of ``body`` to ``path`` below the base."""
        from rudder.store._explore import NO_MODEL

        parts = [urllib.parse.unquote(part) for part in path.split("/")]
        if len(parts) != 4 or parts[:2] != ["api", "runs"] or parts[3] != "explore":
            return _not_found(path)
        try:
            request = json.loads(body)
            node_id, token_index, token_id = (
                request["node_id"],
                request["token_index"],
                request["token_id"],
            )
        except (ValueError, TypeError, KeyError):
            return _error(400, "send JSON with node_id, token_index and token_id")
        if self.explorer is None:
            return _error(409, NO_MODEL)
        try:
            branch = self.explorer.explore(parts[2], node_id, token_index, token_id)
        except RudderError as error:
            return _error(409, str(error))
        return _json({"branch_node_id": branch})

    def _export(self, run_id: str) -> tuple[int, str, bytes]:
        from rudder.visual.html._page import client_page

        summary = self.store.run(run_id)
        bodies = self.store.messages_json(run_id)
        page = client_page("[" + ",".join(bodies) + "]", title=f"{summary.name} · rudder")
        return 200, "text/html; charset=utf-8", page.encode()


def _json(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(value, ensure_ascii=False).encode()


def _error(status: int, text: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": text}, ensure_ascii=False).encode()


def _not_found(path: str) -> tuple[int, str, bytes]:
    return 404, "text/plain; charset=utf-8", f"nothing at {path!r}".encode()


def _handler(server: ViewServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "rudder-view"

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if not self._host_allowed():
                self._send(403, "text/plain; charset=utf-8", b"this server answers loopback only")
                return
            if not url.path.startswith(server.base):
                if server.token is None or url.path.rstrip("/") != f"/{server.token}":
                    self._send(*_not_found(url.path))
                else:
                    self._redirect(server.base)
                return
            query = urllib.parse.parse_qs(url.query)
            try:
                answer = server.answer(url.path[len(server.base) :], query)
            except StoreError as error:
                answer = (404, "text/plain; charset=utf-8", str(error).encode())
            self._send(*answer)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(size, MAX_POST_BYTES))
            if not self._host_allowed() or not self._same_origin():
                self._send(403, "text/plain; charset=utf-8", b"only the viewer's page may ask")
                return
            if not url.path.startswith(server.base):
                self._send(*_not_found(url.path))
                return
            self._send(*server.explore(url.path[len(server.base) :], body))

        def _same_origin(self) -> bool:
            """JSON (a page elsewhere cannot send it without a preflight, never allowed
            here), and from this server's own page when the browser names the origin."""
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            origin = self.headers.get("Origin")
            host = self.headers.get("Host") or ""
            return kind == "application/json" and origin in (None, f"http://{host}")

        def _host_allowed(self) -> bool:
            if not server.loopback:
                return True  # the token guards it
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            return host in LOOPBACK_NAMES or is_loopback(host)

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            if kind.startswith("text/html"):
                self.send_header("Content-Security-Policy", VIEWER_CSP)
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a viewer's polling would fill the terminal

    return Handler
