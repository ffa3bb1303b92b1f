"""Exploring a stored run's generation again: ``rudder view STORE --model SPEC``.

A stored run is messages, not Models: what exploring needs beyond them, the generation's
grammar (as Lark) and its Model's sampling settings, is kept in the store when the
generation ends (``Store.add_generation``). With a model attached, a generation's parent
state is rebuilt from its stored path (``load_trace`` of the path's node records, then
``Model._at``), and :func:`rudder._explore.explore_from` runs the step again from there
as ``rudder.explore`` does in the process that made it: the tokens before the chosen one
kept, the chosen one forced, the grammar carried to its end. The branch's messages are
added to the stored run after its last, so every viewer of the run shows it.

The model must be the one the run used: its tokenizer gives the token ids the stored
tokens carry. A generation stored without what exploring needs (by an earlier rudder, or
on a server) says so.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from rudder.errors import ExploreError, StoreError

if TYPE_CHECKING:
    from rudder.models._model import Model
    from rudder.store._store import Store
    from rudder.trace._records import NodeRecord
    from rudder.visual.stream._protocol import ServerMessage
    from rudder.visual.stream._view_state import NodeView

#: What a viewer without a model says when a candidate is clicked.
NO_MODEL = (
    "exploring a stored run needs its model: start the viewer with it, "
    "e.g. `rudder view STORE --model PATH_OR_ID` (a Hugging Face model or a .gguf file; "
    "`--model builtin` for rudder's built-in model)"
)


class StoredExplorer:
    """Explores the generations of ``store``'s runs on ``lm``'s engine."""

    def __init__(self, store: Store, lm: Model) -> None:
        self.store = store
        self.lm = lm
        self.writer_id: int | None = None
        # One branch at a time: each takes node ids and seqs after the run's last.
        self._lock = threading.Lock()

    def explore(self, run_id: str, node_id: int, token_index: int, token_id: int) -> int:
        """Add to run ``run_id`` the branch of generation ``node_id`` with ``token_id`` at
        output token ``token_index``; returns the branch's node id."""
        with self._lock:
            return self._explore(run_id, node_id, token_index, token_id)

    def _explore(self, run_id: str, node_id: int, token_index: int, token_id: int) -> int:
        from rudder._explore import explore_from
        from rudder._grammar._library import lark
        from rudder.engine._sampler import Sampling
        from rudder.errors import RudderError
        from rudder.trace._node import take_ids_above
        from rudder.trace._records import load_trace
        from rudder.visual.stream._bus import get_bus

        for name, value in (("node_id", node_id), ("token_index", token_index)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ExploreError(f"{name} must be an int, got {type(value).__name__}")
        kept = self.store.generation(run_id, node_id)
        if kept is None:
            raise ExploreError(
                f"generation {node_id} of run {run_id} was stored without its grammar (by an "
                "earlier rudder, on a server, or it is not a generation): run the program "
                "again with this rudder and a store to explore it"
            )
        grammar_text, sampling_json = kept
        view = self.store.view(run_id)
        path = view.path(node_id)
        if not path or path[-1].record.id != node_id:
            raise ExploreError(f"run {run_id} has no node {node_id}")
        if any(item.record.hidden for item in path):
            raise ExploreError(
                f"generation {node_id} of run {run_id} follows a hidden step, whose text was "
                "not stored: its prompt cannot be rebuilt"
            )
        try:
            sampling = Sampling(**json.loads(sampling_json))
            generation = load_trace(_trace_json([_complete(item) for item in path]))
        except (RudderError, ValueError, TypeError) as error:
            raise StoreError(
                f"run {run_id}'s generation {node_id} is not readable: {error}"
            ) from None
        parent_node = generation.parent
        parent = self.lm._at(parent_node, sampling) if parent_node is not None else self.lm
        take_ids_above(max(view.nodes, default=0))
        bus = get_bus()
        before = bus.messages(run_id)
        after_seq = before[-1].seq if before else -1
        branch = explore_from(
            parent, lark(grammar_text), generation, token_index, token_id, run_id=run_id
        )
        assert branch.trace is not None
        self._save(run_id, bus.messages(run_id, after_seq))
        self.store.add_generation(run_id, branch.trace.id, grammar_text, sampling_json)
        return branch.trace.id

    def _save(self, run_id: str, messages: list[ServerMessage]) -> None:
        """Add the branch's messages to the stored run, numbered after its last. The run's
        own figures are left as they were (a branch's usage is its node's)."""
        from rudder.store._store import Row

        if self.writer_id is None:
            self.writer_id = self.store.open_writer()
        kept = [m for m in messages if not _about_the_run(m)]
        first = self.store.next_seq(run_id)
        rows: list[Row] = []
        for offset, message in enumerate(kept):
            moved = message.model_copy(update={"seq": first + offset})
            rows.append(Row(run_id, moved.seq, moved.type, moved.model_dump_json()))
        self.store.write(self.writer_id, rows)

    def close(self) -> None:
        if self.writer_id is not None:
            self.store.close_writer(self.writer_id)


def _complete(view: NodeView) -> NodeRecord:
    """A stored node's record with what came after it: a generation's streamed tokens,
    captures, healed bytes and usage (its record was sent when it started)."""
    record = view.record
    return record.model_copy(
        update={
            "entries": [*record.entries, *view.tokens, *view.captures],
            "healed_bytes": view.healed_bytes or record.healed_bytes,
            "usage": view.usage or record.usage,
        }
    )


def _trace_json(records: list[NodeRecord]) -> str:
    from rudder.trace._records import TraceRecord

    return TraceRecord(nodes=records).model_dump_json()


def _about_the_run(message: ServerMessage) -> bool:
    """A message about the run as a whole, which a branch added later must not change."""
    if message.type in ("run_started", "run_finished"):
        return True
    return message.type in ("metrics", "status") and message.node_id is None
