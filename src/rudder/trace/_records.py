"""The serial form of the trace: pydantic records of entries, nodes and runs.

Usage (:class:`~rudder.trace._usage.Usage`) and system samples
(:class:`~rudder.trace._monitor.SystemSample`) are recorded as they are: pydantic reads and
writes those dataclasses field by field, under their own names, and a Usage's derived
figures are written too (see :func:`with_derived_figures`).

The message protocol (:mod:`rudder.visual.stream._protocol`) carries these records, and
``dump_trace`` / ``load_trace`` write and read a whole trace with them, losslessly. Token
bytes travel as text when they are valid UTF-8 on their own, else also as base64.
"""

from __future__ import annotations

import base64
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from rudder._state import (
    BlockMarker,
    Candidate,
    Capture,
    Entry,
    RoleCloser,
    RoleOpener,
    Text,
    Token,
    TokenKind,
)
from rudder.errors import TraceError
from rudder.trace._node import ExploredFrom, NodeInput, NodeKind, NodeSnapshot, TraceNode
from rudder.trace._run import Run, RunStatus
from rudder.trace._usage import Usage

TRACE_FORMAT_VERSION = 1


class Record(BaseModel):
    # -inf (the log-probability of a token the model gave probability 0) is written
    # "-Infinity": plain JSON has no infinities.
    # In the schema, fields with defaults are required: they are always written, and the
    # client's generated types then need no optional checks.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        ser_json_inf_nan="strings",
        json_schema_serialization_defaults_required=True,
    )


# A log-probability may be -inf (the model gave a token probability 0); JSON carries it as
# the string "-Infinity", and the schema says so.
LogProb = Annotated[
    float,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"const": "-Infinity", "type": "string"}]}),
]


def with_derived_figures(cls: type, names: Sequence[str], schema: Any, handler: Any) -> Any:
    """``schema``, pydantic's core schema of dataclass ``cls``, with the properties
    ``names`` written as fields too (computed fields), and ignored when read back."""
    from pydantic_core import core_schema

    arguments = schema
    while arguments["type"] != "dataclass-args":
        arguments = arguments["schema"]
    arguments["extra_behavior"] = "ignore"
    arguments["computed_fields"] = [
        core_schema.computed_field(
            name, handler.generate_schema(typing.get_type_hints(getattr(cls, name).fget)["return"])
        )
        for name in names
    ]
    return schema


class CandidateRecord(Record):
    id: int
    text: str
    bytes_b64: str | None = None  # set when the bytes are not valid UTF-8 on their own
    prob: float
    allowed: bool


class TextRecord(Record):
    kind: Literal["text"] = "text"
    text: str


class TokenRecord(Record):
    kind: Literal["token"] = "token"
    id: int
    text: str
    bytes_b64: str | None = None
    source: Literal["input", "forced", "generated"]
    prob: float | None = None
    latency_s: float = 0.0
    top: list[CandidateRecord] = []
    top_allowed: list[CandidateRecord] | None = None  # None: the same as ``top``
    special: bool = False


class RoleOpenRecord(Record):
    kind: Literal["role_open"] = "role_open"
    role: str


class RoleCloseRecord(Record):
    kind: Literal["role_close"] = "role_close"
    role: str


class BlockRecord(Record):
    kind: Literal["block"] = "block"
    block_id: int
    name: str | None
    open: bool


class CaptureRecord(Record):
    kind: Literal["capture"] = "capture"
    name: str
    value: str
    log_prob: LogProb | None = None
    is_list: bool = False
    removed: bool = False


class TokenRefRecord(Record):
    """In the node of a ``node_added`` message only: the next of the message's tokens,
    which travel in the compact wire form (``rudder.visual.stream._token_table``)."""

    kind: Literal["token_ref"] = "token_ref"


EntryRecordType = Union[  # noqa: UP007
    TextRecord,
    TokenRecord,
    RoleOpenRecord,
    RoleCloseRecord,
    BlockRecord,
    CaptureRecord,
    TokenRefRecord,
]
EntryRecord = Annotated[EntryRecordType, Field(discriminator="kind")]


class InputRecord(Record):
    kind: Literal[
        "text",
        "grammar",
        "role_open",
        "role_close",
        "block_open",
        "block_close",
        "call",
        "capture_set",
        "capture_remove",
    ]
    value: str = ""


class ExploredRecord(Record):
    """Where an explored branch left the original generation (``rudder.explore``)."""

    node_id: int
    token_index: int
    token_id: int


class NodeRecord(Record):
    id: int
    parent_id: int | None
    run_id: str
    input: InputRecord
    entries: list[EntryRecord] = []
    healed_bytes: int = 0
    echo: bool = True
    hidden: bool = False
    # Views get a hidden node without its entries, and the size of its text instead.
    hidden_chars: int | None = None
    created_at: float
    usage: Usage | None = None
    explored: ExploredRecord | None = None


