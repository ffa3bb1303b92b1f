"""The compact wire form of tokens: recorded runs of the first form (streams and a store
written before it, under tests/fixtures/wire_v1) still fold to the view state they gave, the
same runs in the wire form fold to it too (figures to the digits views get), a reader that
attaches after the bounded history dropped messages still gets the tokens they named, and
a stream that names a token it never defined is refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from tests.stream_checks import folded, received

import rudder
from rudder import gen, models
from rudder._state import Token
from rudder.errors import TraceError
from rudder.store import Store
from rudder.trace import add_listener, remove_listener
from rudder.trace._records import (
    TokenRecord,
    TraceRecord,
    entry_from_record,
    load_trace,
    node_record,
    token_records,
    view_figure,
)
from rudder.trace._usage import Usage
from rudder.visual import Bus, NodeAdded, Reset, TokensAppended
from rudder.visual.stream import _publisher as publisher_module
from rudder.visual.stream._protocol import ServerMessage, parse_server_message
from rudder.visual.stream._publisher import Publisher
from rudder.visual.stream._token_table import (
    TableToken,
    WireToken,
    new_entries,
    node_in_wire_form,
    read_tokens,
    wire_form,
)
from rudder.visual.stream._view_state import RunView

FIXTURES = Path(__file__).parents[1] / "fixtures" / "wire_v1"
STREAMS: dict[str, Any] = json.loads((FIXTURES / "streams.json").read_text(encoding="utf-8"))


_usage: TypeAdapter[Usage | None] = TypeAdapter(Usage | None)


def view_state(view: RunView) -> dict[str, Any]:
    """Everything a view knows of a run, as JSON (as make_wire_v1.py wrote it)."""
    return {
        "text": view.text(),
        "node_texts": {str(i): view.text(i) for i in view.nodes},
        "nodes": {
            str(i): {
                "record": node.record.model_dump(mode="json"),
                "tokens": [t.model_dump(mode="json") for t in node.tokens],
                "healed_bytes": node.healed_bytes,
                "captures": [c.model_dump(mode="json") for c in node.captures],
                "usage": _usage.dump_python(node.usage, mode="json"),
                "state": node.state,
                "hidden_chars": node.hidden_chars,
            }
            for i, node in view.nodes.items()
        },
        "usage": _usage.dump_python(view.usage, mode="json"),
    }


def _first_form(name: str) -> list[ServerMessage]:
    return [parse_server_message(m) for m in STREAMS[name]["messages"]]


def _in_wire_form(messages: list[ServerMessage]) -> list[ServerMessage]:
    """``messages`` with every token (streamed, or in a node's entries) re-sent in the wire
    form, as the publisher sends it now (a table entry with the first message that names an
    id)."""
    known: dict[int, bytes] = {}
    out: list[ServerMessage] = []
    for message in messages:
        if isinstance(message, TokensAppended):
            tokens = [_token(t) for t in message.tokens]
            table, wire = wire_form(tokens, new_entries(tokens, known))
            message = message.model_copy(update={"table": table, "tokens": wire})
        elif isinstance(message, NodeAdded):
            record, records = node_in_wire_form(message.node)
            tokens = [_token(t) for t in records]
            table, wire = wire_form(tokens, new_entries(tokens, known))
            update = {"node": record, "table": table, "tokens": wire}
            message = message.model_copy(update=update)
        out.append(parse_server_message(message.model_dump_json()))
    return out


def _token(record: TokenRecord | WireToken) -> Token:
    assert isinstance(record, TokenRecord)
    token = entry_from_record(record)
    assert isinstance(token, Token)
    return token


def _as_viewed(value: Any) -> Any:
    """A view state of the first form with its token figures as views get them now."""
    if isinstance(value, dict):
        figures = (
            {"prob", "latency_s"} if value.get("kind") == "token" or "allowed" in value else set()
        )
        return {
            k: view_figure(v) if k in figures and isinstance(v, float) else _as_viewed(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_viewed(v) for v in value]
    return value


def _streamed_views(state: dict[str, Any]) -> dict[str, Any]:
    """The view state with the figures of tokens as views get them now."""
    out = json.loads(json.dumps(state))
    for node in out["nodes"].values():
        node["tokens"] = _as_viewed(node["tokens"])
        node["record"]["entries"] = _as_viewed(node["record"]["entries"])
    return out


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_stream_of_the_first_form_folds_to_the_view_state_it_gave(name: str) -> None:
    recorded = STREAMS[name]
    view = folded(recorded["run_id"], _first_form(name))
    assert view_state(view) == recorded["view"]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_the_same_run_in_the_wire_form_folds_to_the_same_view_state(name: str) -> None:
    recorded = STREAMS[name]
    messages = _in_wire_form(_first_form(name))
    view = folded(recorded["run_id"], messages)
    assert view_state(view) == _streamed_views(recorded["view"])
    assert view.text() == recorded["view"]["text"]


def test_a_model_runs_tokens_take_at_most_a_quarter_kilobyte_each() -> None:
    """The tiny Llama's run, five candidates and five allowed ones per generated token: at
    most 250 B of JSON per token (issue 22's target; a long run's table adds a few bytes per
    token, see benchmarks/trace_overhead.py), the table naming each id once."""
    first = _first_form("tiny_llama")
    wire = _in_wire_form(first)
    before = [m for m in first if isinstance(m, TokensAppended)]
    after = [m for m in wire if isinstance(m, TokensAppended)]
    count = sum(len(m.tokens) for m in after)
    token_bytes = sum(
        len(json.dumps(m.model_dump(mode="json")["tokens"], separators=(",", ":"))) for m in after
    )
    first_bytes = sum(len(m.model_dump_json()) for m in before)
    assert token_bytes / count <= 250, f"{token_bytes / count:.0f} B per token"
    assert sum(len(m.model_dump_json()) for m in after) < first_bytes / 2
    named = [entry.id for m in after for entry in m.table]
    assert len(named) == len(set(named))


def test_a_store_written_by_the_first_form_opens_and_shows_the_same(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    shutil.copy(FIXTURES / "store.sqlite", path)
    with Store(path, create=False) as store:
        summaries = {s.name: s for s in store.runs()}
        assert set(summaries) == set(STREAMS)
        for name, recorded in STREAMS.items():
            summary = summaries[name]
            assert summary.id == recorded["run_id"]
            assert view_state(store.view(summary.id)) == recorded["view"], name
        # Search reads the text the first form's writer stored.
        assert {s.name for s in store.runs("<|im_end|></script>")} >= {"hostile"}


def test_table_entries_keep_bytes_that_are_not_utf8_alone() -> None:
    """A CJK character and an emoji split over byte tokens, a chat marker, an escape code."""
    tokens = [
        Token(1, "日".encode()[:1], _kind("generated"), prob=0.5),
        Token(2, "日".encode()[1:], _kind("generated"), prob=0.25),
        Token(3, "🎉".encode()[:3], _kind("forced")),
        Token(4, b"<|im_end|>", _kind("forced"), special=True),
        Token(5, b"\x1b[31m</script>", _kind("generated"), prob=1e-300),
    ]
    table, wire = wire_form(tokens, new_entries(tokens, {}))
    assert [entry.id for entry in table] == [1, 2, 3, 4, 5]
    assert table[0].bytes_b64 is not None
    assert table[3].bytes_b64 is None
    records = read_tokens(wire, {entry.id: entry for entry in table})
    assert records == token_records(tokens, viewed=True)
    assert b"".join(_bytes(r) for r in records) == b"".join(t.bytes for t in tokens)


def test_a_token_outside_the_runs_table_is_refused() -> None:
    token = WireToken(i=7, s="g", p=0.5, l=0.0, c=[(7, 0.5)], d=[], a=None, x=False)
    with pytest.raises(TraceError, match="token 7 is not in the run's token table"):
        read_tokens([token], {})
    table = {7: TableToken(id=7, text="x")}
    beyond = token.model_copy(update={"a": [3]})
    with pytest.raises(TraceError, match="past its 1"):
        read_tokens([beyond], table)


@pytest.fixture
def small_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    """A bus that keeps 8 to 16 messages per run, each token sent on its own."""
    monkeypatch.setattr(publisher_module, "BATCH_S", 0.0)
    monkeypatch.setattr(publisher_module, "BATCH_TOKENS", 1)
    bus = Bus(max_messages_per_run=16)
    publisher = Publisher(bus)
    add_listener(publisher)
    yield bus
    remove_listener(publisher)


def test_a_reader_after_dropped_history_gets_the_table_the_dropped_messages_carried(
    small_bus: Bus,
) -> None:
    """A second generation names tokens that only the first one's messages (dropped from
    the bounded history) carried in their tables: the reset hands that table on."""
    with rudder.run("bounded") as run:
        lm = models.Mock([b"abcabcabcabcabcabcabcabc"], merges=(), echo=True) + "Q="
        first = lm + gen("one", max_tokens=20)
        second = first + gen("two", max_tokens=2)
    node = second.trace
    assert node is not None
    messages = received(small_bus, run.id)
    reset, *held = messages
    assert isinstance(reset, Reset)
    assert reset.first_seq > 0, "the history was not bounded"
    named_held = {e.id for m in held if isinstance(m, TokensAppended) for e in m.table}
    kept = [e for e in node.entries if isinstance(e, Token)]
    assert {t.token_id for t in kept} - named_held, "no token of the second is named only earlier"
    assert {t.token_id for t in kept} <= {e.id for e in reset.table}
    view = folded(run.id, messages)
    assert view.nodes[node.id].tokens == token_records(kept, viewed=True)
    assert second["two"]
    assert view.text(node.id).endswith(second["two"])


def _kind(name: str) -> Any:
    from rudder._state import TokenKind

    return TokenKind(name)


def _bytes(record: TokenRecord) -> bytes:
    import base64

    return base64.b64decode(record.bytes_b64) if record.bytes_b64 else record.text.encode()


def test_a_token_ref_is_refused_outside_a_message() -> None:
    """A node record with its tokens taken out is no trace: load_trace says so."""
    lm = models.Mock([b"Paris"]) + "Q=" + gen("a", max_tokens=2)
    assert lm.trace is not None
    record, _ = node_in_wire_form(node_record(lm.trace))
    text = TraceRecord(nodes=[node_record(n) for n in lm.trace.path()[:-1]] + [record])
    with pytest.raises(TraceError, match="token_ref"):
        load_trace(text.model_dump_json())


def test_one_run_with_models_of_different_vocabularies_shows_each_models_text() -> None:
    """Token ids mean other tokens in another vocabulary: when a later model of the run names
    an id the stream already carried with other bytes, its entry is sent again, and every
    node is shown with its own model's tokens (also in an old model's later generation)."""
    bus = Bus()
    publisher = Publisher(bus)
    add_listener(publisher)
    try:
        run = _two_vocabularies()
    finally:
        remove_listener(publisher)
    messages = received(bus, run.id)
    view = folded(run.id, messages)
    for lm in run.outputs:
        assert lm.trace is not None
        assert view.text(lm.trace.id) == str(lm)
    # The same id was sent with two different texts.
    entries: dict[int, set[str]] = {}
    for message in messages:
        for entry in getattr(message, "table", ()):
            entries.setdefault(entry.id, set()).add(entry.text)
    assert any(len(texts) > 1 for texts in entries.values())


class _Outputs:
    def __init__(self, run_id: str, outputs: list[Any]) -> None:
        self.id = run_id
        self.outputs = outputs


def _two_vocabularies() -> _Outputs:
    with rudder.run("two vocabularies") as run:
        first = models.Mock([b"hello hello <b>"], merges=("he", "ll", "lo"), echo=True)
        second = models.Mock(
            [b"world \xe6\x97\xa5\xe6\x9c\xac"], merges=("wo", "rl", "ld"), echo=True
        )
        outputs = [
            first + "A: " + gen(max_tokens=6),
            second + "B: " + gen(max_tokens=6),
            first + "C: " + gen(max_tokens=6),
        ]
    return _Outputs(run.id, outputs)


def _spelled(token_id: int) -> bytes:
    """A token's bytes: its id, then a CJK character cut in the middle."""
    return f"{token_id}日".encode()[:-1]


