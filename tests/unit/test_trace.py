"""The trace on ``models.Mock``: nodes, runs, usage, the system monitor, settings, records.

Every ``lm + x`` makes a trace node; runs group nodes and sum their usage; a run's monitor
samples the machine while it generates. Usage figures are checked against counts taken
independently of the trace: the output's tokens, the engine's call counter, the prompt as
tokenized here, and the token events a listener receives.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import rudder
from rudder import assistant, block, capture, gen, guidance, lark, models, select, system, user
from rudder._chat import render_state
from rudder._state import (
    BlockMarker,
    Candidate,
    Capture,
    RoleCloser,
    RoleOpener,
    Text,
    Token,
    TokenKind,
)
from rudder.engine._prompt import tokenize_prompt
from rudder.errors import GenerationError, SettingsError
from rudder.models import Model
from rudder.trace import (
    NodeInput,
    NodeKind,
    Run,
    RunStatus,
    SystemMonitor,
    SystemSample,
    TraceListener,
    TraceNode,
    Usage,
    active_run,
    add_listener,
    default_run,
    remove_listener,
)
from rudder.trace._records import dump_trace, load_trace, node_record

#: A Lark grammar that can never finish: ``a`` always needs another ``a`` first.
NEVER_COMPLETES = 'start: a\na: a "x"\n'

MONITOR_THREAD = "rudder-monitor"


# -- helpers and fixtures ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_settings() -> Iterator[None]:
    settings = rudder.settings
    saved = (
        settings.echo,
        settings.monitor,
        settings.monitor_interval_s,
        settings.monitor_max_samples,
        settings.view,
    )
    yield
    (
        settings.echo,
        settings.monitor,
        settings.monitor_interval_s,
        settings.monitor_max_samples,
        settings.view,
    ) = saved


class Recorder(TraceListener):
    """Keeps what the trace reports, for counts independent of the nodes themselves."""

    def __init__(self) -> None:
        self.added: list[TraceNode] = []
        self.steps: list[tuple[TraceNode, list[Token], int]] = []  # (node, added, backtracked)
        self.samples: list[tuple[Run, SystemSample]] = []
        self.sampled = threading.Event()
        self.samples_wanted = 0

    def node_added(self, node: TraceNode) -> None:
        self.added.append(node)

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        self.steps.append((node, list(added), backtracked))

    def system_sample(self, run: Run, sample: SystemSample) -> None:
        self.samples.append((run, sample))
        if self.samples_wanted and len(self.samples) >= self.samples_wanted:
            self.sampled.set()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    listener = Recorder()
    add_listener(listener)
    yield listener
    remove_listener(listener)


def _kinds(node: TraceNode | None) -> list[NodeKind]:
    assert node is not None
    return [n.input.kind for n in node.path()]


def _node(lm: Model) -> TraceNode:
    assert lm.trace is not None
    return lm.trace


def _tokens(node: TraceNode) -> list[Token]:
    return [e for e in node.entries if isinstance(e, Token)]


def _prompt_ids(lm: Model) -> list[int]:
    """The token ids the model is given for ``lm``'s state, tokenized here."""
    prompt = render_state(lm._entries, lm.chat_template)
    return tokenize_prompt(prompt, lm.engine.tokenizer).ids


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == MONITOR_THREAD]


def _nvml_finds_a_gpu() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except pynvml.NVMLError:
        return False


def _check_sample(sample: SystemSample, *, gpu: bool) -> None:
    assert sample.ram_total_bytes > 0
    assert 0 < sample.ram_used_bytes <= sample.ram_total_bytes
    assert sample.process_rss_bytes > 0
    assert sample.cpu_percent >= 0.0
    assert sample.process_cpu_percent >= 0.0
    gpu_fields = (sample.gpu_percent, sample.vram_used_bytes, sample.vram_total_bytes)
    if gpu:
        assert None not in gpu_fields
    else:
        assert gpu_fields == (None, None, None)  # absent, not zero


# -- nodes --------------------------------------------------------------------------------------


def test_a_fresh_model_has_no_trace() -> None:
    lm = models.Mock([b"Paris"])
    assert lm.trace is None
    assert lm.usage == Usage()


