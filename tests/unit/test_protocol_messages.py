"""The message protocol's values: every message survives JSON, real programs produce only
messages the committed schema accepts, and bad client input is refused with a clear error.

``test_protocol_schema.py`` checks that the schema, the pydantic models and the TypeScript
types agree with each other; this file checks the messages themselves against them.
"""

from __future__ import annotations

import base64
import json
import math
import typing
from collections.abc import Iterator
from typing import Any

import jsonschema
import pydantic
import pytest
from tests.stream_checks import received

import rudder
from rudder import assistant, gen, guidance, lark, models, select, user
from rudder._state import Candidate, Capture, Text, Token, TokenKind
from rudder.errors import GenerationError
from rudder.trace import add_listener, remove_listener
from rudder.trace._monitor import SystemSample
from rudder.trace._node import NodeInput, NodeKind, TraceNode
from rudder.trace._records import (
    BlockRecord,
    CaptureRecord,
    RoleCloseRecord,
    RoleOpenRecord,
    RunRecord,
    TextRecord,
    capture_record,
    node_record,
    token_record,
)
from rudder.trace._usage import Usage
from rudder.visual import (
    Backtrack,
    Bus,
    CaptureSet,
    ClientReady,
    Metrics,
    NodeAdded,
    Publisher,
    ReplayRequest,
    Reset,
    RunFinished,
    RunStarted,
    Status,
    TokensAppended,
    parse_client_message,
    parse_server_message,
)
from rudder.visual.protocol import SCHEMA_PATH
from rudder.visual.stream import _publisher as publisher_module
from rudder.visual.stream._protocol import (
    DetailRequest,
    ExploreRequest,
    FromClient,
    Message,
    ServerMessage,
)

RUN = "3f2a9c0d5e6b4a7f8c1d2e3f4a5b6c7d"

#: A Lark grammar that can never finish: ``a`` always needs another ``a`` first.
NEVER_COMPLETES = 'start: a\na: a "x"\n'


def _union_members(union: Any) -> set[type]:
    """The classes of an ``Annotated[Union[...], Field(discriminator=...)]``."""
    inner = typing.get_args(union)[0]
    return set(typing.get_args(inner))


# -- realistic records ------------------------------------------------------------------------

_EURO_HEAD = b"\xe2\x82"  # the first two bytes of "€": not UTF-8 on their own


def _generated_token() -> Token:
    """A sampled token whose alternatives include a partial UTF-8 sequence."""
    top = (
        Candidate(295, b"Paris", 0.91, True),
        Candidate(1001, _EURO_HEAD, 0.05, False),
        Candidate(82, b"R", 0.02, True),
    )
    return Token(
        295,
        b"Paris",
        TokenKind.GENERATED,
        prob=0.91,
        latency=0.0123,
        top=top,
        top_allowed=(top[0], top[2]),
    )


def _partial_token() -> Token:
    """A generated token that is half a character."""
    return Token(
        1001,
        _EURO_HEAD,
        TokenKind.GENERATED,
        prob=0.4,
        top=(Candidate(1001, _EURO_HEAD, 0.4, True),),
    )


def _forced_token() -> Token:
    return Token(44, b",", TokenKind.FORCED)


def _special_token() -> Token:
    return Token(258, b"<|im_end|>", TokenKind.FORCED, special=True)


def _usage() -> Usage:
    """A Usage with every figure set (other test modules use it too)."""
    return Usage(
        generations=2,
        prompt_tokens=40,
        cached_prompt_tokens=31,
        healed_tokens=1,
        forward_passes=9,
        forced_tokens=4,
        generated_tokens=6,
        backtracked_tokens=2,
        time_to_first_token_s=0.021,
        total_s=0.5,
        forward_s=0.3,
        mask_s=0.05,
    )


def _samples() -> list[SystemSample]:
    without_gpu = SystemSample(
        time_s=1_700_000_000.5,
        cpu_percent=12.5,
        process_cpu_percent=3.25,
        ram_used_bytes=8 * 2**30,
        ram_total_bytes=32 * 2**30,
        process_rss_bytes=512 * 2**20,
    )
    with_gpu = SystemSample(
        time_s=1_700_000_001.0,
        cpu_percent=50.0,
        process_cpu_percent=25.0,
        ram_used_bytes=9 * 2**30,
        ram_total_bytes=32 * 2**30,
        process_rss_bytes=600 * 2**20,
        gpu_percent=87.5,
        vram_used_bytes=70 * 2**30,
        vram_total_bytes=80 * 2**30,
    )
    return [without_gpu, with_gpu]