def _measured(token_id: int, candidates: tuple[int, ...], read: list[int]) -> Token:
    """A generated token whose candidates say, in ``read``, when they are first made."""
    from rudder._state import Candidate
    from rudder.engine._measured_token import MeasuredToken

    def measured() -> tuple[tuple[Candidate, ...], tuple[Candidate, ...]]:
        read.append(token_id)
        made = tuple(Candidate(i, _spelled(i), 0.1, True) for i in candidates)
        return made, made

    return MeasuredToken(token_id, _spelled(token_id), prob=0.5, measured=measured)


def test_a_streams_table_entries_follow_seq_whichever_message_is_built_first() -> None:
    """The publishing thread only takes places in line (no token is read there); a later
    message built first still leaves the ids an earlier one names to that one."""
    from rudder.visual.stream._token_table import StreamTable

    read: list[int] = []
    table = StreamTable()
    first = table.enlist([_measured(1, (1, 2), read)])
    second = table.enlist([_measured(3, (2, 3, 4), read)])
    third = table.enlist([_measured(4, (1, 5), read)])
    assert read == [], "enlisting read the tokens' candidates"
    assert [i for i, _ in third()] == [5]
    assert read == [1, 3, 4], "the places before were not worked out first, in order"
    assert [i for i, _ in first()] == [1, 2]
    assert second() == [(3, _spelled(3)), (4, _spelled(4))]
    assert third() == [(5, _spelled(5))], "asked again, a place gives the same entries"