def test_branches_share_the_nodes_before_the_branch() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    base = lm + "A"
    base_node = _node(base)
    b1 = base + "B" + gen("x", max_tokens=3)
    b2 = base + "C"
    assert base.trace is base_node  # branching leaves the base as it was

    p1, p2 = _node(b1).path(), _node(b2).path()
    assert p1[0] is p2[0] is base_node
    assert base_node.parent is None
    assert len(p1) == 3
    assert len(p2) == 2
    assert p1[1] is not p2[1]
    assert p1[2].parent is p1[1]
    assert p1[1].parent is p2[1].parent is base_node

    assert [n.input for n in p1[:2]] == [
        NodeInput(NodeKind.TEXT, "A"),
        NodeInput(NodeKind.TEXT, "B"),
    ]
    assert p2[1].input == NodeInput(NodeKind.TEXT, "C")
    assert p1[1].entries == (Text("B"),)
    assert p2[1].entries == (Text("C"),)
    assert p1[2].input.kind is NodeKind.GRAMMAR
    assert p1[2].input.value  # the grammar's description

    # A generation's node holds its tokens, then its captures; text nodes have no usage.
    assert b1.generation is not None
    assert p1[2].entries == (*b1.generation.tokens, *b1.generation.captures)
    assert p1[2].entries[-1] == Capture("x", b1["x"], log_prob=b1.log_prob("x"))
    assert p1[2].usage is not None
    assert p1[0].usage is p1[1].usage is p2[1].usage is None
    # Node ids are unique along and across branches.
    assert len({n.id for n in (*p1, *p2)}) == 4


def test_role_blocks_make_role_nodes() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    with system():
        lm += "Be terse."
    with user():
        lm += "Capital?"
    with assistant():
        lm += gen("answer", max_tokens=3)
    lm += ""  # writes the pending closer
    path = _node(lm).path()
    assert [(n.input.kind, n.input.value) for n in path] == [
        (NodeKind.ROLE_OPEN, "system"),
        (NodeKind.TEXT, "Be terse."),
        (NodeKind.ROLE_CLOSE, "system"),
        (NodeKind.ROLE_OPEN, "user"),
        (NodeKind.TEXT, "Capital?"),
        (NodeKind.ROLE_CLOSE, "user"),
        (NodeKind.ROLE_OPEN, "assistant"),
        (NodeKind.GRAMMAR, path[7].input.value),
        (NodeKind.ROLE_CLOSE, "assistant"),
    ]
    assert path[0].entries == (RoleOpener("system"),)
    assert path[2].entries == (RoleCloser("system"),)
    assert path[8].entries == (RoleCloser("assistant"),)
    # The nodes' entries, in path order, are the Model's whole state.
    assert tuple(e for n in path for e in n.entries) == lm.entries


def test_named_blocks_make_block_nodes() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    with block("quoted", opening="<", closing=">") as quoted:
        lm += "inside"
    lm += ""
    path = _node(lm).path()
    assert _kinds(lm.trace) == [NodeKind.BLOCK_OPEN, NodeKind.TEXT, NodeKind.BLOCK_CLOSE]
    assert path[0].input.value == path[2].input.value == "quoted"
    assert path[0].entries == (BlockMarker(quoted.block_id, "quoted", True), Text("<"))
    assert path[2].entries == (
        Text(">"),
        BlockMarker(quoted.block_id, "quoted", False),
        Capture("quoted", "inside"),
    )


def test_a_stateful_function_makes_a_call_node() -> None:
    seen: list[TraceNode | None] = []

    @guidance
    def ask_capital(lm, country):  # type: ignore[no-untyped-def]
        seen.append(lm.trace)
        lm += f"Capital of {country}: "
        lm += select(["Paris", "Rome"], name="city")
        return lm

    base = models.Mock([b"Paris"], echo=True) + "Quiz. "
    out = base + ask_capital("France")
    path = _node(out).path()
    assert _kinds(out.trace) == [NodeKind.TEXT, NodeKind.CALL, NodeKind.TEXT, NodeKind.GRAMMAR]
    call = path[1]
    assert call.parent is base.trace
    assert "ask_capital" in call.input.value
    assert call.entries == ()
    assert seen == [call]  # the function's lm already carries the call node
    assert path[2].input.value == "Capital of France: "
    assert out["city"] == "Paris"