def _complete_node() -> TraceNode:
    """A finished generation node with every kind of entry, under a text node."""
    root = TraceNode(None, NodeInput(NodeKind.TEXT, "Q="), (Text("Q="),), run_id=RUN)
    entries = (
        _forced_token(),
        _generated_token(),
        _partial_token(),
        _special_token(),
        Capture("city", "Paris", log_prob=-0.094),
        Capture("items", "", is_list=True, removed=True),
    )
    return TraceNode(
        root,
        NodeInput(NodeKind.GRAMMAR, "select(['Paris', 'Rome'])"),
        entries,
        run_id=RUN,
        healed_bytes=1,
        usage=Usage(generations=1, generated_tokens=2, forced_tokens=2, total_s=0.1),
    )


def _server_messages() -> list[ServerMessage]:
    """One or more of every server message, with nested records as real runs make them."""
    running = RunRecord(id=RUN, name="demo", status="running", started_at=1_700_000_000.0)
    failed = RunRecord(
        id=RUN,
        name="demo",
        status="error",
        started_at=1_700_000_000.0,
        finished_at=1_700_000_002.5,
        error="GenerationError: the grammar cannot be completed",
        usage=_usage(),
    )
    hidden = TraceNode(
        None,
        NodeInput(NodeKind.TEXT, "secret"),
        (Text("secret"),),
        run_id="an-earlier-run",
        hidden=True,
    )
    node = _complete_node()
    return [
        RunStarted(seq=0, run_id=RUN, run=running),
        NodeAdded(seq=1, run_id=RUN, node=node_record(node.parent)),  # type: ignore[arg-type]
        NodeAdded(seq=2, run_id=RUN, node=node_record(node)),
        NodeAdded(seq=3, run_id=RUN, node=node_record(hidden, for_view=True)),
        NodeAdded(
            seq=4,
            run_id=RUN,
            node=node_record(node).model_copy(
                update={
                    "id": 99,
                    "entries": [
                        TextRecord(text="ü"),
                        RoleOpenRecord(role="user"),
                        RoleCloseRecord(role="user"),
                        BlockRecord(block_id=3, name="answer", open=True),
                        BlockRecord(block_id=3, name=None, open=False),
                        CaptureRecord(name="answer", value="42", is_list=True),
                    ],
                }
            ),
        ),
        Status(seq=5, run_id=RUN, state="generating", node_id=2),
        TokensAppended(
            seq=6,
            run_id=RUN,
            node_id=2,
            healed_bytes=1,
            tokens=[token_record(t) for t in (_forced_token(), _generated_token())],
        ),
        TokensAppended(
            seq=7,
            run_id=RUN,
            node_id=2,
            tokens=[token_record(_partial_token()), token_record(_special_token())],
        ),
        Backtrack(seq=8, run_id=RUN, node_id=2, tokens=2),
        CaptureSet(
            seq=9,
            run_id=RUN,
            node_id=2,
            capture=capture_record(Capture("city", "Paris", log_prob=-0.094)),
        ),
        # A token the model gave probability 0 makes its capture's log-probability -inf.
        CaptureSet(
            seq=10,
            run_id=RUN,
            node_id=2,
            capture=capture_record(Capture("forced_choice", "Rome", log_prob=-math.inf)),
        ),
        CaptureSet(
            seq=11, run_id=RUN, node_id=2, capture=capture_record(Capture("note", "set by code"))
        ),
        Metrics(seq=12, run_id=RUN, node_id=2, usage=_usage()),
        Metrics(seq=13, run_id=RUN, usage=_usage(), samples=_samples()),
        Status(seq=14, run_id=RUN, state="idle", node_id=2),
        Status(seq=15, run_id=RUN, state="error", node_id=2, message="GenerationError: stuck"),
        RunFinished(seq=16, run_id=RUN, run=failed),
        Reset(
            seq=12,
            run_id=RUN,
            reason="history bounded: older messages were dropped",
            first_seq=12,
        ),
    ]


