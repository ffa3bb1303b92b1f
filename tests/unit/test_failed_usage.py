"""A generation stopped by Ctrl-C or by a failure still counts what it produced: in its trace
node, in the run's usage and in the figures the views get (the Model stays unchanged)."""

from __future__ import annotations

import _thread
from collections.abc import Iterator

import pytest

import rudder
from rudder import gen, models
from rudder.trace._events import TraceListener, add_listener, remove_listener
from rudder.trace._node import TraceNode
from rudder.trace._run import RunStatus
from rudder.trace._usage import Usage
from rudder.visual.stream._bus import Bus
from rudder.visual.stream._protocol import Metrics, Status
from rudder.visual.stream._publisher import Publisher

#: Tokens the Mock writes before the interrupt arrives.
BEFORE_INTERRUPT = 6


class _CtrlC(TraceListener):
    """Presses Ctrl-C (interrupts the main thread) once a generation has made some tokens,
    and keeps the nodes that failed."""

    def __init__(self) -> None:
        self.tokens = 0
        self.pressed = False
        self.failed: list[tuple[TraceNode, str]] = []

    def tokens_changed(
        self, node: TraceNode, added: list[object], backtracked: int, healed_bytes: int
    ) -> None:
        self.tokens += len(added)
        if self.tokens >= BEFORE_INTERRUPT and not self.pressed:
            self.pressed = True
            _thread.interrupt_main()

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        if error is not None:
            self.failed.append((node, error))


@pytest.fixture
def ctrl_c() -> Iterator[tuple[_CtrlC, Bus]]:
    listener, bus = _CtrlC(), Bus()
    publisher = Publisher(bus)
    add_listener(listener)
    add_listener(publisher)
    yield listener, bus
    remove_listener(publisher)
    remove_listener(listener)


def test_an_interrupted_generation_counts_the_tokens_it_made(
    ctrl_c: tuple[_CtrlC, Bus],
) -> None:
    listener, bus = ctrl_c
    lm = models.Mock([b"abc" * 400], echo=True) + "Go: "
    with pytest.raises(KeyboardInterrupt), rudder.run("interrupted") as run:
        lm + gen("x", max_tokens=1000)
    ((node, error),) = listener.failed
    assert error.startswith("KeyboardInterrupt")
    usage = node.usage
    assert usage is not None
    assert usage.generations == 1
    tokenizer = lm.engine.tokenizer
    start = [tokenizer.bos_token_id] if tokenizer.add_bos else []  # the Mock starts with <s>
    assert usage.prompt_tokens == len(start + tokenizer.encode("Go: ", False))
    assert BEFORE_INTERRUPT <= usage.output_tokens < 1000
    assert usage.forward_passes >= usage.generated_tokens > 0
    assert usage.total_s > 0
    # The run and its figures count it; the Model is as it was.
    assert run.status is RunStatus.ERROR
    assert run.usage == usage
    assert lm.usage == Usage()
    assert str(lm) == "Go: "
    messages = bus.messages(run.id)
    (metrics,) = [m for m in messages if isinstance(m, Metrics) and m.node_id == node.id]
    assert metrics.usage.output_tokens == usage.output_tokens
    assert metrics.usage.prompt_tokens == usage.prompt_tokens
    # The figures come before the error status that ends the node.
    (status,) = [m for m in messages if isinstance(m, Status) and m.state == "error"]
    assert messages.index(metrics) < messages.index(status)


def test_a_failed_generation_counts_its_prompt_and_the_run_goes_on_counting() -> None:
    lm = models.Mock([b"Paris"]) + "Q="
    with rudder.run("mixed") as run:
        ok = lm + gen("a", max_tokens=3)
        with pytest.raises(rudder.errors.GenerationError):
            lm + rudder.lark('start: a\na: a "x"\n')
    assert ok.trace is not None
    assert ok.trace.usage is not None
    # The failed one made no token, but its prompt was read.
    assert run.usage.generations == 2
    assert run.usage.prompt_tokens == 2 * ok.trace.usage.prompt_tokens
    assert run.usage.output_tokens == ok.trace.usage.output_tokens