def test_set_and_remove_make_capture_nodes() -> None:
    lm = models.Mock([b"Paris"], echo=True) + "x"
    one = lm.set("name", "value")
    listed = one.set("items", ["a", "b"])
    removed = listed.remove("name")
    path = _node(removed).path()
    assert [(n.input.kind, n.input.value) for n in path[1:]] == [
        (NodeKind.CAPTURE_SET, "name"),
        (NodeKind.CAPTURE_SET, "items"),
        (NodeKind.CAPTURE_REMOVE, "name"),
    ]
    assert path[1].entries == (Capture("name", "value"),)
    assert path[2].entries == (
        Capture("items", "", is_list=True, removed=True),
        Capture("items", "a", is_list=True),
        Capture("items", "b", is_list=True),
    )
    assert path[3].entries == (Capture("name", "", removed=True),)
    assert removed.captures == {"items": ["a", "b"]}


def test_empty_text_makes_no_node() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    assert (lm + "").trace is None
    base = lm + "A"
    same = base + ""
    assert same.trace is base.trace
    assert _kinds(same.trace) == [NodeKind.TEXT]


# -- failures and runs ------------------------------------------------------------------------


def test_a_failed_add_leaves_the_trace_unchanged() -> None:
    @guidance
    def two_steps(lm):  # type: ignore[no-untyped-def]
        lm += "First=" + select(["Paris", "Rome"], name="first")
        lm += lark(NEVER_COMPLETES)
        return lm

    base = models.Mock([b"Paris"], echo=True) + "Q="
    node = base.trace
    path = _node(base).path()
    with pytest.raises(GenerationError):
        base + lark(NEVER_COMPLETES)
    with pytest.raises(GenerationError):
        base + two_steps()
    assert base.trace is node
    assert all(a is b for a, b in zip(_node(base).path(), path, strict=True))
    assert base.usage == Usage()  # the failed generations cost nothing here
    # The next step still hangs off the same node.
    assert _node(base + "more").parent is node


def test_a_run_groups_its_nodes_and_ends_done() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    outside = lm + "before"
    with rudder.run("quiz") as run:
        assert active_run() is run
        assert run.status is RunStatus.RUNNING
        assert run.started_at is not None
        inside = outside + "Q=" + gen("a", max_tokens=3)
    after = inside + "after"
    assert run.name == "quiz"
    assert run.status is RunStatus.DONE
    assert run.error is None
    assert run.finished_at is not None
    assert run.started_at <= run.finished_at
    assert active_run() is default_run()
    assert default_run().status is RunStatus.RUNNING  # the default run never ends
    assert default_run().id != run.id
    run_ids = [n.run_id for n in _node(after).path()]
    assert run_ids == [default_run().id, run.id, run.id, default_run().id]


def test_nested_runs_restore_the_outer_run() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    with rudder.run("outer") as outer:
        lm += "a"
        with rudder.run("inner") as inner:
            lm += "b"
        lm += "c"
    assert [n.run_id for n in _node(lm).path()] == [outer.id, inner.id, outer.id]
    assert inner.status is outer.status is RunStatus.DONE


def test_a_failing_run_records_the_error_and_reraises() -> None:
    base = models.Mock([b"Paris"], echo=True) + "Q="
    with pytest.raises(GenerationError) as raised, rudder.run("fails") as run:
        base + lark(NEVER_COMPLETES)
    assert run.status is RunStatus.ERROR
    assert run.error == f"GenerationError: {raised.value}"
    assert "cannot be completed" in run.error
    assert run.finished_at is not None

    with pytest.raises(ValueError, match="boom"), rudder.run() as plain:
        raise ValueError("boom")
    assert plain.status is RunStatus.ERROR
    assert plain.error == "ValueError: boom"


def test_a_run_is_entered_once() -> None:
    run = rudder.run("once")
    with run:
        pass
    with pytest.raises(RuntimeError, match="already entered"), run:
        pass
    assert run.status is RunStatus.DONE


