"""The client page: one self-contained HTML document that shows a run.

The built client (``static/client.js``, from ``web/``) and, optionally, the run's messages
are inlined, so the page needs no network. A Content-Security-Policy forbids every fetch
and every script but the client itself, named by its SHA-256 hash (no ``'unsafe-inline'``,
no ``'unsafe-eval'``): hostile text in a run could not load or run anything, not even an
inline event handler, if it ever escaped the client's text-only rendering.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudder.visual.stream._protocol import ServerMessage


def client_script() -> str:
    """The built client; ``npm run build --prefix web`` makes it."""
    return static_script("client.js")


@functools.cache
def static_script(name: str) -> str:
    """A built script of ``rudder/visual/static``, ready to inline in a script element."""
    path = resources.files("rudder.visual") / "static" / name
    try:
        script = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"rudder's client (rudder/visual/static/{name}) is missing from this install; "
            "build it with `npm ci --prefix web && npm run build --prefix web`"
        ) from None
    # A script element ends at the first "</script" whatever JavaScript thinks of it.
    return script.replace("</script", "<\\/script")


@functools.cache
def content_security_policy() -> str:
    """The page's policy: no fetch, no script but the client (by hash); inline styles (the
    client's stylesheet and its per-token CSS variables) and data images only."""
    digest = hashlib.sha256(client_script().encode("utf-8")).digest()
    script_hash = base64.b64encode(digest).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{script_hash}'; "
        "style-src 'unsafe-inline'; img-src data: blob:; media-src data: blob:; "
        "base-uri 'none'; form-action 'none'"
    )


def messages_json(messages: Iterable[ServerMessage]) -> str:
    """The messages as one JSON array (the form the client reads inline and the widget saves)."""
    return "[" + ",".join(message.model_dump_json() for message in messages) + "]"


def inline_json(text: str) -> str:
    """JSON made safe inside ``<script type="application/json">``: no ``<`` can end the
    element or open a comment, and the line separators JavaScript once disliked are escaped."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def client_page(messages: str | None = None, *, title: str = "rudder run") -> str:
    """The client page; ``messages`` (a JSON array, see :func:`messages_json`) inlined."""
    from rudder._shown_text import visible_html

    data = ""
    if messages is not None:
        json.loads(messages)  # a clear error here rather than a blank page later
        data = f'<script id="rudder-data" type="application/json">{inline_json(messages)}</script>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{visible_html(title)}</title>"
        "<style>html,body{margin:0;padding:0;background:transparent}</style>"
        f'</head><body><div id="rudder-root"></div>{data}'
        f"<script>{client_script()}</script></body></html>\n"
    )
