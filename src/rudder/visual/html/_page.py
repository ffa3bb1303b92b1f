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
import gzip
import hashlib
import json
import re
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


def inline_messages(text: str) -> str:
    """The messages' JSON as the page carries it: gzip, in base64 (the client inflates it).
    The HTML parser scans all of a script element's text for its end before the client can
    start: compressed, a run's JSON (names, probabilities, the same keys again and again) is
    several times smaller. Base64 holds no ``<``, so no text can end the element or open a
    comment. No time in the gzip header, so a run's page is the same bytes every time."""
    compressed = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
    return base64.b64encode(compressed).decode("ascii")


def page_messages(page: str) -> str | None:
    """The messages' JSON that a client page carries (None: a page without messages), for
    tools that read an exported page back."""
    found = _DATA.search(page)
    if found is None:
        return None
    return gzip.decompress(base64.b64decode(found.group(1), validate=True)).decode("utf-8")


_DATA = re.compile(r'<script id="rudder-data" type="application/gzip">([A-Za-z0-9+/=]*)</script>')


def client_page(messages: str | None = None, *, title: str = "rudder run") -> str:
    """The client page; ``messages`` (a JSON array, see :func:`messages_json`) inlined."""
    from rudder._shown_text import visible_html

    data = ""
    if messages is not None:
        json.loads(messages)  # a clear error here rather than a blank page later
        inlined = inline_messages(messages)
        data = f'<script id="rudder-data" type="application/gzip">{inlined}</script>'
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