def test_a_run_name_must_be_text() -> None:
    with pytest.raises(TypeError):
        rudder.run(42)  # type: ignore[arg-type]


# -- usage ------------------------------------------------------------------------------------


def test_usage_of_forced_and_generated_tokens_matches_independent_counts() -> None:
    lm = models.Mock([b"Paris"], echo=True) + "Say: "
    prompt = _prompt_ids(lm)
    calls = lm.engine.forward_calls
    out = lm + ("A long fixed prefix " + select(["Paris", "London"], name="city"))
    node = _node(out)
    usage = node.usage
    assert usage is not None
    tokens = _tokens(node)
    forced = sum(1 for t in tokens if t.prob is None)
    generated = sum(1 for t in tokens if t.prob is not None)
    assert forced > 10
    assert generated == 1
    assert usage.generations == 1
    assert usage.forced_tokens == forced
    assert usage.generated_tokens == generated
    assert usage.output_tokens == len(tokens) == forced + generated
    assert usage.token_reduction == forced / (forced + generated)
    assert usage.forward_passes == out.engine.forward_calls - calls
    assert usage.prompt_tokens == len(prompt)
    assert usage.backtracked_tokens == 0
    assert usage.healed_tokens == 0
    assert out.generation is not None
    assert usage.prompt_tokens == out.generation.prompt_tokens
    assert usage.cached_prompt_tokens == out.generation.cached_prompt_tokens
    assert usage.per_token_s == usage.total_s / usage.output_tokens
    assert usage.time_to_first_token_s is not None
    assert out.trace is not None
    assert out.usage == usage  # the only generation on the path


def test_backtracked_tokens_match_the_token_events(recorder: Recorder) -> None:
    lm = models.Mock([b"abcdefgh"], echo=True) + "Say="
    calls = lm.engine.forward_calls
    out = lm + gen("a", stop="cde")
    node = _node(out)
    usage = node.usage
    assert usage is not None
    steps = [(added, back) for n, added, back in recorder.steps if n is node]
    backtracked = sum(back for _, back in steps)
    produced = sum(len(added) for added, _ in steps)
    assert backtracked > 0
    assert usage.backtracked_tokens == backtracked
    assert produced - backtracked == len(_tokens(node)) == usage.output_tokens
    assert usage.forward_passes == out.engine.forward_calls - calls
    assert out["a"] == "ab"


def test_healed_tokens_are_counted_in_the_prompt() -> None:
    lm = models.Mock([b"http://www.example.com"], echo=True) + "Visit http:"
    prompt = _prompt_ids(lm)
    out = lm + gen("url", stop=" ", max_tokens=10)
    node = _node(out)
    usage = node.usage
    assert usage is not None
    assert usage.healed_tokens == 1
    assert node.healed_bytes == 1  # the ':' the generation re-made
    assert usage.prompt_tokens == len(prompt)  # the prompt as given, healed part included
    assert str(out) == "Visit http://www.example.com"


def test_run_usage_sums_its_generations_and_model_usage_sums_its_path() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    calls = lm.engine.forward_calls
    with rudder.run("sums") as run:
        first = lm + "Q=" + gen("a", max_tokens=3)
        second = first + " Again: " + select(["Paris", "Rome"], name="b")
        side = first + " Other: " + ("fixed " + gen("c", max_tokens=2))
        assert run.usage == (
            _node(first).usage + _node(second).usage + _node(side).usage  # type: ignore[operator]
        )
    runs_calls = lm.engine.forward_calls - calls
    u1, u2, u3 = (_node(m).usage for m in (first, second, side))
    assert u1 is not None
    assert u2 is not None
    assert u3 is not None
    # Field by field, against sums taken here.
    for name in (
        "generations",
        "prompt_tokens",
        "cached_prompt_tokens",
        "healed_tokens",
        "forward_passes",
        "forced_tokens",
        "generated_tokens",
        "backtracked_tokens",
    ):
        assert getattr(run.usage, name) == sum(getattr(u, name) for u in (u1, u2, u3)), name
        assert getattr(second.usage, name) == getattr(u1, name) + getattr(u2, name), name
    assert run.usage.generations == 3
    assert run.usage.forward_passes == runs_calls
    assert run.usage.total_s == pytest.approx(u1.total_s + u2.total_s + u3.total_s)
    assert run.usage.time_to_first_token_s == u1.time_to_first_token_s
    # A Model's usage covers its own path only: the side branch is not in it.
    assert second.usage == u1 + u2
    assert side.usage == u1 + u3
    assert first.usage == u1
    assert (second + "text").usage == second.usage  # text adds no usage
    tokens = [t for m in (first, second) for t in _tokens(_node(m))]
    assert second.usage.output_tokens == len(tokens)
    assert second.usage.forced_tokens == sum(1 for t in tokens if t.kind is TokenKind.FORCED)


