"""What a view knows of a run, rebuilt from messages alone.

``RunView.apply(message)`` folds one message in. Views (the terminal view, tests) use it to
stay in step with the stream, and two views that received the same stream, however they
attached, end with equal states.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rudder._shown_text import decode_run

if TYPE_CHECKING:
    from rudder.trace._monitor import SystemSample
    from rudder.trace._records import (
        CaptureRecord,
        NodeRecord,
        RunRecord,
        TokenRecord,
    )
    from rudder.trace._usage import Usage
    from rudder.visual.stream._protocol import Cut, ServerMessage
    from rudder.visual.stream._token_table import TableToken


@dataclass
class NodeView:
    record: NodeRecord
    tokens: list[TokenRecord] = field(default_factory=list)  # streamed while generating
    healed_bytes: int = 0
    #: What its healing took off the nodes before it: (node id, bytes), as the stream said.
    cuts: list[tuple[int, int]] = field(default_factory=list)
    captures: list[CaptureRecord] = field(default_factory=list)
    usage: Usage | None = None
    state: str = ""  # "generating", "idle" or "error" for generations
    error: str = ""
    hidden_chars: int | None = None  # a hidden generation's size, known when it ends


#: Nodes a live view (terminal, widget, legacy display) keeps of a run at most.
LIVE_VIEW_NODES = 2_000
#: System samples a view keeps (the latest; the client keeps as many).
KEPT_SAMPLES = 120


@dataclass
class RunView:
    """One run's state: its record, nodes in arrival order, usage and samples.

    With ``max_nodes`` (a view of a run that may never end: the process's default run, a
    notebook cell that loops) the oldest nodes are forgotten when there are more, except
    those on the path to the last node and a running generation; a path then starts at the
    oldest node still held. Only the latest ``KEPT_SAMPLES`` system samples are kept."""

    run_id: str
    max_nodes: int | None = None
    run: RunRecord | None = None
    nodes: dict[int, NodeView] = field(default_factory=dict)
    usage: Usage | None = None
    samples: list[SystemSample] = field(default_factory=list)
    last_seq: int = -1
    gaps: int = 0  # times a message arrived after a hole in the sequence
    #: Set when a hole was seen: ask for a replay after this seq (then it clears).
    wants_replay_after: int | None = None
    #: Messages about nodes this view never received (their node_added was dropped from
    #: a bounded history before this view attached).
    unknown_nodes: int = 0
    #: The run's token table: the ids and bytes of the tokens its stream named so far.
    table: dict[int, TableToken] = field(default_factory=dict)

    def apply(self, message: ServerMessage) -> bool:
        """Fold ``message`` in; False when it was not (already held, or after a hole:
        messages are folded strictly in order, the missing ones come from a replay)."""
        if message.run_id != self.run_id:
            raise ValueError(f"a message of run {message.run_id} given to run {self.run_id}")
        if message.type == "reset":
            self.__init__(self.run_id, self.max_nodes)  # type: ignore[misc]
            self.last_seq = message.first_seq - 1
            self.table.update((entry.id, entry) for entry in message.table)
            return True
        if message.seq <= self.last_seq:
            return False  # already held (a replay overlapping what arrived live)
        if message.seq != self.last_seq + 1:
            if self.wants_replay_after is None:
                self.gaps += 1
                self.wants_replay_after = self.last_seq
            return False
        self.wants_replay_after = None
        self.last_seq = message.seq
        self._fold(message)
        return True

    def _node(self, node_id: int) -> NodeView | None:
        node = self.nodes.get(node_id)
        if node is None:
            self.unknown_nodes += 1
        return node

    def _fold(self, message: ServerMessage) -> None:
        if message.type in ("run_started", "run_finished"):
            self.run = message.run
            self.usage = message.run.usage
        elif message.type == "node_added":
            from rudder.visual.stream._token_table import read_node

            self.table.update((entry.id, entry) for entry in message.table)
            record = read_node(message.node, message.tokens, self.table)
            view = NodeView(record, usage=record.usage)
            self.nodes[record.id] = view
            view.healed_bytes = record.healed_bytes
            view.cuts = self._cuts(view, message.cuts, message.node.healed_bytes)
            if self.max_nodes is not None and len(self.nodes) > self.max_nodes:
                self._forget_old_nodes(self.max_nodes // 2)
        elif message.type == "tokens_appended":
            from rudder.visual.stream._token_table import read_tokens

            self.table.update((entry.id, entry) for entry in message.table)
            if node := self._node(message.node_id):
                node.healed_bytes += message.healed_bytes
                node.cuts.extend(self._cuts(node, message.cuts, message.healed_bytes))
                node.tokens.extend(read_tokens(message.tokens, self.table))
        elif message.type == "backtrack":
            if node := self._node(message.node_id):
                del node.tokens[-message.tokens :]
        elif message.type == "capture":
            if node := self._node(message.node_id):
                node.captures.append(message.capture)
        elif message.type == "metrics":
            self.samples.extend(message.samples)
            if len(self.samples) > 2 * KEPT_SAMPLES:
                del self.samples[:-KEPT_SAMPLES]
            if message.node_id is None:
                self.usage = message.usage
            elif node := self._node(message.node_id):
                node.usage = message.usage
                node.hidden_chars = message.hidden_chars
        elif message.type == "status" and message.node_id is not None:
            node = self._node(message.node_id)
            if node is not None:
                node.state = message.state
                node.error = message.message

    def _cuts(
        self, view: NodeView, cuts: list[Cut] | None, healed_bytes: int
    ) -> list[tuple[int, int]]:
        """The cuts a message gives; a stream of the first form gives the healed bytes
        alone, and this view works them out by the publisher's rule from what it holds."""
        if cuts is not None:
            return [(cut.node_id, cut.bytes) for cut in cuts]
        if not healed_bytes:
            return []
        from rudder.visual.stream._healing import healing_cuts

        ancestors = (
            (node.record.id, sum(p.size() for p in node_pieces(node)), node.cuts)
            for node in reversed(self.path(view.record.id)[:-1])
        )
        return healing_cuts(healed_bytes, ancestors)

    def _forget_old_nodes(self, keep: int) -> None:
        """Forget the oldest nodes until ``keep`` are left, but never those on the last
        node's path or a running generation (a run of many programs drops finished ones)."""
        needed = {view.record.id for view in self.path()}
        needed.update(i for i, view in self.nodes.items() if view.state == "generating")
        excess = len(self.nodes) - max(keep, len(needed))
        for node_id in [i for i in self.nodes if i not in needed][:excess]:
            del self.nodes[node_id]

    def path(self, node_id: int | None = None) -> list[NodeView]:
        """The nodes from the root to ``node_id`` (default: the last node), oldest first;
        a parent this view never received (or forgot) ends the walk."""
        if not self.nodes:
            return []
        # A node this view never received (or forgot) has no path it can show.
        current = self.nodes.get(node_id if node_id is not None else next(reversed(self.nodes)))
        path: list[NodeView] = []
        while current is not None:
            path.append(current)
            parent = current.record.parent_id
            current = self.nodes.get(parent) if parent is not None else None
        path.reverse()
        return path

    def pieces(self, node_id: int | None = None) -> list[Piece]:
        """What a view shows of the path to ``node_id``: fixed text, tokens, role labels,
        hidden placeholders, with the bytes token healing re-made taken off, and the text
        decoded per run (a character split over tokens is shown by the one that ends it)."""
        out: list[Piece] = []
        path = self.path(node_id)
        cut: dict[int, int] = {}
        for view in path:
            for target, count in view.cuts:
                cut[target] = cut.get(target, 0) + count
        for view in path:
            pieces = node_pieces(view)
            if cut.get(view.record.id):
                _cut_bytes(pieces, cut[view.record.id])
            out.extend(pieces)
        # A running generation's unfinished last character waits for its next token.
        return decoded(out, ends=not (path and path[-1].state == "generating"))

    def text(self, node_id: int | None = None) -> str:
        """The text of the path to ``node_id`` (default: the last node), as a view shows it:
        hidden nodes as ``[hidden: N characters]``, roles as ``<role>`` markers, nodes made
        with echo off not at all."""
        return "".join(piece.text() for piece in self.pieces(node_id))


