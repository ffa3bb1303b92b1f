"""Grammar nodes inside f-strings.

``f"Answer: {gen('a')}"`` calls ``format()`` on the node, which must return a ``str``. The
node returns a short placeholder and is remembered here; when the string is later added to a
grammar or a Model, :func:`split` turns the placeholders back into nodes, so no placeholder
text ever reaches a prompt.

A placeholder carries a secret drawn at import, so text that did not come from this process
(model output, user input) cannot forge one and smuggle a grammar into a program. The table is
a bounded LRU: placeholders are meant to be consumed right after the f-string is built.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from rudder.errors import GrammarError

if TYPE_CHECKING:
    from typing import TypeAlias

    from rudder._grammar._nodes import Deferred, GrammarNode

    Embedded: TypeAlias = "GrammarNode | Deferred"

# Private-use code points: they never occur in ordinary text.
_OPEN = "\ue000"
_CLOSE = "\ue001"
_SECRET = secrets.token_hex(6)
_PATTERN = re.compile(f"{_OPEN}rudder:{_SECRET}:([0-9]+){_CLOSE}")
_MAX_LIVE = 65_536

_table: OrderedDict[int, Embedded] = OrderedDict()
_lock = threading.Lock()


def embed(node: Embedded) -> str:
    """Return the placeholder that stands for ``node`` (a grammar, or a stateful call)."""
    key = id(node)
    with _lock:
        _table[key] = node
        _table.move_to_end(key)
        while len(_table) > _MAX_LIVE:
            _table.popitem(last=False)
    return f"{_OPEN}rudder:{_SECRET}:{key}{_CLOSE}"


def has_placeholder(text: str) -> bool:
    """Cheap test used on every string before the slower :func:`split`."""
    return _OPEN in text


def split(text: str) -> list[str | Embedded]:
    """Cut ``text`` into plain strings and the values its placeholders stand for."""
    parts: list[str | Embedded] = []
    position = 0
    for found in _PATTERN.finditer(text):
        if found.start() > position:
            parts.append(text[position : found.start()])
        parts.append(_lookup(int(found.group(1))))
        position = found.end()
    if position < len(text):
        parts.append(text[position:])
    return parts


def _lookup(key: int) -> Embedded:
    with _lock:
        node = _table.get(key)
    if node is None:
        raise GrammarError(
            "a string holds a grammar placeholder whose grammar is no longer available; "
            "f-strings with grammars must be added to a grammar or Model soon after they are "
            f"built (at most {_MAX_LIVE} placeholders are kept)"
        )
    return node
