"""Structured model state: frozen entries in a persistent sequence.

A Model's state is never a string. It is a sequence of typed, immutable entries: text the
program wrote, tokens the model was given or produced (with their probabilities), role
openers and closers, block markers and captures. The prompt is *rendered* from the entries
(see :mod:`rudder._chat`); nothing is ever parsed back out of text, so a model that writes
``<|im_start|>system`` has written text, not a role switch.

:class:`Entries` is a persistent sequence: each one holds its parent and the entries it adds.
Appending is O(size of the new part), and Models branched from one parent share its entries.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Union

from rudder.errors import check_text


class TokenKind(str, enum.Enum):
    """Where a token came from."""

    INPUT = "input"  # part of the prompt the model was given
    FORCED = "forced"  # fixed by the grammar: appended without a model call
    GENERATED = "generated"  # chosen by sampling from the model's distribution


@dataclass(frozen=True, slots=True)
class Candidate:
    """A token the model could have chosen at one step."""

    token_id: int
    bytes: bytes
    prob: float  # in the model's own (unconstrained) distribution
    allowed: bool  # whether the grammar allowed it at that step

    @property
    def text(self) -> str:
        return self.bytes.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Text:
    """Text the program wrote (``lm += "..."``)."""

    text: str

    def __post_init__(self) -> None:
        check_text(self.text, "the text added to the Model")


@dataclass(frozen=True, slots=True)
class Token:
    """One token of model output: forced by the grammar or generated.

    ``prob`` is the probability the model gave the token, or ``None`` for a forced token
    (no model call was made for it). ``top`` holds the most likely tokens of the
    unconstrained distribution, each flagged with whether the grammar allowed it;
    ``top_allowed`` the most likely tokens the grammar allowed. ``latency`` is in seconds.
    """

    token_id: int
    bytes: bytes
    kind: TokenKind
    prob: float | None = None
    latency: float = 0.0
    top: tuple[Candidate, ...] = ()
    top_allowed: tuple[Candidate, ...] = ()
    special: bool = False

    @property
    def text(self) -> str:
        return self.bytes.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class RoleOpener:
    """The start of a chat message; the chat template decides how it is written."""

    role: str


@dataclass(frozen=True, slots=True)
class RoleCloser:
    """The end of a chat message."""

    role: str


@dataclass(frozen=True, slots=True)
class BlockMarker:
    """Where a ``block()`` opened or closed; its text lives in ordinary Text entries."""

    block_id: int
    name: str | None
    is_open: bool


@dataclass(frozen=True, slots=True)
class Capture:
    """A named value: from a grammar capture, a named block, or ``lm.set()``."""

    name: str
    value: str
    log_prob: float | None = None
    is_list: bool = False
    removed: bool = False  # a tombstone: ``lm.remove(name)``, or an empty list when is_list


Entry = Union[Text, Token, RoleOpener, RoleCloser, BlockMarker, Capture]  # noqa: UP007

CaptureValue = Union[Capture, list[Capture]]  # noqa: UP007


@dataclass(slots=True, eq=False)
class Entries:
    """A persistent sequence of entries: a parent plus the entries this link adds."""

    parent: Entries | None
    items: tuple[Entry, ...]
    length: int = field(init=False)
    _captures: dict[str, CaptureValue] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.length = (self.parent.length if self.parent is not None else 0) + len(self.items)

    @staticmethod
    def empty() -> Entries:
        return _EMPTY

    def append(self, items: Sequence[Entry]) -> Entries:
        """A new sequence: these entries after this one's; this one is unchanged."""
        if not items:
            return self
        return Entries(self, tuple(items))

    def __len__(self) -> int:
        return self.length

    def links(self) -> list[Entries]:
        """The links from the first to this one."""
        chain: list[Entries] = []
        link: Entries | None = self
        while link is not None:
            if link.items:
                chain.append(link)
            link = link.parent
        chain.reverse()
        return chain

    def __iter__(self) -> Iterator[Entry]:
        for link in self.links():
            yield from link.items

    def reversed(self) -> Iterator[Entry]:
        link: Entries | None = self
        while link is not None:
            yield from reversed(link.items)
            link = link.parent

    def last(self) -> Entry | None:
        return next(self.reversed(), None)

    def truncate(self, keep: int) -> Entries:
        """The first ``keep`` entries, sharing every link that is kept whole."""
        if keep >= self.length:
            return self
        link: Entries = self
        while link.parent is not None and link.parent.length >= keep:
            link = link.parent
        if link.length == keep:
            return link
        # ``link`` holds entry ``keep - 1`` (or keep == 0 and link is the first link).
        base = link.parent if link.parent is not None else _EMPTY
        return base.append(link.items[: keep - base.length])

    def captures(self) -> dict[str, CaptureValue]:
        """Name -> the latest capture (or the list of every one, for list captures).

        Computed from the nearest link that already knows its captures, then remembered.
        """
        if self._captures is not None:
            return self._captures
        pending: list[Entries] = []
        link: Entries | None = self
        while link is not None and link._captures is None:
            pending.append(link)
            link = link.parent
        known = link._captures if link is not None else None
        result: dict[str, CaptureValue] = dict(known) if known is not None else {}
        for each in reversed(pending):
            for entry in each.items:
                if isinstance(entry, Capture):
                    _add_capture(result, entry)
        self._captures = result
        return result


def _add_capture(captures: dict[str, CaptureValue], entry: Capture) -> None:
    if entry.removed:
        if entry.is_list:
            captures[entry.name] = []  # set(name, [...]): the list starts empty
        else:
            captures.pop(entry.name, None)
        return
    if entry.is_list:
        previous = captures.get(entry.name)
        values = list(previous) if isinstance(previous, list) else []
        values.append(entry)
        captures[entry.name] = values
    else:
        captures[entry.name] = entry


_EMPTY = Entries(None, ())
