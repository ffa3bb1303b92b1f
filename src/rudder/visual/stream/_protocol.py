"""The message protocol every view consumes: typed messages, one stream per run.

Each message has a ``type`` tag, the protocol version ``v``, the ``run_id`` of its stream and
``seq``, its place in that stream (0, 1, 2 ... from the run's ``run_started``). A client
that sees a gap in ``seq``, or a first message whose ``seq`` is not 0, sends
``replay_request`` with the last ``seq`` it holds, and gets everything after it. ``reset``
tells a client to forget what it holds for the run; a replay follows it.

The JSON schema (``protocol_schema()``, committed as ``protocol.schema.json``) is the
contract; the client's TypeScript types are generated from it.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter

from rudder.trace._monitor import SystemSample
from rudder.trace._records import (
    CandidateRecord,
    CaptureRecord,
    NodeRecord,
    Record,
    RunRecord,
    TokenRecord,
)
from rudder.trace._usage import Usage
from rudder.visual.stream._token_table import TableToken, WireToken

PROTOCOL_VERSION = 1


class Message(Record):
    v: Literal[1] = 1
    seq: int = Field(ge=0)
    run_id: str


# -- from the kernel to clients -------------------------------------------------------------


class RunStarted(Message):
    type: Literal["run_started"] = "run_started"
    run: RunRecord


class RunFinished(Message):
    type: Literal["run_finished"] = "run_finished"
    run: RunRecord


class Cut(Record):
    """Token healing by a node took ``bytes`` bytes off the end of the text that node
    ``node_id`` shows (on a path through both)."""

    node_id: int
    bytes: int = Field(ge=1)


class NodeAdded(Message):
    """A node: complete, or a generation that has just started (its tokens follow); the
    tokens of a complete one travel as streamed tokens do, in ``tokens``.
    ``cuts``: what its healing took off the nodes before it (the publisher works them out
    once, views apply them: :mod:`rudder.visual.stream._healing`); null in streams of the
    first form, which carried ``node.healed_bytes`` alone."""

    type: Literal["node_added"] = "node_added"
    node: NodeRecord
    cuts: list[Cut] | None = None
    # The node's tokens in the wire form, one per ``token_ref`` entry of ``node``, and the
    # ids the stream names for the first time; null: the entries hold the token records
    # (the first form).
    table: list[TableToken] = Field(default_factory=list)
    tokens: list[WireToken] | None = None


class TokensAppended(Message):
    """Tokens a running generation added. ``healed_bytes`` are first taken from the end of
    the parent's text (token healing re-makes them). ``tokens`` are in the compact wire
    form (:mod:`rudder.visual.stream._token_table`), the ids this stream names for the first
    time in ``table``; a stored run of the first form has full token records there."""

    type: Literal["tokens_appended"] = "tokens_appended"
    node_id: int
    healed_bytes: int = 0
    table: list[TableToken] = Field(default_factory=list)
    tokens: list[Union[WireToken, TokenRecord]]  # noqa: UP007
    # What the healing took off the nodes before (with the first tokens; see NodeAdded).
    cuts: list[Cut] | None = None


class Backtrack(Message):
    """A running generation took back its last ``tokens`` tokens."""

    type: Literal["backtrack"] = "backtrack"
    node_id: int
    tokens: int = Field(ge=1)


class CaptureSet(Message):
    type: Literal["capture"] = "capture"
    node_id: int
    capture: CaptureRecord


class Metrics(Message):
    """Usage of one generation (``node_id`` set, when it ends) or of the run so far, and
    the system samples taken since the previous metrics message."""

    type: Literal["metrics"] = "metrics"
    node_id: int | None = None
    usage: Usage
    samples: list[SystemSample] = Field(default_factory=list)
    # For a hidden generation, the size of the text it made (its tokens were not sent).
    hidden_chars: int | None = None


class Status(Message):
    type: Literal["status"] = "status"
    state: Literal["generating", "idle", "error"]
    node_id: int | None = None
    message: str = ""


class Reset(Message):
    """Forget what you hold of this run: the messages from ``first_seq`` on follow. A reset
    is sent to one client, not kept in the stream; its ``seq`` is ``first_seq``."""

    type: Literal["reset"] = "reset"
    reason: str
    # The stream before ``first_seq`` was dropped (history is bounded): a replay starts there.
    first_seq: int = 0
    # The token table the dropped messages carried (the messages that follow may name it).
    table: list[TableToken] = Field(default_factory=list)


ServerMessage = Annotated[
    Union[  # noqa: UP007
        RunStarted,
        RunFinished,
        NodeAdded,
        TokensAppended,
        Backtrack,
        CaptureSet,
        Metrics,
        Status,
        Reset,
    ],
    Field(discriminator="type"),
]


# -- from clients to the kernel -------------------------------------------------------------


class ClientMessage(Record):
    v: Literal[1] = 1
    seq: int = Field(ge=0)  # the client's own count of messages it sent


class ClientReady(ClientMessage):
    """A client (re)started. It holds the run's stream up to ``last_seq`` (None: nothing)."""

    type: Literal["client_ready"] = "client_ready"
    run_id: str | None = None
    last_seq: int | None = None


