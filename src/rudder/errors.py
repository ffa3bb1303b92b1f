"""Every exception rudder raises.

One hierarchy, so that ``except rudder.errors.RudderError`` catches anything rudder
raises on purpose::

    RudderError
     ├── GrammarError             a grammar cannot be built (bad regex, schema, Lark, names)
     │    ├── CaptureNameError    a name used both as a list capture and a single capture
     │    └── StatefulInGrammarError
     │                            a stateful @guidance function used where a grammar is needed
     └── MatchError               text does not match a grammar
                                  (``grammar.match(text, raise_exceptions=True)``)

Errors say what was wrong and how to fix it. Raising never leaves a value half-changed:
grammar nodes are immutable, so a failed composition leaves its operands as they were.
"""

from __future__ import annotations

__all__ = [
    "CaptureNameError",
    "GrammarError",
    "MatchError",
    "RudderError",
    "StatefulInGrammarError",
]


class RudderError(Exception):
    """Base class of every error rudder raises on purpose."""


class GrammarError(RudderError, ValueError):
    """A grammar cannot be built: the message names the problem and the fix."""


class CaptureNameError(GrammarError):
    """One capture name is used both with ``list_append=True`` and without it."""


class StatefulInGrammarError(GrammarError):
    """A stateful ``@guidance`` function was used where only a grammar can go."""


class MatchError(RudderError, ValueError):
    """Text does not match a grammar.

    Attributes:
        position: byte offset of the first byte the grammar rejected (or the length of the
            input, when the input ended before the grammar was satisfied).
        byte: the rejected byte, or ``None`` when the input ended too early.
        allowed_bytes: the bytes the grammar would have accepted at ``position``.
        consumed: the input up to ``position``.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int,
        byte: bytes | None,
        allowed_bytes: frozenset[bytes],
        consumed: bytes,
    ) -> None:
        super().__init__(message)
        self.position = position
        self.byte = byte
        self.allowed_bytes = allowed_bytes
        self.consumed = consumed
