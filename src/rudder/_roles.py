"""Role blocks (``with user():``) and named blocks (``with block("x"):``).

A block is a context manager. Entering it pushes it onto a context-local stack; the next
``lm + x`` compares that stack with the blocks open in ``lm`` and writes the openers and
closers that bring the Model in line, then applies ``x``. So a block's closer is written
by the first ``lm + x`` made after the ``with`` ends (as in guidance). The stack lives in a
:class:`contextvars.ContextVar`, so threads and async tasks each have their own.
"""

from __future__ import annotations

import contextvars
import itertools
from types import TracebackType
from typing import Any

from rudder._decorator import building_stateless
from rudder._grammar._nodes import Deferred
from rudder.errors import RoleError

_next_id = itertools.count(1).__next__

#: The blocks entered in this context, outermost first.
active_blocks: contextvars.ContextVar[tuple[Block, ...]] = contextvars.ContextVar(
    "rudder_active_blocks", default=()
)


class Block:
    """A region of a program: a chat role, or named text with an opener and a closer.

    ``role`` is set for chat roles, whose opener and closer come from the chat template.
    Otherwise ``opening`` and ``closing`` are written as text, and when ``name`` is given
    the text between them is captured under that name.
    """

    __slots__ = ("_tokens", "block_id", "closing", "name", "opening", "role")

    def __init__(
        self,
        *,
        role: str | None = None,
        name: str | None = None,
        opening: str = "",
        closing: str = "",
    ) -> None:
        self.block_id = _next_id()
        self.role = role
        self.name = name
        self.opening = opening
        self.closing = closing
        self._tokens: list[contextvars.Token[tuple[Block, ...]]] = []

    def __enter__(self) -> Block:
        if building_stateless():
            raise RoleError(
                f"cannot use {self!r} inside a stateless function (stateless=True): its "
                "lm is a grammar, which has no roles or blocks; make the function stateful"
            )
        stack = active_blocks.get()
        if self in stack:
            raise RoleError(f"{self!r} is already open; a block cannot be entered twice")
        self._tokens.append(active_blocks.set((*stack, self)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        active_blocks.reset(self._tokens.pop())

    def __repr__(self) -> str:
        if self.role is not None:
            return f"role({self.role!r})"
        return f"block(name={self.name!r}, opening={self.opening!r}, closing={self.closing!r})"


def role(name: str) -> Block:
    """A chat message with the role ``name``: ``with role("user"): lm += "..."``.

    The model's chat template writes the message; a role it does not know is an error at
    the first ``lm + x`` inside the block.
    """
    if not isinstance(name, str) or not name:
        raise RoleError(f"a role name must be a non-empty str, got {name!r}")
    return Block(role=name)


def system() -> Block:
    """A system message: ``with system(): lm += "You are terse."``."""
    return role("system")


def user() -> Block:
    """A user message."""
    return role("user")


def assistant() -> Block:
    """An assistant message; generation inside it continues the open message."""
    return role("assistant")


def block(
    name: str | None = None,
    opening: str = "",
    closing: str = "",
    *,
    opener: str | None = None,
    closer: str | None = None,
) -> Block:
    """Text between ``opening`` and ``closing``, captured as ``name`` when a name is given.

    ``opener`` and ``closer`` are guidance's names for ``opening`` and ``closing``.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise RoleError(f"a block name must be a non-empty str or None, got {name!r}")
    if opener is not None:
        if opening:
            raise RoleError("give the block's opening text once: opening= or opener=")
        opening = opener
    if closer is not None:
        if closing:
            raise RoleError("give the block's closing text once: closing= or closer=")
        closing = closer
    for label, value in (("opening", opening), ("closing", closing)):
        if not isinstance(value, str):
            raise RoleError(f"block {label} must be a str, got {type(value).__name__}")
    return Block(name=name, opening=opening, closing=closing)


class CapturedSteps(Deferred):
    """``capture(steps, name)`` where the steps hold stateful calls: they run inside a named
    block, whose text becomes the capture (as guidance captures around stateful calls)."""

    __slots__ = ("name", "steps")

    def __init__(self, steps: Deferred, name: str) -> None:
        self.steps = steps
        self.name = name

    def __call__(self, lm: Any) -> Any:
        with Block(name=self.name):
            lm = lm + self.steps
        return lm + ""  # the first step after the block writes its closer and capture

    def __str__(self) -> str:
        return f"capture({self.steps!s}, {self.name!r})"
