"""The compact wire form of streamed tokens, and the run's token table it refers to.

A token's id and bytes cross the wire once per run: the first message that names an id (as a
token or as a candidate) carries it in its ``table``, and later messages name the id alone.
A streamed token (:class:`WireToken`) gives its candidates as ``[id, probability]`` pairs,
the positions of those the grammar did not allow, and its likeliest allowed candidates as
positions in ``top`` where they are there (only the others as pairs): nothing is repeated.
Its fields have one-letter names (a token's keys were a third of its size); probabilities
and latencies have the digits every view gets (``VIEW_DIGITS``, also in node records).

Readers (``RunView``, the client's ``state.ts``) keep the table of the run and expand each
wire token into the :class:`~rudder.trace._records.TokenRecord` the first form carried, so
what they fold is the same whichever form a stream (or a stored run) used.
"""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field, TypeAdapter

from rudder.errors import TraceError
from rudder.trace._records import (
    NodeRecord,
    Record,
    TokenRecord,
    TokenRefRecord,
    text_and_b64,
    view_figure,
)

if TYPE_CHECKING:
    from rudder._state import Candidate, Token


class TableToken(Record):
    """One token of the run's table: its text, and its bytes as base64 when they are not
    valid UTF-8 on their own."""

    id: int
    text: str
    bytes_b64: str | None = None


# A candidate: its id and its probability in the model's own (unconstrained) distribution.
WireCandidate = tuple[int, float]

_SOURCES = {"input": "i", "forced": "f", "generated": "g"}
_SOURCE_NAMES = {letter: name for name, letter in _SOURCES.items()}


class WireToken(Record):
    """A streamed token, its ids in the run's token table."""

    i: int = Field(description="the token's id")
    s: Literal["i", "f", "g"] = Field(description="its source: input, forced or generated")
    p: float | None = Field(description="its probability (null: forced, no model call)")
    l: float = Field(description="its latency in seconds")  # noqa: E741
    c: list[WireCandidate] = Field(description="the likeliest candidates: [id, probability]")
    d: list[int] = Field(description="the positions in c of those the grammar did not allow")
    a: list[Union[int, WireCandidate]] | None = Field(  # noqa: UP007
        description="the likeliest allowed candidates: a position in c, or [id, probability]; "
        "null when the same as c"
    )
    x: bool = Field(description="whether it is a special token")


def _table_entry(token_id: int, data: bytes) -> dict[str, object]:
    text, b64 = text_and_b64(data)
    return {"id": token_id, "text": text, "bytes_b64": b64}


def _named(tokens: Iterable[Token]) -> Iterator[Token | Candidate]:
    for token in tokens:
        yield token
        yield from token.top
        yield from token.top_allowed


def new_entries(tokens: Sequence[Token], known: dict[int, bytes]) -> list[tuple[int, bytes]]:
    """The ids ``tokens`` name (as tokens or candidates) whose table entry the stream has not
    carried (``known``: id -> the bytes last sent for it), with their bytes, in the order they
    first appear; ``known`` is brought up to date. An id sent with other bytes is sent again:
    one run may hold generations of models with different vocabularies, and views read each
    token with the table as it stands when the token arrives."""
    fresh: list[tuple[int, bytes]] = []
    for item in _named(tokens):
        token_id, data = item.token_id, item.bytes
        if known.get(token_id) != data:
            known[token_id] = data
            fresh.append((token_id, data))
    return fresh


class _Place:
    """One message's place in its stream's line: its tokens, then its new table entries."""

    __slots__ = ("entries", "tokens")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens: Sequence[Token] | None = tokens
        self.entries: list[tuple[int, bytes]] | None = None