def test_usage_addition_and_derived_figures() -> None:
    empty = Usage()
    assert empty.output_tokens == 0
    assert empty.token_reduction == 0.0
    assert empty.per_token_s is None
    forced_only = Usage(generations=1, forced_tokens=4, total_s=2.0)
    sampled = Usage(
        generations=1,
        prompt_tokens=3,
        generated_tokens=1,
        forward_passes=2,
        time_to_first_token_s=0.5,
        total_s=1.0,
    )
    total = forced_only + sampled
    assert total.generations == 2
    assert total.output_tokens == 5
    assert total.token_reduction == 4 / 5
    assert total.per_token_s == 3.0 / 5
    # The first generation that sampled a token gives the time to first token.
    assert total.time_to_first_token_s == 0.5
    assert (sampled + Usage(time_to_first_token_s=9.0)).time_to_first_token_s == 0.5
    assert empty + total == total
    data = total.as_dict()
    assert data["output_tokens"] == 5
    assert data["token_reduction"] == 4 / 5


# -- records ----------------------------------------------------------------------------------


def _assert_same_trace(loaded: TraceNode, original: TraceNode) -> None:
    pairs = list(zip(loaded.path(), original.path(), strict=True))
    for got, want in pairs:
        assert got.id == want.id
        assert (got.parent.id if got.parent else None) == (want.parent.id if want.parent else None)
        assert got.input == want.input
        assert got.entries == want.entries
        assert got.run_id == want.run_id
        assert got.echo == want.echo
        assert got.hidden == want.hidden
        assert got.healed_bytes == want.healed_bytes
        assert got.usage == want.usage
        assert got.created_at == want.created_at


def test_a_program_trace_round_trips_with_every_entry_kind() -> None:
    lm = models.Mock([b"Paris"], echo=True)
    with rudder.run("round trip"):
        with system():
            lm += "Be terse."
        with user():
            lm += "Capital?"
        with assistant():
            with block("answer", opening="[", closing="]"):
                lm += "A long fixed prefix " + gen("city", max_tokens=3)  # forced, then sampled
            lm += " " + capture(select(["yes", "no"]), "flags", list_append=True)
            lm += " " + capture(select(["yes", "no"]), "flags", list_append=True)
        lm = lm.set("tags", ["x", "y"]).set("gone", "soon").remove("gone")
        with rudder.hidden():
            lm += " secret"
        lm += " Visit http:"
        lm += gen("url", stop=" ", max_tokens=6)  # heals the ':'
    node = _node(lm)
    entries = [e for n in node.path() for e in n.entries]
    every_kind = (Text, Token, RoleOpener, RoleCloser, BlockMarker, Capture)
    # A generated token may be a Token subclass whose candidates are made when read.
    kinds = {next(kind for kind in every_kind if isinstance(e, kind)) for e in entries}
    assert kinds == set(every_kind)
    assert any(isinstance(e, Token) and e.top for e in entries)
    assert any(isinstance(e, Token) and e.kind is TokenKind.FORCED for e in entries)
    assert any(isinstance(e, Capture) and e.is_list and not e.removed for e in entries)
    assert any(isinstance(e, Capture) and e.removed and not e.is_list for e in entries)
    assert any(n.hidden for n in node.path())
    assert any(n.healed_bytes for n in node.path())

    text = dump_trace(node)
    loaded = load_trace(text)
    assert dump_trace(loaded) == text
    _assert_same_trace(loaded, node)
    assert loaded.total_usage() == lm.usage