class ReplayRequest(ClientMessage):
    """Send again every message of run ``run_id`` after ``after_seq`` (-1: all of them)."""

    type: Literal["replay_request"] = "replay_request"
    run_id: str
    after_seq: int = Field(ge=-1)


class ExploreRequest(ClientMessage):
    """Run generation ``node_id`` again with token ``token_id`` at output token
    ``token_index`` (``rudder.explore``); ``request_id`` is the client's, for the answer."""

    type: Literal["explore_request"] = "explore_request"
    run_id: str
    request_id: int
    node_id: int
    token_index: int = Field(ge=0)
    token_id: int = Field(ge=0)


class DetailRequest(ClientMessage):
    """Tell more about output token ``token_index`` of generation ``node_id`` than was
    streamed (``rudder.token_detail``)."""

    type: Literal["detail_request"] = "detail_request"
    run_id: str
    request_id: int
    node_id: int
    token_index: int = Field(ge=0)


#: What a client asks of a run's stream (the bus answers), and what it asks of the kernel.
StreamRequest = Union[ClientReady, ReplayRequest]  # noqa: UP007
KernelRequest = Union[ExploreRequest, DetailRequest]  # noqa: UP007

FromClient = Annotated[
    Union[ClientReady, ReplayRequest, ExploreRequest, DetailRequest],  # noqa: UP007
    Field(discriminator="type"),
]


# -- the kernel's answers to requests (one client's, outside the run's stream) ----------------


class Answer(Record):
    v: Literal[1] = 1
    run_id: str
    request_id: int
    # error: the message says why (the generation's Models are gone, a forbidden token ...)
    status: Literal["done", "error"]
    error: str | None = None


class ExploreAnswer(Answer):
    """The branch's node (its messages come in the run's stream, before this answer)."""

    type: Literal["explore_answer"] = "explore_answer"
    branch_node_id: int | None = None


class TokenDetailRecord(Record):
    node_id: int
    token_index: int
    candidates: list[CandidateRecord]  # the likeliest tokens, unconstrained, allowed flagged
    # The likeliest of the tokens the grammar allowed (probabilities unconstrained), in order.
    top_allowed: list[CandidateRecord]
    allowed_count: int  # how many tokens the grammar allowed there
    before: str  # the text of the tokens the model ran on just before it
    after: str  # the text of the original output tokens just after it


class DetailAnswer(Answer):
    type: Literal["detail_answer"] = "detail_answer"
    detail: TokenDetailRecord | None = None


KernelAnswer = Annotated[Union[ExploreAnswer, DetailAnswer], Field(discriminator="type")]  # noqa: UP007

AnyMessage = Annotated[
    Union[ServerMessage, FromClient, KernelAnswer],  # noqa: UP007
    Field(discriminator="type"),
]

_server: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)
_client: TypeAdapter[FromClient] = TypeAdapter(FromClient)


def parse_server_message(data: str | bytes | dict[str, object]) -> ServerMessage:
    """A kernel's message; a clear ``pydantic.ValidationError`` when it is not one."""
    if isinstance(data, dict):
        return _server.validate_python(data)
    return _server.validate_json(data)


def parse_client_message(data: str | bytes | dict[str, object]) -> FromClient:
    """A client's message; a clear ``pydantic.ValidationError`` when it is not one."""
    if isinstance(data, dict):
        return _client.validate_python(data)
    return _client.validate_json(data)


def protocol_schema() -> dict[str, object]:
    """The JSON schema of every message, both ways."""
    schema: dict[str, object] = TypeAdapter(AnyMessage).json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "RudderMessage"
    schema["$comment"] = (
        f"rudder message protocol v{PROTOCOL_VERSION}; generated by "
        "`python -m rudder.visual.protocol`, do not edit"
    )
    return schema


def schema_text() -> str:
    return json.dumps(protocol_schema(), indent=2, sort_keys=True) + "\n"
