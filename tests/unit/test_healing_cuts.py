"""Token healing worked out once: the publisher sends what a healing node takes off the
nodes before it (``cuts``), views apply it, and they show what they showed when each view
worked the cut out itself (the runs recorded then, under tests/fixtures/wire_v1)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.wire_v1 import make_wire_v1
from tests.stream_checks import folded

import rudder
from rudder._shown_text import visible
from rudder.engine import _loop
from rudder.models import Model
from rudder.visual import NodeAdded, TokensAppended, get_bus
from rudder.visual.stream import _publisher
from rudder.visual.stream._healing import Ancestor, healing_cuts
from rudder.visual.terminal._terminal import TerminalView
from rudder.visual.terminal._terminal_output import AppendOutput

RECORDED: dict[str, Any] = json.loads(
    (Path(make_wire_v1.__file__).with_name("streams.json")).read_text(encoding="utf-8")
)
PROGRAMS: dict[str, tuple[Callable[[], Model], float, int]] = {
    **make_wire_v1._web_programs(),
    "hostile": (make_wire_v1.hostile, float("inf"), 3),
    "healing_markers": (make_wire_v1.healing_markers, 0.0, 32),
    "explored": (make_wire_v1.explored, 0.0, 32),
}
HEALING = {"chat", "healing_two_nodes", "utf8", "healing_markers"}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_views_show_the_text_they_showed_before(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    program, batch_s, batch_tokens = PROGRAMS[name]
    # The recordings were made when the interpreter saw the prompt's last 64 tokens however
    # they were tokenized (and so healed less or more): the same generations again.
    monkeypatch.setattr(_loop, "_written_alike", lambda tokens, tokenizer: True)
    monkeypatch.setattr(_loop, "HEALING_WINDOW", 64)
    monkeypatch.setattr(_publisher, "BATCH_S", batch_s)
    monkeypatch.setattr(_publisher, "BATCH_TOKENS", batch_tokens)
    with rudder.run(name) as run:
        program()
    messages = get_bus().messages(run.id)
    view = folded(run.id, messages)
    before = RECORDED[name]["view"]
    assert view.text() == before["text"]
    assert [view.text(i) for i in view.nodes] == list(before["node_texts"].values())
    carriers = [m for m in messages if isinstance(m, NodeAdded | TokensAppended)]
    assert all(m.cuts is not None for m in carriers), "a node or batch without its cuts"
    cuts = [cut for m in carriers for cut in m.cuts or ()]
    assert bool(cuts) == (name in HEALING)
    healed = sum(m.healed_bytes for m in carriers if isinstance(m, TokensAppended))
    assert sum(cut.bytes for cut in cuts) == healed


def _ancestors(*nodes: Ancestor, read: list[int]) -> Iterator[Ancestor]:
    for node in nodes:
        read.append(node[0])
        yield node


def test_a_cut_takes_the_nearest_shown_bytes_first_and_reads_no_further() -> None:
    read: list[int] = []
    nodes = _ancestors((3, 2, ()), (2, 0, ()), (1, 10, ()), (0, 10, ()), read=read)
    assert healing_cuts(5, nodes) == [(3, 2), (1, 3)]  # node 2 shows no text (hidden)
    assert read == [3, 2, 1]


def test_a_cut_counts_what_nodes_in_between_already_took() -> None:
    """Node 2 healed 4 bytes of node 1 (6 of 10 left): a later cut of 8 takes node 2's 3,
    then 5 of node 1's 6."""
    cuts = healing_cuts(8, iter([(2, 3, [(1, 4)]), (1, 10, ()), (0, 10, ())]))
    assert cuts == [(2, 3), (1, 5)]


def test_a_cut_beyond_the_text_takes_what_there_is() -> None:
    assert healing_cuts(9, iter([(1, 2, ()), (0, 3, ())])) == [(1, 2), (0, 3)]
    assert healing_cuts(0, iter([(1, 2, ())])) == []


@pytest.mark.parametrize("name", ["healing_markers", "utf8", "healing_two_nodes"])
def test_the_terminal_writes_healed_text_once(name: str) -> None:
    """The terminal wrote the text before a healing generation already: it skips the bytes
    the cuts say the generation re-makes, and ends with the text every view shows."""
    program, _, _ = PROGRAMS[name]
    stream = io.StringIO()
    view = TerminalView(AppendOutput(stream))
    try:
        with rudder.run(name) as run:
            view.follow(run.id)
            program()
        view.wait_idle()
    finally:
        view.close()
    text = RECORDED[name]["view"]["text"]
    written = stream.getvalue().splitlines()
    assert visible(text) in written[:-1], written