def test_bytes_that_are_not_utf8_and_infinite_log_probs_round_trip() -> None:
    partial_euro = b"\xe2\x82"  # the first two bytes of "€": not UTF-8 on their own
    token = Token(
        7,
        partial_euro,
        TokenKind.GENERATED,
        prob=0.25,
        latency=0.125,
        top=(Candidate(7, partial_euro, 0.25, True), Candidate(9, b"\xff", 0.5, False)),
        top_allowed=(Candidate(7, partial_euro, 0.25, True), Candidate(3, b"\xac", 0.1, True)),
    )
    ok = (Candidate(8, b"ok", 1.0, True),)
    same_top = Token(8, b"ok", TokenKind.GENERATED, prob=1.0, top=ok, top_allowed=ok)
    # A token the model gave probability 0 whose candidates the grammar all refused.
    none_allowed = Token(
        10, b"\x80", TokenKind.GENERATED, prob=0.0, top=(Candidate(10, b"\x80", 0.0, False),)
    )
    forced = Token(11, "é".encode(), TokenKind.FORCED, special=True)
    entries = (
        token,
        same_top,
        none_allowed,
        forced,
        Capture("impossible", "\u20ac", log_prob=-math.inf),
        Capture("set", "v"),
    )
    root = TraceNode(None, NodeInput(NodeKind.TEXT, "start"), (Text("start"),), run_id="r1")
    node = TraceNode(
        root,
        NodeInput(NodeKind.GRAMMAR, "g"),
        entries,
        run_id="r1",
        echo=False,
        hidden=True,
        healed_bytes=2,
        usage=Usage(generations=1, generated_tokens=3, forced_tokens=1, total_s=0.1),
    )
    text = dump_trace(node)
    assert "-Infinity" in text
    loaded = load_trace(text)
    assert loaded.entries == entries
    loaded_token = loaded.entries[0]
    assert isinstance(loaded_token, Token)
    assert loaded_token.bytes == partial_euro
    assert [c.bytes for c in loaded_token.top] == [partial_euro, b"\xff"]
    assert [c.bytes for c in loaded_token.top_allowed] == [partial_euro, b"\xac"]
    loaded_capture = loaded.entries[4]
    assert isinstance(loaded_capture, Capture)
    assert loaded_capture.log_prob == -math.inf
    assert dump_trace(loaded) == text
    _assert_same_trace(loaded, node)


def test_load_trace_rejects_a_broken_path() -> None:
    root = TraceNode(None, NodeInput(NodeKind.TEXT, "a"), (Text("a"),), run_id="r")
    child = TraceNode(root, NodeInput(NodeKind.TEXT, "b"), (Text("b"),), run_id="r")
    text = dump_trace(child).replace(f'"parent_id":{root.id}', '"parent_id":null')
    with pytest.raises(ValueError, match="not one path"):
        load_trace(text)
    with pytest.raises(ValueError, match="no nodes"):
        load_trace('{"format":"rudder-trace","version":1,"nodes":[]}')


# -- the system monitor -------------------------------------------------------------------------


def test_a_run_monitors_the_machine_while_it_generates(recorder: Recorder) -> None:
    rudder.settings.monitor = True
    seen_inside: list[bool] = []

    @guidance
    def two_generations(lm):  # type: ignore[no-untyped-def]
        lm += "A=" + gen("a", max_tokens=2)
        seen_inside.append(bool(_monitor_threads()))
        lm += " B=" + gen("b", max_tokens=2)
        return lm

    lm = models.Mock([b"Paris"], echo=True)
    assert _monitor_threads() == []
    with rudder.run("monitored") as run:
        lm += "Text only. "
        assert not run.monitoring  # the monitor starts with the first generation
        assert _monitor_threads() == []
        lm += two_generations()
        assert run.monitoring
        assert len(_monitor_threads()) == 1
    assert seen_inside == [True]
    assert not run.monitoring
    assert _monitor_threads() == []
    samples = run.samples
    assert len(samples) >= 1  # a last sample is taken when the monitor stops
    gpu = _nvml_finds_a_gpu()
    for sample in samples:
        _check_sample(sample, gpu=gpu)
    # Listeners received the same samples, for this run.
    assert [s for r, s in recorder.samples if r is run] == list(samples)


