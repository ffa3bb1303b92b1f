"""Every exception rudder raises.

One hierarchy, so that ``except rudder.errors.RudderError`` catches anything rudder
raises on purpose::

    RudderError
     ├── GrammarError             a grammar cannot be built (bad regex, schema, Lark, names,
     │    │                       a special token the model's tokenizer does not have)
     │    ├── CaptureNameError    an empty capture name, or one used both as a list capture
     │    │                       and a single capture
     │    ├── StatefulInGrammarError
     │    │                       a stateful @guidance function used where a grammar is needed
     │    └── GrammarTypeError    a grammar function given a value of the wrong type
     │                            (also a WrongTypeError)
     ├── WrongTypeError           a value of the wrong type (also a TypeError)
     ├── MatchError               text does not match a grammar
     │                            (``grammar.match(text, raise_exceptions=True)``)
     ├── RoleError                a role or block used wrongly (unknown role, nested roles)
     │    └── ChatTemplateError   a chat template cannot render the conversation
     ├── GenerationError          a generation cannot go on (no token allowed, engine failure)
     ├── ExploreError             a branch cannot be explored there (not a generation, no
     │                            such token, a candidate the grammar forbids, model gone)
     ├── CaptureNotFoundError     no capture of that name (also a KeyError: ``lm["x"]``)
     ├── RunError                 a run used wrongly (entered twice)
     ├── TraceError               a dumped trace cannot be read
     ├── ModelLoadError           a model or tokenizer cannot be loaded
     ├── SettingsError            a model or sampling setting out of range
     ├── ExportError              what was given cannot be exported (not a Model or a run,
     │                            a run not started or no longer held)
     ├── ExportPathError          the export cannot be written there (no such folder, a
     │                            folder in its place, no permission, a full disk)
     └── StoreError               a run store cannot be opened or read (not a store, too new,
                                  no such run)

Each also derives from the built-in exception Python code would expect (ValueError,
TypeError, KeyError, RuntimeError, OSError), so ``except TypeError`` keeps working.
Errors say what was wrong and how to fix it. Raising never leaves a value half-changed:
grammar nodes and Models are immutable, so a failed ``a + b`` or ``lm + x`` leaves its
operands as they were.
"""

from __future__ import annotations

__all__ = [
    "CaptureNameError",
    "CaptureNotFoundError",
    "ChatTemplateError",
    "ExploreError",
    "ExportError",
    "ExportPathError",
    "GenerationError",
    "GrammarError",
    "GrammarTypeError",
    "MatchError",
    "ModelLoadError",
    "RoleError",
    "RudderError",
    "RunError",
    "SettingsError",
    "StatefulInGrammarError",
    "StoreError",
    "TextEncodingError",
    "TraceError",
    "WrongTypeError",
]


class RudderError(Exception):
    """Base class of every error rudder raises on purpose."""


class GrammarError(RudderError, ValueError):
    """A grammar cannot be built: the message names the problem and the fix."""


class CaptureNameError(GrammarError):
    """A capture name is empty, or used both with ``list_append=True`` and without it."""


class StatefulInGrammarError(GrammarError):
    """A stateful ``@guidance`` function was used where only a grammar can go."""


class TextEncodingError(RudderError, UnicodeError):
    """Text that is not valid Unicode (a lone surrogate), so no model can read it."""


def check_text(text: str, where: str) -> None:
    """Raise ``TextEncodingError`` when ``text`` (given as ``where``) has a lone surrogate:
    such text would fail only later, deep in a tokenizer or a view."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise TextEncodingError(
            f"{where} is not valid Unicode: {bad!r} at position {error.start} is a lone "
            "surrogate (half of a UTF-16 pair), which no model can read; remove it, or decode "
            "the source with errors='replace'"
        ) from None


class WrongTypeError(RudderError, TypeError):
    """A value of the wrong type was given: the message names the type rudder takes."""


class GrammarTypeError(GrammarError, WrongTypeError):
    """A grammar function was given a value of the wrong type (``gen(stop=5)``)."""


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


class ExploreError(RudderError, ValueError):
    """A generation cannot be explored from the token asked for: it is not a generation
    rudder still holds, the index is not one of its chosen tokens, the grammar forbids the
    candidate there, or its model is gone."""


class CaptureNotFoundError(RudderError, KeyError):
    """A Model has no capture of the name asked for: the message lists the ones it has."""

    def __str__(self) -> str:
        # KeyError shows its argument's repr; the message reads better as it is.
        return str(self.args[0]) if self.args else ""


class RunError(RudderError, RuntimeError):
    """A run was used wrongly: a ``rudder.run()`` entered a second time."""


class TraceError(RudderError, ValueError):
    """A dumped trace cannot be read: it is not JSON from ``dump_trace``, or not one path."""


class ModelLoadError(RudderError, OSError):
    """A model or its tokenizer cannot be loaded: the message says where rudder looked."""


class SettingsError(RudderError, ValueError):
    """A model or sampling setting is out of range: the message gives the range."""


class ExportError(RudderError, ValueError):
    """What was given cannot be exported: the message says what can be, and how."""


class ExportPathError(RudderError, OSError):
    """An export cannot be written where it was asked: the message names the file and why
    (``errno`` as the system gave it, when it did)."""


class StoreError(RudderError, OSError):
    """A run store (``rudder.settings.store``, ``rudder view``) cannot be opened or read: the
    file is not a store, was made by a newer rudder, or holds no such run."""