class RunRecord(Record):
    id: str
    name: str
    status: Literal["running", "done", "error"]
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    usage: Usage = Usage()


class TraceRecord(Record):
    """A whole trace: the nodes from the root to one node, oldest first."""

    format: Literal["rudder-trace"] = "rudder-trace"
    version: Literal[1] = 1
    nodes: list[NodeRecord]


# -- to records ------------------------------------------------------------------------------


def text_and_b64(data: bytes) -> tuple[str, str | None]:
    """``data`` as text, and as base64 too when it is not valid UTF-8 on its own."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), base64.b64encode(data).decode("ascii")


#: Significant digits of the probabilities and latencies that views get (they show three at
#: most); a trace dump keeps every digit.
VIEW_DIGITS = 6


_VIEW_FORMAT = f".{VIEW_DIGITS}g"  # made once: a nested format spec costs twice as much


def view_figure(value: float) -> float:
    """``value`` to ``VIEW_DIGITS`` significant digits, as views get it."""
    return float(format(value, _VIEW_FORMAT))


def _exact(value: float) -> float:
    return value


# Tokens are the bulk of the messages: they are made as plain dicts and validated in one
# call (pydantic-core builds a batch faster than Python builds the models one by one).


def _candidate_dict(
    candidate: Candidate, figure: Callable[[float], float] = _exact
) -> dict[str, object]:
    text, b64 = text_and_b64(candidate.bytes)
    return {
        "id": candidate.token_id,
        "text": text,
        "bytes_b64": b64,
        "prob": figure(candidate.prob),
        "allowed": candidate.allowed,
    }


def _token_dict(token: Token, figure: Callable[[float], float]) -> dict[str, object]:
    text, b64 = text_and_b64(token.bytes)
    same = token.top_allowed is token.top or token.top_allowed == token.top
    return {
        "kind": "token",
        "id": token.token_id,
        "text": text,
        "bytes_b64": b64,
        "source": token.kind.value,
        "prob": None if token.prob is None else figure(token.prob),
        "latency_s": figure(token.latency),
        "top": [_candidate_dict(c, figure) for c in token.top],
        "top_allowed": None if same else [_candidate_dict(c, figure) for c in token.top_allowed],
        "special": token.special,
    }


_token_list: TypeAdapter[list[TokenRecord]] = TypeAdapter(list[TokenRecord])


def token_records(tokens: Sequence[Token], *, viewed: bool = False) -> list[TokenRecord]:
    """Records of ``tokens``; ``viewed``: as views get them (figures to ``VIEW_DIGITS``)."""
    figure = view_figure if viewed else _exact
    return _token_list.validate_python([_token_dict(t, figure) for t in tokens])


def token_record(token: Token) -> TokenRecord:
    return token_records((token,))[0]


def candidate_record(candidate: Candidate) -> CandidateRecord:
    return CandidateRecord.model_validate(_candidate_dict(candidate))


def capture_record(capture: Capture) -> CaptureRecord:
    return CaptureRecord(
        name=capture.name,
        value=capture.value,
        log_prob=capture.log_prob,
        is_list=capture.is_list,
        removed=capture.removed,
    )


def entry_record(entry: Entry) -> EntryRecordType:
    if isinstance(entry, Token):
        return token_record(entry)
    if isinstance(entry, Text):
        return TextRecord(text=entry.text)
    if isinstance(entry, RoleOpener):
        return RoleOpenRecord(role=entry.role)
    if isinstance(entry, RoleCloser):
        return RoleCloseRecord(role=entry.role)
    if isinstance(entry, BlockMarker):
        return BlockRecord(block_id=entry.block_id, name=entry.name, open=entry.is_open)
    return capture_record(entry)


def _entry_records(entries: Sequence[Entry], viewed: bool) -> list[EntryRecordType]:
    """Records of ``entries``, the tokens among them made in one batch."""
    tokens = iter(token_records([e for e in entries if isinstance(e, Token)], viewed=viewed))
    return [next(tokens) if isinstance(e, Token) else entry_record(e) for e in entries]


def node_record(
    node: TraceNode | NodeSnapshot,
    *,
    for_view: bool = False,
    started: bool = False,
    show_echo_off: bool = False,
) -> NodeRecord:
    """A node's record; ``for_view`` leaves out the entries of a hidden node (their size
    stays) and, unless ``show_echo_off`` (an explicit export), of a node made with echo off;
    ``started`` gives a generation as it was when it started (no entries, usage or healing
    yet). Views show the entries a record carries."""
    if isinstance(node, NodeSnapshot):
        parent_id = node.parent_id
    else:
        parent_id = node.parent.id if node.parent is not None else None
    elide = for_view and (node.hidden or not (node.echo or show_echo_off))
    entries = () if started else node.entries
    usage = None if started else node.usage
    return NodeRecord(
        id=node.id,
        parent_id=parent_id,
        run_id=node.run_id,
        input=InputRecord(kind=node.input.kind.value, value="" if elide else node.input.value),
        entries=[] if elide else _entry_records(entries, for_view),
        healed_bytes=0 if started else node.healed_bytes,
        echo=node.echo,
        hidden=node.hidden,
        hidden_chars=text_size(entries) if elide and not started else None,
        created_at=node.created_at,
        usage=usage,
        explored=_explored_record(node.explored),
    )


def _explored_record(explored: ExploredFrom | None) -> ExploredRecord | None:
    if explored is None:
        return None
    return ExploredRecord(
        node_id=explored.node_id, token_index=explored.token_index, token_id=explored.token_id
    )


def run_record(run: Run) -> RunRecord:
    return RunRecord(
        id=run.id,
        name=run.name,
        status=run.status.value,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        usage=run.usage,
    )


def text_size(entries: tuple[Entry, ...]) -> int:
    """Characters of the entries' text, decoded as one run (a character split over byte
    tokens counts once)."""
    data = b"".join(
        e.text.encode() if isinstance(e, Text) else e.bytes
        for e in entries
        if isinstance(e, Text | Token)
    )
    return len(data.decode("utf-8", errors="replace"))


# -- from records ----------------------------------------------------------------------------


def _bytes_of(text: str, b64: str | None) -> bytes:
    return base64.b64decode(b64) if b64 is not None else text.encode("utf-8")


def _candidate(record: CandidateRecord) -> Candidate:
    return Candidate(
        record.id, _bytes_of(record.text, record.bytes_b64), record.prob, record.allowed
    )


def entry_from_record(record: EntryRecordType) -> Entry:
    if isinstance(record, TokenRefRecord):
        raise TraceError(
            "a token_ref entry stands for a token of a node_added message: read the message "
            "with RunView, which puts the token there; a trace dump has none"
        )
    if isinstance(record, TokenRecord):
        top = tuple(_candidate(c) for c in record.top)
        return Token(
            record.id,
            _bytes_of(record.text, record.bytes_b64),
            TokenKind(record.source),
            prob=record.prob,
            latency=record.latency_s,
            top=top,
            top_allowed=top
            if record.top_allowed is None
            else tuple(_candidate(c) for c in record.top_allowed),
            special=record.special,
        )
    if isinstance(record, TextRecord):
        return Text(record.text)
    if isinstance(record, RoleOpenRecord):
        return RoleOpener(record.role)
    if isinstance(record, RoleCloseRecord):
        return RoleCloser(record.role)
    if isinstance(record, BlockRecord):
        return BlockMarker(record.block_id, record.name, record.open)
    return Capture(record.name, record.value, record.log_prob, record.is_list, record.removed)


def run_from_record(record: RunRecord) -> Run:
    run = Run(record.name, run_id=record.id)
    run.started_at = record.started_at
    run.finished_at = record.finished_at
    run.status = RunStatus(record.status)
    run.error = record.error
    run.add_usage(record.usage)
    return run


# -- whole traces ----------------------------------------------------------------------------


def dump_trace(node: TraceNode) -> str:
    """The path from the root to ``node`` as JSON (every entry, candidate and figure)."""
    return TraceRecord(nodes=[node_record(n) for n in node.path()]).model_dump_json()


def load_trace(text: str | bytes) -> TraceNode:
    """Read a trace written by :func:`dump_trace`; returns its last node (its parents
    are the earlier ones)."""
    try:
        record = TraceRecord.model_validate_json(text)
    except ValueError as error:  # pydantic's ValidationError
        raise TraceError(
            f"this is not a trace written by dump_trace: {_first_line(error)}"
        ) from None
    if not record.nodes:
        raise TraceError("the trace has no nodes: dump_trace writes at least one")
    last: TraceNode | None = None
    for item in record.nodes:
        if (last.id if last is not None else None) != item.parent_id:
            raise TraceError(
                f"trace node {item.id} names parent {item.parent_id}, but the node before "
                f"it is {last.id if last is not None else None}: the trace is not one path"
            )
        last = TraceNode(
            last,
            NodeInput(NodeKind(item.input.kind), item.input.value),
            tuple(entry_from_record(e) for e in item.entries),
            run_id=item.run_id,
            echo=item.echo,
            hidden=item.hidden,
            healed_bytes=item.healed_bytes,
            usage=item.usage,
            node_id=item.id,
            created_at=item.created_at,
            explored=ExploredFrom(**item.explored.model_dump()) if item.explored else None,
        )
    assert last is not None
    return last


def _first_line(error: Exception) -> str:
    lines = str(error).splitlines()
    return " ".join(lines[:3]) if lines else type(error).__name__
