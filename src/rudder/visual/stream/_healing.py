"""Token healing as views show it: which bytes of which nodes a healing node takes back.

A generation that heals re-makes the last ``healed`` bytes of the text before it. Views show
that by taking those bytes off the end of the text the path shows before the generation:
model text only (labels and placeholders stay), the nearest node first, each node as earlier
nodes of the path had already cut it. :func:`healing_cuts` is that rule, in one place: the
publisher applies it to the trace when a healing node is sent, and the stream carries the
result as ``cuts`` (``[node id, bytes]`` pairs) that views only apply. ``RunView`` applies
it to streams of the first form, which carried the healed bytes alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from rudder._state import Text, Token

if TYPE_CHECKING:
    from rudder.trace._node import TraceNode

#: What the rule needs of each node before a healing one, the nearest first: its id, the
#: bytes of model text a view shows of it, and the cuts its own healing made (node id, bytes).
Ancestor = tuple[int, int, Iterable[tuple[int, int]]]


def healing_cuts(healed: int, ancestors: Iterable[Ancestor]) -> list[tuple[int, int]]:
    """The cuts that take ``healed`` bytes off the end of the text shown before a node:
    ``(node id, bytes)``, nearest node first. ``ancestors`` is read only as far as needed."""
    cuts: list[tuple[int, int]] = []
    received: dict[int, int] = {}  # bytes the nodes passed so far took off earlier ones
    left = healed
    if left <= 0:
        return cuts
    for node_id, size, own in ancestors:
        take = min(left, max(0, size - received.get(node_id, 0)))
        if take:
            cuts.append((node_id, take))
            left -= take
        if left <= 0:
            break  # before the next ancestor is read
        for target, count in own:
            received[target] = received.get(target, 0) + count
    return cuts


def shown_bytes(node: TraceNode, elided: bool) -> int:
    """Bytes of model text a view shows of ``node`` (none when its text is left out)."""
    if elided:
        return 0
    return sum(
        len(e.text.encode()) if isinstance(e, Text) else len(e.bytes)
        for e in node.entries
        if isinstance(e, Text | Token)
    )


class TraceCuts:
    """The cuts of trace nodes as one stream shows them, remembered per node (the latest
    ``limit``); ``elided(node)`` says whether the stream leaves a node's text out."""

    def __init__(self, elided: Callable[[TraceNode], bool], limit: int) -> None:
        self._elided = elided
        self._limit = limit
        self._cuts: dict[int, list[tuple[int, int]]] = {}

    def of(self, node: TraceNode, healed: int | None = None) -> list[tuple[int, int]]:
        """``node``'s cuts, for ``healed`` bytes (default: the bytes the node healed)."""
        known = self._cuts.get(node.id)
        if known is not None and healed is None:
            return known
        count = node.healed_bytes if healed is None else healed
        cuts = healing_cuts(count, self._ancestors(node)) if count else []
        self.remember(node.id, cuts)
        return cuts

    def remember(self, node_id: int, cuts: list[tuple[int, int]]) -> None:
        if len(self._cuts) >= self._limit:
            for old in list(self._cuts)[: self._limit // 2]:
                del self._cuts[old]
        self._cuts[node_id] = cuts

    def _ancestors(self, node: TraceNode) -> Iterator[Ancestor]:
        current = node.parent
        while current is not None:
            yield current.id, shown_bytes(current, self._elided(current)), self.of(current)
            current = current.parent