def test_no_monitor_runs_when_the_setting_is_off() -> None:
    rudder.settings.monitor = False
    lm = models.Mock([b"Paris"])
    with rudder.run("quiet") as run:
        lm += "Q=" + gen("a", max_tokens=3)
        assert not run.monitoring
        assert _monitor_threads() == []
    assert run.samples == ()


def test_work_outside_any_run_is_not_monitored() -> None:
    rudder.settings.monitor = True
    seen_inside: list[bool] = []

    @guidance
    def two_answers(lm):  # type: ignore[no-untyped-def]
        lm += "Q=" + gen("a", max_tokens=2)
        seen_inside.append(bool(_monitor_threads()))
        return lm + "R=" + gen("b", max_tokens=2)

    lm = models.Mock([b"Paris"]) + two_answers()
    assert lm.trace is not None
    assert lm.trace.run_id == default_run().id
    assert seen_inside == [False]
    assert not default_run().monitoring
    assert default_run().samples == ()


def test_a_run_keeps_at_most_monitor_max_samples(recorder: Recorder) -> None:
    rudder.settings.monitor_interval_s = 0.05
    rudder.settings.monitor_max_samples = 2
    recorder.samples_wanted = 3
    lm = models.Mock([b"Paris"])
    with rudder.run("bounded") as run:
        lm += "Q=" + gen("a", max_tokens=3)
        assert recorder.sampled.wait(timeout=30), "the monitor took fewer than 3 samples"
    taken = [s for r, s in recorder.samples if r is run]
    assert len(taken) >= 4  # three while running, one when stopped
    assert run.samples == tuple(taken[-2:])


def test_a_system_monitor_keeps_a_bounded_buffer() -> None:
    taken: list[SystemSample] = []
    enough = threading.Event()

    def on_sample(sample: SystemSample) -> None:
        taken.append(sample)
        if len(taken) >= 3:
            enough.set()

    monitor = SystemMonitor(0.05, 2, on_sample)
    assert not monitor.running
    monitor.start()
    try:
        assert monitor.running
        assert enough.wait(timeout=30), "the monitor took fewer than 3 samples"
    finally:
        monitor.stop()
    assert not monitor.running
    assert len(taken) >= 4  # the last one is taken at stop
    assert len(monitor.samples) == 2
    assert list(monitor.samples) == taken[-2:]
    gpu = _nvml_finds_a_gpu()
    for sample in taken:
        _check_sample(sample, gpu=gpu)
    assert _monitor_threads() == []


def test_every_interval_the_settings_accept_keeps_the_monitor_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures: list[tuple[str, str]] = []

    def hook(args: Any) -> None:
        failures.append((args.thread.name if args.thread else "", repr(args.exc_value)))

    monkeypatch.setattr(threading, "excepthook", hook)
    lm = models.Mock([b"Paris"])
    for interval in (3600.0, 1e12, 1e300, math.inf):
        try:
            rudder.settings.monitor_interval_s = interval
        except SettingsError:
            continue  # rejected: no monitor will run with it
        with rudder.run("long interval") as run:
            lm += "Q=" + gen("a", max_tokens=2)
            assert run.monitoring, f"the monitor thread died with interval {interval}"
        assert failures == [], f"interval {interval}"
        assert len(run.samples) >= 1


# -- settings, echo and hidden ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("echo", 1),
        ("echo", "yes"),
        ("echo", None),
        ("monitor", 0),
        ("monitor", "on"),
        ("monitor_interval_s", 0.01),
        ("monitor_interval_s", 0),
        ("monitor_interval_s", -1.0),
        ("monitor_interval_s", math.nan),
        ("monitor_interval_s", True),
        ("monitor_interval_s", "1"),
        ("monitor_max_samples", 0),
        ("monitor_max_samples", -3),
        ("monitor_max_samples", 2.0),
        ("monitor_max_samples", True),
        ("monitor_max_samples", "10"),
        ("view", "browser"),
        ("view", None),
        ("view", True),
    ],
)
def test_bad_settings_are_refused_and_keep_the_old_value(name: str, bad: object) -> None:
    before = getattr(rudder.settings, name)
    with pytest.raises(SettingsError, match=name):
        setattr(rudder.settings, name, bad)
    assert getattr(rudder.settings, name) == before


