"""What it takes to run a generation again: its parent Model and its grammar.

Every generation's node is remembered here, weakly: an entry lives exactly as long as its
node, and a node as long as some Model (or a child node) still holds it, so this keeps no
trace alive that nobody else needs. While it lives it holds the parent Model, and with it
the engine, so a generation a program still holds can be explored (:mod:`rudder._explore`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudder._grammar._nodes import GrammarNode
    from rudder.models._model import Model
    from rudder.trace._node import TraceNode


@dataclass(frozen=True, slots=True)
class Remembered:
    """The Model a generation started from, and the grammar it ran."""

    parent: Model
    grammar: GrammarNode


_lock = threading.Lock()
_remembered: weakref.WeakKeyDictionary[TraceNode, Remembered] = weakref.WeakKeyDictionary()
_nodes: weakref.WeakValueDictionary[int, TraceNode] = weakref.WeakValueDictionary()


def remember_generation(node: TraceNode, parent: Model, grammar: GrammarNode) -> None:
    """Keep what ``node``'s generation needs to run again, for as long as the node lives."""
    with _lock:
        _remembered[node] = Remembered(parent, grammar)
        _nodes[node.id] = node


def remembered_of(node: TraceNode) -> Remembered | None:
    """How ``node``'s generation ran (None: not a generation of this process)."""
    with _lock:
        return _remembered.get(node)


def node_by_id(node_id: int) -> TraceNode | None:
    """The generation node of that id, while some Model still holds it."""
    with _lock:
        return _nodes.get(node_id)
