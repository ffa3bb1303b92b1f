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
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

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


#: The fields of a streamed token (the wire form) that the page holds apart.
CANDIDATE_FIELDS = ("c", "d", "a")
_TOKEN_MESSAGES = ("tokens_appended", "node_added")


def candidates_apart(messages: str) -> tuple[str, str | None]:
    """``messages`` (a JSON array, see :func:`messages_json`) as the page inlines them: each
    streamed token's candidates (:data:`CANDIDATE_FIELDS`) taken out, and those candidates,
    ``[c, d, a]`` for each such token in the order of the messages and their tokens (None
    when no token has any). The client folds the first before its first paint and parses the
    second after it: the candidates are most of the JSON, and only a tooltip reads them."""
    parsed = json.loads(messages)  # a clear error here rather than a blank page later
    candidates = [
        [token.pop(field) for field in CANDIDATE_FIELDS]
        for token in wire_tokens(parsed)
        if all(field in token for field in CANDIDATE_FIELDS)
    ]
    if not candidates:
        return messages, None
    return _compact_json(parsed), _compact_json(candidates)


def wire_tokens(messages: Any) -> Iterator[dict[str, Any]]:
    """The streamed tokens of parsed messages, in order (a stored token record has a kind)."""
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict) or message.get("type") not in _TOKEN_MESSAGES:
            continue
        for token in message.get("tokens") or ():
            if isinstance(token, dict) and "kind" not in token:
                yield token


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def client_page(messages: str | None = None, *, title: str = "rudder run") -> str:
    """The client page; ``messages`` (a JSON array, see :func:`messages_json`) inlined, their
    tokens' candidates apart (:func:`candidates_apart`)."""
    from rudder._shown_text import visible_html

    data = ""
    if messages is not None:
        inlined, candidates = candidates_apart(messages)
        data = f'<script id="rudder-data" type="application/json">{inline_json(inlined)}</script>'
        if candidates is not None:
            data += (
                '<script id="rudder-candidates" type="application/json">'
                f"{inline_json(candidates)}</script>"
            )
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