@dataclass(frozen=True)
class Piece:
    """One visible part of a path: ``kind`` is text (fixed text), token, role_open,
    role_close or hidden; ``value`` its text, role name or hidden size. Text and tokens
    keep their exact bytes in ``data``; their ``value`` is what they show once their run is
    decoded (:func:`decoded`): before that, their own bytes decoded alone."""

    kind: str
    value: str
    token: TokenRecord | None = None
    data: bytes = b""

    def text(self) -> str:
        if self.kind == "role_open":
            return f"<{self.value}>"
        if self.kind == "role_close":
            return f"</{self.value}>"
        return self.value

    def size(self) -> int:
        """Bytes of model text (labels and placeholders have none)."""
        return len(self.data)

    @property
    def is_text(self) -> bool:
        """Program or model text (what runs of text are made of), not a label."""
        return self.kind in ("text", "token")


def token_bytes(token: TokenRecord) -> bytes:
    """A token's own bytes, exactly."""
    if token.bytes_b64 is not None:
        return base64.b64decode(token.bytes_b64)
    return token.text.encode()


def text_piece(text: str) -> Piece:
    return Piece("text", text, None, text.encode())


def token_piece(token: TokenRecord) -> Piece:
    return Piece("token", token.text, token, token_bytes(token))


def node_pieces(view: NodeView) -> list[Piece]:
    """A node's pieces as its record and streamed tokens give them, each token's text its
    own bytes decoded alone (see :func:`decoded`)."""
    record = view.record
    if record.hidden:
        size = record.hidden_chars if record.hidden_chars is not None else view.hidden_chars
        label = f"[hidden: {size} characters]" if size is not None else "[hidden]"
        return [Piece("hidden", label)]
    pieces: list[Piece] = []
    for entry in record.entries:
        if entry.kind == "text":
            pieces.append(text_piece(entry.text))
        elif entry.kind == "token":
            pieces.append(token_piece(entry))
        elif entry.kind in ("role_open", "role_close"):
            pieces.append(Piece(entry.kind, entry.role))
    if not record.entries:
        pieces.extend(token_piece(token) for token in view.tokens)
    return pieces


def decoded(pieces: list[Piece], *, ends: bool = True) -> list[Piece]:
    """``pieces`` with the text of each run of text and tokens decoded as one: each shows
    the characters whose last byte it holds (labels end a run; the end of ``pieces`` ends
    one when ``ends``)."""
    out = list(pieces)
    start = 0
    for index in range(len(out) + 1):
        if index < len(out) and out[index].is_text:
            continue
        if start < index:
            run = out[start:index]
            last = index == len(out)
            shown = decode_run([piece.data for piece in run], ends=ends or not last)
            out[start:index] = [replace(p, value=v) for p, v in zip(run, shown, strict=True)]
        start = index + 1
    return out


def _cut_bytes(pieces: list[Piece], cut: int) -> None:
    """Take ``cut`` bytes of model text off the end of ``pieces`` (in place); role labels
    and placeholders are not model text and stay."""
    index = len(pieces) - 1
    while cut > 0 and index >= 0:
        piece = pieces[index]
        size = piece.size()
        if size and size <= cut:
            del pieces[index]
            cut -= size
        elif size:
            kept = piece.data[: size - cut]
            text = kept.decode("utf-8", errors="replace")
            pieces[index] = replace(piece, value=text, data=kept)
            cut = 0
        index -= 1
