"""The terminal view: runs shown as text in a terminal, a pipe or a log.

The view follows a run on the bus (one subscription per run) and writes what each message
adds to a :class:`~rudder.visual.terminal._terminal_output.TerminalOutput`: fixed text and
role labels as they come, a generation's tokens as they stream, the run's figures when it
ends (for the process's default run, which never ends, at exit). A node whose text is
already on screen (an earlier run's, carried again by a self-contained stream) is not
written twice; a step that does not continue the last one written (a branch, a new
program) is marked.

The user's own ``print()`` output passes through a guard on ``sys.stdout``/``sys.stderr``
that first lets the view catch up with what was published, so prints and run text come out
in the order the program made them, and never inside a line of run text.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TextIO

from rich.text import Text

from rudder._settings import settings
from rudder._shown_text import RunDecoder, visible
from rudder.visual.stream._bus import Bus, Subscription, get_bus
from rudder.visual.stream._figures import summary
from rudder.visual.stream._view_state import (
    LIVE_VIEW_NODES,
    NodeView,
    Piece,
    RunView,
    node_pieces,
    token_piece,
)
from rudder.visual.terminal._terminal_output import TerminalOutput
from rudder.visual.terminal._terminal_text import NOTE_STYLE, note, piece_text

if TYPE_CHECKING:
    from rudder.trace._records import TokenRecord
    from rudder.visual.stream._protocol import ServerMessage

#: Node ids the view remembers having written (older ones are forgotten).
REMEMBERED_NODES = 10_000
#: Seconds user output waits for the view to write what was published before it.
CATCH_UP_S = 2.0
ERROR_STYLE = "bold red"


@dataclass
class _RunState:
    view: RunView
    name: str = ""
    generating: int | None = None  # the node of the running generation
    skip_bytes: int = 0  # bytes a generation re-makes that are already written (healing)
    subscription: Subscription | None = None
    #: The decoder's waiting bytes before each token of the running generation (so that a
    #: backtrack restores them).
    pending_before: list[bytes] = field(default_factory=list)


class TerminalView:
    """Writes followed runs to ``output`` (see the module's docstring)."""

    def __init__(
        self,
        output: TerminalOutput,
        *,
        bus: Bus | None = None,
        on_screen: Callable[[bool], None] | None = None,
    ) -> None:
        self.output = output
        self._bus = bus if bus is not None else get_bus()
        #: Told True when the view starts showing runs and False when it shows none (the
        #: guard on the standard streams is installed only meanwhile).
        self._on_screen = on_screen
        self._lock = threading.RLock()
        self._runs: dict[str, _RunState] = {}
        self._written: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._last_node: int | None = None
        self._last_run: str | None = None
        self._local = threading.local()
        # Text is decoded as one stream, as it reaches the screen: a character split over
        # tokens (or over two generations) is written once, by the piece that ends it.
        self._decoder = RunDecoder()

    # -- following runs -----------------------------------------------------------------------

    def follow(self, run_id: str) -> None:
        """Show ``run_id`` from its start (what was published already is replayed)."""
        with self._lock:
            if run_id in self._runs:
                return
            if not self._runs and self._on_screen is not None:
                self._on_screen(True)
            state = self._runs[run_id] = _RunState(RunView(run_id, LIVE_VIEW_NODES))
        state.subscription = self._bus.subscribe(_Relay(self), run_id=run_id)

    def following(self, run_id: str) -> bool:
        return run_id in self._runs

    def wait_idle(self, timeout: float = CATCH_UP_S) -> bool:
        """Wait until every followed run's published messages were written."""
        if getattr(self._local, "rendering", False):
            return True  # called from a delivery thread (a log line it wrote): no waiting
        subscriptions = [state.subscription for state in list(self._runs.values())]
        return all(s.wait_idle(timeout) for s in subscriptions if s is not None)

    def close(self, default_run_summary: str | None = None) -> None:
        """Write what is pending and stop (at exit); ``default_run_summary`` is written last."""
        self.wait_idle()
        with self._lock:
            for state in list(self._runs.values()):
                if state.subscription is not None:
                    state.subscription.close()
            self._runs.clear()
            if default_run_summary is not None:
                self._line(note(default_run_summary))
            self._end_run_of_text()
            self.output.close()
            if self._on_screen is not None:
                self._on_screen(False)

    # -- user output --------------------------------------------------------------------------

    def user_write(self, data: str, stream: TextIO) -> None:
        if getattr(self._local, "rendering", False):
            stream.write(data)
            return
        self.wait_idle()
        with self._lock:
            self.output.user_write(data, stream)

    def user_flush(self, stream: TextIO) -> None:
        with self._lock:
            self.output.user_flush(stream)

    # -- messages -----------------------------------------------------------------------------

    def send(self, message: ServerMessage) -> None:
        self._local.rendering = True
        try:
            with self._lock:
                self._apply(message)
        finally:
            self._local.rendering = False

    def _apply(self, message: ServerMessage) -> None:
        state = self._runs.get(message.run_id)
        if state is None or not state.view.apply(message):
            return
        if message.type == "run_started":
            state.name = message.run.name
        elif message.type == "node_added":
            self._node_added(state, message.node.id)
        elif message.type == "tokens_appended" and message.node_id == state.generating:
            state.skip_bytes += sum(cut.bytes for cut in message.cuts or ())
            tokens = state.view.nodes[message.node_id].tokens  # the message's, expanded
            added = tokens[len(tokens) - len(message.tokens) :]
            self.output.tokens([self._token_text(state, token) for token in added])
        elif message.type == "backtrack" and message.node_id == state.generating:
            self._backtrack(state, message.tokens)
        elif message.type == "status" and message.node_id == state.generating:
            if message.state in ("idle", "error"):
                self._generation_ended(state, message.state, message.message)
        elif message.type == "run_finished":
            self._run_finished(state)

    def _label(self, state: _RunState) -> str:
        return visible(f"rudder · run {state.name or state.view.run_id}")

    def _node_added(self, state: _RunState, node_id: int) -> None:
        node = state.view.nodes[node_id]
        record = node.record
        if node_id in self._written:
            return  # on screen already: an earlier run wrote it
        self._switch_run(state)
        self._continue_from(state, record.parent_id)
        self._remember(node_id)
        running = record.input.kind == "grammar" and record.usage is None and not record.entries
        if running:
            state.generating = node_id
            state.skip_bytes = _cut_size(node)
            state.pending_before = []
            self.output.generation_started(self._label(state))
            return
        self._write_pieces(node_pieces(node), _cut_size(node))

    def _generation_ended(self, state: _RunState, status: str, error: str) -> None:
        node_id, state.generating = state.generating, None
        self.output.generation_ended()
        if node_id is not None:
            node = state.view.nodes[node_id]
            if node.record.hidden:
                self._write_pieces(node_pieces(node), 0)
        if status == "error":
            self._line(note(f"✗ generation failed: {error}", ERROR_STYLE))
        self.output.idle(self._label(state))

    def _run_finished(self, state: _RunState) -> None:
        if state.generating is not None:
            self._generation_ended(state, "idle", "")
        run = state.view.run
        ok = run is not None and run.status == "done"
        mark = "✓" if ok else "✗"
        line = f"{mark} run {state.name or state.view.run_id}: {summary(state.view)}"
        self._line(note(line, NOTE_STYLE if ok else ERROR_STYLE))
        self.output.close()
        self._runs.pop(state.view.run_id, None)
        if self._last_run == state.view.run_id:
            self._last_run = None
        if not self._runs and self._on_screen is not None:
            self._on_screen(False)
        if state.subscription is not None:
            state.subscription.close()

    # -- writing ------------------------------------------------------------------------------

    def _switch_run(self, state: _RunState) -> None:
        run_id = state.view.run_id
        if self._last_run is not None and self._last_run != run_id:
            name = state.name or run_id
            self._line(note(f"── run {name} ──"))
        self._last_run = run_id

    def _continue_from(self, state: _RunState, parent_id: int | None) -> None:
        if self._last_node is None or parent_id == self._last_node:
            return
        if parent_id is None:
            self._line(note("── a new program ──"))
            return
        tail = state.view.text(parent_id)[-40:].replace("\n", "⏎")
        self._line(note(f"↳ continues from “…{tail}”"))

    def _remember(self, node_id: int) -> None:
        self._written[node_id] = None
        self._last_node = node_id
        if len(self._written) > REMEMBERED_NODES:
            self._written.popitem(last=False)

    def _line(self, text: Text) -> None:
        """A line of the view's own: the run of text before it ends first."""
        self._end_run_of_text()
        self.output.line(text)

    def _end_run_of_text(self) -> None:
        """Bytes waiting for the rest of a character that will not come are written now."""
        rest = self._decoder.end()
        if rest:
            self.output.text(Text(visible(rest)))

    def _write_pieces(self, pieces: list[Piece], skip_bytes: int) -> None:
        colors = settings.token_colors
        for piece in _drop_leading_bytes(pieces, skip_bytes):
            if piece.kind == "role_open":
                self._line(piece_text(piece, colors))
            elif piece.kind == "role_close":
                self._end_run_of_text()
                self.output.end_line()
            elif piece.is_text:
                self.output.text(piece_text(piece, colors, self._decoder.feed(piece.data)))
            else:
                self._end_run_of_text()
                self.output.text(piece_text(piece, colors))

    def _token_text(self, state: _RunState, token: TokenRecord) -> Text:
        """A streamed token's text as its run shows it, less the bytes healing re-made
        (written already)."""
        piece = token_piece(token)
        if state.skip_bytes:
            size = piece.size()
            kept = _drop_leading_bytes([piece], state.skip_bytes)
            state.skip_bytes = max(0, state.skip_bytes - size)
            piece = kept[0] if kept else replace(piece, data=b"")
        state.pending_before.append(self._decoder.pending)
        return piece_text(piece, settings.token_colors, self._decoder.feed(piece.data))

    def _backtrack(self, state: _RunState, count: int) -> None:
        """Take back the last ``count`` tokens, and the bytes they left waiting."""
        if count <= 0:
            return
        if count <= len(state.pending_before):
            self._decoder.pending = state.pending_before[-count]
        del state.pending_before[-count:]
        self.output.backtrack(count)


def _cut_size(node: NodeView) -> int:
    """Bytes of the text before ``node`` that its healing re-makes (on screen already)."""
    return sum(count for _, count in node.cuts)


def _drop_leading_bytes(pieces: list[Piece], count: int) -> list[Piece]:
    """``pieces`` without their first ``count`` bytes of model text (labels stay)."""
    if count <= 0:
        return pieces
    out: list[Piece] = []
    for piece in pieces:
        size = piece.size()
        if count and size:
            if size <= count:
                count -= size
                continue
            kept = piece.data[count:]
            piece = replace(piece, value=kept.decode("utf-8", errors="replace"), data=kept)
            count = 0
        out.append(piece)
    return out


class _Relay:
    __slots__ = ("view",)

    def __init__(self, view: TerminalView) -> None:
        self.view = view

    def send(self, message: ServerMessage) -> None:
        self.view.send(message)
