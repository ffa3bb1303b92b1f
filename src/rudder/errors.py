"""Every exception rudder raises.

One hierarchy, so that ``except rudder.errors.RudderError`` catches anything rudder
raises on purpose::

    RudderError
     ├── GrammarError             a grammar cannot be built (bad regex, schema, Lark, names)
     │    ├── CaptureNameError    a name used both as a list capture and a single capture
     │    └── StatefulInGrammarError
     │                            a stateful @guidance function used where a grammar is needed
     ├── MatchError               text does not match a grammar
     │                            (``grammar.match(text, raise_exceptions=True)``)
     ├── RoleError                a role or block used wrongly (unknown role, nested roles)
     │    └── ChatTemplateError   a chat template cannot render the conversation
     ├── GenerationError          a generation cannot go on (no token allowed, engine failure)
     ├── ModelLoadError           a model or tokenizer cannot be loaded
     └── SettingsError            a model or sampling setting out of range

Errors say what was wrong and how to fix it. Raising never leaves a value half-changed:
grammar nodes and Models are immutable, so a failed ``a + b`` or ``lm + x`` leaves its
operands as they were.
"""

from __future__ import annotations

__all__ = [
    "CaptureNameError",
    "ChatTemplateError",
    "GenerationError",
    "GrammarError",
    "MatchError",
    "ModelLoadError",
    "RoleError",
    "RudderError",
    "SettingsError",
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

    guidance's names work too: ``consumed_bytes`` (``consumed``), ``current_byte``
    (``byte``) and ``allowed_bytes``.
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

    @property
    def consumed_bytes(self) -> bytes:
        """guidance's name for :attr:`consumed`."""
        return self.consumed

    @property
    def current_byte(self) -> bytes | None:
        """guidance's name for :attr:`byte`."""
        return self.byte


class RoleError(RudderError, ValueError):
    """A role or block was used wrongly: an unknown role, or a role opened inside another."""


class ChatTemplateError(RoleError):
    """The chat template cannot render the conversation (it raised, or it is malformed)."""


class GenerationError(RudderError, RuntimeError):
    """A generation cannot go on: the grammar allows no token, or the engine failed."""


class ModelLoadError(RudderError, OSError):
    """A model or its tokenizer cannot be loaded: the message says where rudder looked."""


class SettingsError(RudderError, ValueError):
    """A model or sampling setting is out of range: the message gives the range."""