def _client_messages() -> list[FromClient]:
    return [
        ClientReady(seq=0),
        ClientReady(seq=1, run_id=RUN, last_seq=41),
        ClientReady(seq=2, run_id=RUN, last_seq=None),
        ReplayRequest(seq=3, run_id=RUN, after_seq=-1),
        ReplayRequest(seq=4, run_id=RUN, after_seq=17),
        ExploreRequest(seq=5, run_id=RUN, request_id=1, node_id=3, token_index=0, token_id=9),
        DetailRequest(seq=6, run_id=RUN, request_id=2, node_id=3, token_index=4),
    ]


def _ids(messages: list[Any]) -> list[str]:
    return [f"{m.type}-{m.seq}" for m in messages]


# -- JSON round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("message", _server_messages(), ids=_ids(_server_messages()))
def test_server_messages_survive_json(message: Message) -> None:
    text = message.model_dump_json()
    parsed = parse_server_message(text)
    assert type(parsed) is type(message)
    assert parsed == message
    assert parse_server_message(text.encode()) == message
    assert json.loads(text)["v"] == 1


@pytest.mark.parametrize("message", _client_messages(), ids=_ids(_client_messages()))
def test_client_messages_survive_json(message: FromClient) -> None:
    text = message.model_dump_json()
    assert parse_client_message(text) == message
    assert parse_client_message(text.encode()) == message
    assert parse_client_message(json.loads(text)) == message


def test_every_message_type_has_a_round_trip_case() -> None:
    """A message type added to the protocol without a case here fails this test."""
    assert {type(m) for m in _server_messages()} == _union_members(ServerMessage)
    assert {type(m) for m in _client_messages()} == _union_members(FromClient)


def test_token_bytes_that_are_not_utf8_travel_as_base64() -> None:
    message = TokensAppended(seq=0, run_id=RUN, node_id=1, tokens=[token_record(_partial_token())])
    wire = json.loads(message.model_dump_json())
    token = wire["tokens"][0]
    assert token["text"] == "\ufffd"  # readable, lossy
    assert base64.b64decode(token["bytes_b64"]) == _EURO_HEAD  # exact
    assert base64.b64decode(token["top"][0]["bytes_b64"]) == _EURO_HEAD
    parsed = parse_server_message(message.model_dump_json())
    assert isinstance(parsed, TokensAppended)
    assert base64.b64decode(parsed.tokens[0].bytes_b64 or "") == _EURO_HEAD
    # UTF-8 tokens carry no base64 copy.
    assert token_record(_generated_token()).bytes_b64 is None


def _refuse(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def test_minus_infinity_survives_json() -> None:
    message = CaptureSet(
        seq=0,
        run_id=RUN,
        node_id=1,
        capture=CaptureRecord(name="c", value="v", log_prob=-math.inf),
    )
    wire = message.model_dump_json()
    assert json.loads(wire, parse_constant=_refuse)["capture"]["log_prob"] == "-Infinity"
    parsed = parse_server_message(wire)
    assert isinstance(parsed, CaptureSet)
    assert parsed.capture.log_prob == -math.inf


# -- the committed schema ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_errors(validator: jsonschema.Draft202012Validator, messages: list[Any]) -> list[str]:
    """Why each message, as sent on the wire, does not validate (empty: all valid)."""
    schema = validator.schema
    errors = []
    for message in messages:
        wire = json.loads(message.model_dump_json())
        if validator.is_valid(wire):
            continue
        # The oneOf error names no field: validate against the branch of the message's tag.
        branch = {"$ref": schema["discriminator"]["mapping"][message.type], **schema}
        branch.pop("oneOf")
        details = "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft202012Validator(branch).iter_errors(wire)
        )
        errors.append(f"{message.type} seq {message.seq}: {details or 'no branch matches'}")
    return errors


@pytest.mark.parametrize("message", _server_messages(), ids=_ids(_server_messages()))
def test_constructed_server_messages_match_the_schema(
    validator: jsonschema.Draft202012Validator, message: Message
) -> None:
    assert _schema_errors(validator, [message]) == []


def test_client_messages_match_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    assert _schema_errors(validator, _client_messages()) == []


def test_the_schema_rejects_what_the_models_reject(
    validator: jsonschema.Draft202012Validator,
) -> None:
    """The schema is strict like the models: a wrong tag, version or extra field fails."""
    good = json.loads(Status(seq=0, run_id=RUN, state="idle").model_dump_json())
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "type": "sleeping"})
    assert not validator.is_valid({**good, "v": 2})
    assert not validator.is_valid({**good, "state": "napping"})
    assert not validator.is_valid({**good, "surprise": True})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "seq"})