def test_good_settings_are_taken() -> None:
    settings = rudder.settings
    settings.echo = False
    settings.monitor = False
    settings.monitor_interval_s = 1
    settings.monitor_max_samples = 3
    assert settings.echo is False
    assert settings.monitor is False
    assert settings.monitor_interval_s == 1.0
    assert isinstance(settings.monitor_interval_s, float)
    assert settings.monitor_max_samples == 3
    settings.monitor_interval_s = 0.05  # the smallest allowed
    assert settings.monitor_interval_s == 0.05
    for view in ("none", "widget", "auto"):
        settings.view = view
        assert settings.view == view
    with pytest.raises(AttributeError):
        settings.unknown = 1  # type: ignore[attr-defined]


def test_echo_follows_the_model_and_the_settings(recorder: Recorder) -> None:
    shown = models.Mock([b"Paris"], echo=True) + "shown"
    assert _node(shown).echo is True
    quiet = models.Mock([b"Paris"], echo=False) + "quiet" + gen("a", max_tokens=2)
    assert [n.echo for n in _node(quiet).path()] == [False, False]
    silenced = models.Mock([b"Paris"], echo=True)
    silenced.echo = False
    assert _node(silenced + "x").echo is False
    rudder.settings.echo = False
    off = shown + "off" + gen("b", max_tokens=2)
    assert [n.echo for n in _node(off).path()] == [True, False, False]
    rudder.settings.echo = True
    assert _node(off + "on").echo is True
    # Views hear only of echoed nodes.
    echoed = {n.id for n in recorder.added}
    assert _node(shown).id in echoed
    assert echoed.isdisjoint(n.id for n in (*_node(quiet).path(), *_node(off).path()[1:]))
    assert all(node.echo for node, _, _ in recorder.steps)


def test_hidden_nodes_are_marked_and_the_model_still_sees_them() -> None:
    lm = models.Mock([b"Paris"], echo=True) + "Context: "
    with rudder.hidden():
        lm += "a long secret document"
        lm += " Q=" + gen("a", max_tokens=2)
    lm += " visible"
    path = _node(lm).path()
    assert [n.hidden for n in path] == [False, True, True, False]
    assert "a long secret document" in str(lm)
    assert path[1].entries == (Text("a long secret document"),)
    # Views get the hidden text's size, not the text.
    record = node_record(path[1], for_view=True)
    assert record.entries == []
    assert record.input.value == ""
    assert record.hidden_chars == len("a long secret document")
    assert node_record(path[1]).entries != []


def test_view_setting_comes_from_the_environment() -> None:
    import subprocess
    import sys

    def view_with(value: str) -> subprocess.CompletedProcess[str]:
        code = "import rudder; print(rudder.settings.view)"
        env = {"RUDDER_VIEW": value, "PATH": ""}
        return subprocess.run(
            [sys.executable, "-W", "default", "-c", code],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )

    assert view_with("none").stdout.strip() == "none"
    assert view_with(" Widget ").stdout.strip() == "widget"
    bad = view_with("browser")
    assert bad.stdout.strip() == "auto"
    assert "RUDDER_VIEW='browser' is not a view" in bad.stderr


def test_a_cell_run_starts_at_its_first_node_and_holds_in_every_thread() -> None:
    from rudder.trace._run import Run, active_run, set_cell_run

    cell = Run("cell 7")
    set_cell_run(cell)
    try:
        assert cell.started_at is None
        seen: list[Run] = []
        worker = threading.Thread(target=lambda: seen.append(active_run()))
        worker.start()
        worker.join()
        assert seen == [cell]
        assert cell.started_at is not None
        with rudder.run("inner") as inner:
            assert active_run() is inner  # an explicit run inside the cell wins
        lm = models.Mock([b"Paris"], echo=True) + "x"
        assert _node(lm).run_id == cell.id
    finally:
        set_cell_run(None)
    assert active_run() is default_run()