def test_a_stream_nobody_reads_holds_a_bounded_number_of_unread_places() -> None:
    from rudder.visual.stream._token_table import StreamTable

    read: list[int] = []
    table = StreamTable()
    places = [table.enlist([_measured(i, (i,), read)]) for i in range(StreamTable.MAX_WAITING)]
    assert read == []
    places.append(table.enlist([_measured(-1, (-1,), read)]))
    assert read == list(range(StreamTable.MAX_WAITING // 2 + 1)), (
        "the publishing thread did not work out the older half of the places"
    )
    assert [i for i, _ in places[-1]()] == [-1]
    assert [i for i, _ in places[0]()] == [0]


def test_messages_read_from_the_middle_first_still_carry_each_entry_before_its_use(
    small_bus: Bus,
) -> None:
    """``bus.messages(after_seq=...)`` builds the later messages of a stream before the
    earlier ones: folded in order, every token is still defined before it is used."""
    small_bus.max_messages_per_run = 1_000
    with rudder.run("out of order") as run:
        lm = models.Mock([b"abcdeabcdeab"], merges=(), echo=True) + "Q="
        lm += gen("x", max_tokens=6)
    # run_started, the prompt's node, the generation's node, status, then a token a message
    tail = small_bus.messages(run.id, after_seq=5)
    assert sum(isinstance(m, TokensAppended) for m in tail) >= 3
    view = folded(run.id, small_bus.messages(run.id))
    node = lm.trace
    assert node is not None
    kept = [e for e in node.entries if isinstance(e, Token)]
    assert view.nodes[node.id].tokens == token_records(kept, viewed=True)
