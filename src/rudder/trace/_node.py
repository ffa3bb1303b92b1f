"""Trace nodes: every ``lm + x`` is one, and its parent is the node of ``lm``.

The trace of a Model is the path from the root to its node; Models branched from one parent
share the nodes before the branch. Nodes are held only by Models and their children (there
is no registry), so a trace lives exactly as long as some Model still needs it.
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rudder.trace._usage import Usage

if TYPE_CHECKING:
    from rudder._state import Entry


class NodeKind(str, enum.Enum):
    """What was added to a Model."""

    TEXT = "text"  # program text: lm + "..."
    GRAMMAR = "grammar"  # a generation: lm + gen(...), select(...), json(...) ...
    ROLE_OPEN = "role_open"  # with user(): ...
    ROLE_CLOSE = "role_close"
    BLOCK_OPEN = "block_open"  # with block(...): ...
    BLOCK_CLOSE = "block_close"
    CALL = "call"  # a stateful @guidance function starts here
    CAPTURE_SET = "capture_set"  # lm.set(name, value)
    CAPTURE_REMOVE = "capture_remove"  # lm.remove(name)


@dataclass(frozen=True, slots=True)
class NodeInput:
    """The input of a node: its kind and one text (the text itself, the grammar's
    description, the role, the block, capture or function name)."""

    kind: NodeKind
    value: str = ""


@dataclass(frozen=True, slots=True)
class ExploredFrom:
    """Where an explored branch left the original: the generation's node, the index of the
    output token replaced, and the token chosen there instead."""

    node_id: int
    token_index: int
    token_id: int


_node_ids = itertools.count(1)
_node_ids_lock = threading.Lock()


def take_ids_above(node_id: int) -> None:
    """New nodes of this process get ids above ``node_id``: a branch added to a stored run
    (``rudder view --model``) must not take an id that run's nodes have."""
    global _node_ids
    with _node_ids_lock:
        _node_ids = itertools.count(max(next(_node_ids), node_id + 1))


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A node's fields at one moment, its parent by id (see :meth:`TraceNode.snapshot`)."""

    id: int
    parent_id: int | None
    input: NodeInput
    entries: tuple[Entry, ...]
    run_id: str
    echo: bool
    hidden: bool
    healed_bytes: int
    usage: Usage | None
    created_at: float
    explored: ExploredFrom | None = None


class TraceNode:
    """One step of a program.

    ``entries`` are the state entries the step added (for a generation: its tokens, then its
    captures); ``healed_bytes`` is how many bytes it first took back from the end of its
    parent's state (token healing re-makes them). ``usage`` is set for generations.
    ``echo`` and ``hidden`` are what views do with it: show it or not, and show its text or
    only its size. A generation's node is created when it starts and completed when it ends.
    """

    __slots__ = (
        "__weakref__",
        "_total",
        "created_at",
        "echo",
        "entries",
        "explored",
        "healed_bytes",
        "hidden",
        "id",
        "input",
        "model",
        "parent",
        "run_id",
        "usage",
    )

    def __init__(
        self,
        parent: TraceNode | None,
        node_input: NodeInput,
        entries: tuple[Entry, ...],
        *,
        run_id: str,
        echo: bool = True,
        hidden: bool = False,
        healed_bytes: int = 0,
        usage: Usage | None = None,
        node_id: int | None = None,
        created_at: float | None = None,
        model: str | None = None,
        explored: ExploredFrom | None = None,
    ) -> None:
        self.id = next(_node_ids) if node_id is None else node_id
        #: Set on a generation explored from another one's token (``rudder.explore``).
        self.explored = explored
        #: The model a generation ran on (its engine's ``model_name``; None for other steps).
        self.model = model
        self.parent = parent
        self.input = node_input
        self.entries = entries
        self.run_id = run_id
        self.echo = echo
        self.hidden = hidden
        self.healed_bytes = healed_bytes
        self.usage = usage
        self.created_at = time.time() if created_at is None else created_at
        self._total: Usage | None = None

    def path(self) -> list[TraceNode]:
        """The nodes from the root to this one."""
        nodes: list[TraceNode] = []
        node: TraceNode | None = self
        while node is not None:
            nodes.append(node)
            node = node.parent
        nodes.reverse()
        return nodes

    def total_usage(self) -> Usage:
        """The usage of every generation on the path to this node."""
        if self._total is not None:
            return self._total
        # Walk up to the nearest node that knows its total, then fold down (no recursion:
        # paths may be long).
        pending: list[TraceNode] = []
        node: TraceNode | None = self
        total = Usage()
        while node is not None:
            if node._total is not None:
                total = node._total
                break
            pending.append(node)
            node = node.parent
        for node in reversed(pending):
            if node.usage is not None:
                total = total + node.usage
            node._total = total
        return total

    def snapshot(self) -> NodeSnapshot:
        """What the node holds now, without the node: a record made from it later does not
        keep the trace (the parent chain) alive."""
        return NodeSnapshot(
            id=self.id,
            parent_id=self.parent.id if self.parent is not None else None,
            input=self.input,
            entries=self.entries,
            run_id=self.run_id,
            echo=self.echo,
            hidden=self.hidden,
            healed_bytes=self.healed_bytes,
            usage=self.usage,
            created_at=self.created_at,
            explored=self.explored,
        )

    def complete(self, entries: tuple[Entry, ...], healed_bytes: int, usage: Usage) -> None:
        """Record what a generation produced (its node was created when it started)."""
        self.entries = entries
        self.healed_bytes = healed_bytes
        self.usage = usage
        self._total = None

    def fail(self, usage: Usage) -> None:
        """Record what a failed or interrupted generation cost (it added no entries)."""
        self.usage = usage
        self._total = None

    def __repr__(self) -> str:
        value = self.input.value
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"<TraceNode {self.id} {self.input.kind.value} {shown!r}>"