@pytest.fixture
def buses() -> Iterator[tuple[Bus, Bus]]:
    """A bus with the whole history and one that keeps only a few messages per run."""
    full, small = Bus(), Bus(max_messages_per_run=8)
    publishers = [Publisher(full), Publisher(small)]
    for publisher in publishers:
        add_listener(publisher)
    yield full, small
    for publisher in publishers:
        remove_listener(publisher)


@guidance
def _interview(lm, question):  # type: ignore[no-untyped-def]
    with user():
        lm += question
    with assistant():
        lm += "City: " + select(["Paris", "Rome", "Oslo"], name="city") + "\n"
        lm += "Visit http:" + gen("url", stop=" ", max_tokens=10)
    return lm


def test_messages_of_real_programs_match_the_schema(
    validator: jsonschema.Draft202012Validator,
    buses: tuple[Bus, Bus],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every token is sent at once, so the stop string's tokens are sent and taken back.
    monkeypatch.setattr(publisher_module, "BATCH_S", 0.0)
    full, small = buses
    lm = models.Mock([b"Paris\n", b"http://www.example.com", b"Say=abcdefgh"], echo=True)
    with rudder.run("interview") as ok:
        done = lm + "Notes.\n" + _interview("Where is the Eiffel tower?")
        with rudder.hidden():
            done += "Internal memo. "
        done += " Say=" + gen("said", stop="cde", max_tokens=12)
    with pytest.raises(GenerationError), rudder.run("stuck") as stuck:
        lm + "Go=" + lark(NEVER_COMPLETES)
    assert done["city"] == "Paris"
    assert done["url"] == "//www.example.com"
    assert done["said"] == "ab"

    late = received(small, ok.id)
    produced = [*full.messages(ok.id), *full.messages(stuck.id), *late]
    assert _schema_errors(validator, produced) == []
    # The program exercised every kind of server message (the late subscriber got a reset).
    tags = {m.type for m in produced}
    assert tags == {m.type for m in _server_messages()}
    states = {m.state for m in produced if isinstance(m, Status)}
    assert states == {"generating", "idle", "error"}


# -- bad client input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        pytest.param(
            {"type": "hello", "v": 1, "seq": 0},
            ["'hello'", "client_ready", "replay_request"],
            id="unknown-type",
        ),
        pytest.param(
            {"type": "run_started", "v": 1, "seq": 0, "run_id": RUN},
            ["'run_started'", "client_ready"],
            id="a-server-message",
        ),
        pytest.param({"v": 1, "seq": 0}, ["'type'"], id="no-type"),
        pytest.param(
            {"type": "replay_request", "v": 1, "seq": 0, "after_seq": 3},
            ["replay_request.run_id", "Field required"],
            id="replay-without-run-id",
        ),
        pytest.param(
            {"type": "replay_request", "v": 1, "seq": 0, "run_id": RUN, "after_seq": -2},
            ["replay_request.after_seq", "greater than or equal to -1"],
            id="after-seq-below-minus-one",
        ),
        pytest.param(
            {"type": "client_ready", "v": 2, "seq": 0},
            ["client_ready.v", "Input should be 1"],
            id="wrong-version",
        ),
        pytest.param(
            {"type": "client_ready", "v": 1, "seq": -1},
            ["client_ready.seq"],
            id="negative-seq",
        ),
        pytest.param(
            {"type": "client_ready", "v": 1, "seq": 0, "last_seq": 3, "runId": RUN},
            ["client_ready.runId", "Extra inputs are not permitted"],
            id="unknown-field",
        ),
        pytest.param('{"type": "client_ready", ', ["Invalid JSON"], id="broken-json"),
    ],
)
def test_bad_client_messages_are_refused_with_a_readable_error(
    data: dict[str, object] | str, mentions: list[str]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_client_message(data)
    text = str(caught.value)
    for part in mentions:
        assert part in text
    # The same refusal for the message as text.
    if isinstance(data, dict):
        with pytest.raises(pydantic.ValidationError):
            parse_client_message(json.dumps(data))


def test_a_client_message_is_not_a_server_message() -> None:
    with pytest.raises(pydantic.ValidationError, match="client_ready"):
        parse_server_message(ClientReady(seq=0).model_dump_json())