class StreamTable:
    """The token table one run's stream carries, worked out as its messages are built.

    Which entries a message carries (the ids no earlier message of the stream named) depends
    on every message before it, and messages are built lazily, by whichever thread first
    reads them, in any order. So the publishing thread only takes each message a place in
    line, in ``seq`` order (:meth:`enlist`: no token is read), and the entries of a place are
    worked out by the thread that builds its message, after those of every place before it
    (:meth:`entries`). A stream nobody reads has its oldest places worked out by the
    publishing thread once more than ``MAX_WAITING`` wait, so the tokens they hold stay
    bounded.
    """

    MAX_WAITING = 256

    def __init__(self) -> None:
        self._known: dict[int, bytes] = {}
        self._waiting: collections.deque[_Place] = collections.deque()
        self._lock = threading.Lock()

    def enlist(self, tokens: Sequence[Token]) -> Callable[[], list[tuple[int, bytes]]]:
        """Take the next place in line, for a message about to be published with ``tokens``
        (the publisher enlists and publishes under one lock, so places follow ``seq``); the
        returned function gives that message's new ``(id, bytes)`` entries."""
        place = _Place(tokens)
        self._waiting.append(place)  # builders only pop from the other end
        if len(self._waiting) > self.MAX_WAITING:
            with self._lock:
                if self._waiting:
                    self._work_out(self._waiting[len(self._waiting) // 2])
        return functools.partial(self._entries, place)

    def _entries(self, place: _Place) -> list[tuple[int, bytes]]:
        with self._lock:
            self._work_out(place)
        assert place.entries is not None
        return place.entries

    def _work_out(self, place: _Place) -> None:
        """Work out the entries of every place up to ``place`` (under the lock)."""
        while place.entries is None:
            first = self._waiting.popleft()
            assert first.tokens is not None
            first.entries = new_entries(first.tokens, self._known)
            first.tokens = None


def _wire_token(token: Token) -> dict[str, object]:
    top = token.top
    allowed = token.top_allowed
    candidates = [(c.token_id, view_figure(c.prob)) for c in top]
    top_allowed: list[object] | None = None
    if allowed is not top and allowed != top:
        position = {c.token_id: n for n, c in enumerate(top)}
        top_allowed = []
        for c in allowed:
            n = position.get(c.token_id)
            same_candidate = n is not None and top[n] == c
            top_allowed.append(n if same_candidate else (c.token_id, view_figure(c.prob)))
    return {
        "i": token.token_id,
        "s": _SOURCES[token.kind.value],
        "p": None if token.prob is None else view_figure(token.prob),
        "l": view_figure(token.latency),
        "c": candidates,
        "d": [n for n, c in enumerate(top) if not c.allowed],
        "a": top_allowed,
        "x": token.special,
    }


_tables: TypeAdapter[list[TableToken]] = TypeAdapter(list[TableToken])
_wire: TypeAdapter[list[WireToken]] = TypeAdapter(list[WireToken])


def wire_form(
    tokens: Sequence[Token], fresh: Sequence[tuple[int, bytes]]
) -> tuple[list[TableToken], list[WireToken]]:
    """The table entries ``fresh`` (``(id, bytes)``, from :func:`new_entries`) and ``tokens``
    in wire form."""
    table = _tables.validate_python([_table_entry(i, data) for i, data in fresh])
    return table, _wire.validate_python([_wire_token(t) for t in tokens])


# -- reading ---------------------------------------------------------------------------------


def _candidate(entry: TableToken, prob: float, allowed: bool) -> dict[str, object]:
    return {
        "id": entry.id,
        "text": entry.text,
        "bytes_b64": entry.bytes_b64,
        "prob": prob,
        "allowed": allowed,
    }


def _lookup(table: Mapping[int, TableToken], token_id: int) -> TableToken:
    entry = table.get(token_id)
    if entry is None:
        raise TraceError(
            f"token {token_id} is not in the run's token table: a stream must carry each "
            "token's table entry before (or with) the first message that names it"
        )
    return entry


def _record_dict(token: WireToken, table: Mapping[int, TableToken]) -> dict[str, object]:
    disallowed = set(token.d)
    top = [
        _candidate(_lookup(table, i), p, n not in disallowed) for n, (i, p) in enumerate(token.c)
    ]
    top_allowed = None
    if token.a is not None:
        if any(isinstance(item, int) and not 0 <= item < len(top) for item in token.a):
            raise TraceError(f"token {token.i} names an allowed candidate past its {len(top)}")
        top_allowed = [
            top[item]
            if isinstance(item, int)
            else _candidate(_lookup(table, item[0]), item[1], True)
            for item in token.a
        ]
    entry = _lookup(table, token.i)
    return {
        "kind": "token",
        "id": token.i,
        "text": entry.text,
        "bytes_b64": entry.bytes_b64,
        "source": _SOURCE_NAMES[token.s],
        "prob": token.p,
        "latency_s": token.l,
        "top": top,
        "top_allowed": top_allowed,
        "special": token.x,
    }


_records: TypeAdapter[list[TokenRecord]] = TypeAdapter(list[TokenRecord])


def read_tokens(
    tokens: Sequence[TokenRecord | WireToken], table: Mapping[int, TableToken]
) -> list[TokenRecord]:
    """``tokens`` as the records of the first form: wire tokens expanded with ``table``
    (records of the first form, from a stored run, pass as they are)."""
    wire = [t for t in tokens if isinstance(t, WireToken)]
    if not wire:
        return list(tokens)  # type: ignore[arg-type]
    expanded = iter(_records.validate_python([_record_dict(t, table) for t in wire]))
    return [next(expanded) if isinstance(t, WireToken) else t for t in tokens]


def node_in_wire_form(record: NodeRecord) -> tuple[NodeRecord, list[TokenRecord]]:
    """``record`` with each token entry a ``token_ref``, and those tokens' records."""
    tokens = [e for e in record.entries if isinstance(e, TokenRecord)]
    if not tokens:
        return record, []
    entries = [TokenRefRecord() if isinstance(e, TokenRecord) else e for e in record.entries]
    return record.model_copy(update={"entries": entries}), tokens


def read_node(
    record: NodeRecord, tokens: Sequence[WireToken] | None, table: Mapping[int, TableToken]
) -> NodeRecord:
    """``record`` with its ``token_ref`` entries replaced by ``tokens``, expanded (a record
    of the first form, whose entries hold the tokens, passes as it is)."""
    if tokens is None:
        return record
    refs = sum(isinstance(e, TokenRefRecord) for e in record.entries)
    if refs != len(tokens):
        raise TraceError(f"node {record.id} has {refs} token_ref entries for {len(tokens)} tokens")
    expanded = iter(read_tokens(tokens, table))
    entries = [next(expanded) if isinstance(e, TokenRefRecord) else e for e in record.entries]
    return record.model_copy(update={"entries": entries})
