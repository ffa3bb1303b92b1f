"""The store's writer: a bus renderer that keeps every run in a store as it goes.

It subscribes to the process's bus like any view, so the generating thread pays nothing
for it beyond what publishing costs: the subscription's thread hands each message over, and
the writer's own thread turns messages into JSON and writes them in batches, one
transaction each, at most ``FLUSH_S`` after the first message of a batch (a run's end is
written at once). A process killed mid-run leaves its run readable up to its last batch.

:func:`attach` is what ``rudder.settings.store`` and ``RUDDER_STORE`` drive: the process
has at most one writer, for the store the settings name.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from rudder._settings import settings
from rudder.trace._events import TraceListener

if TYPE_CHECKING:
    import pathlib

    from rudder.store._store import Row, Store
    from rudder.trace._node import TraceNode
    from rudder.trace._run import Run
    from rudder.visual.stream._bus import Bus, Subscription
    from rudder.visual.stream._protocol import ServerMessage
    from rudder.visual.stream._view_state import RunView

_log = logging.getLogger("rudder.store")

#: Seconds a batch waits for more messages before it is written.
FLUSH_S = 0.2
#: Messages a batch holds at most.
MAX_BATCH = 2000
#: Messages of one run the writer folds for its text; a longer run is read back at its end.
MAX_FOLDED = 20_000


class StoreWriter:
    """Writes every run on ``bus`` (the process's by default) to ``store``."""

    def __init__(self, store: Store, bus: Bus | None = None) -> None:
        from rudder.visual.stream._bus import get_bus

        self.store = store
        self.writer_id = store.open_writer()
        #: Batches that failed to be written (each was logged; writing went on).
        self.failures = 0
        # Messages, model notes, flush requests, and None to stop.
        self._queue: queue.SimpleQueue[
            ServerMessage | _ModelUsed | _Generation | threading.Event | None
        ]
        self._queue = queue.SimpleQueue()
        self._closed = False
        # Each run's state, folded as its messages pass, gives its text for search when it
        # ends (parsing the stored run back would cost more than all of its writing).
        self._views: dict[str, RunView] = {}
        self._unfolded: set[str] = set()
        self._models: dict[str, list[str]] = {}  # run id -> the models it generated with
        self._models_due: dict[str, str] = {}  # run id -> its models, to write
        self._thread = threading.Thread(target=self._write_loop, name="rudder-store", daemon=True)
        self._thread.start()
        self._subscription: Subscription = (bus or get_bus()).subscribe(self)

    def send(self, message: ServerMessage) -> None:
        """Called by the subscription's thread: the writer's thread does the rest."""
        if message.type != "reset":  # a reader's notice, not part of the stream
            self._queue.put(message)

    def note_model(self, run_id: str, model: str) -> None:
        """Run ``run_id`` generated with ``model`` (called from the generating thread: one
        lookup when the run's models are known already)."""
        known = self._models.get(run_id)
        if known is None or model not in known:
            self._queue.put(_ModelUsed(run_id, model))

    def note_generation(self, node: TraceNode) -> None:
        """Keep what exploring ``node``'s generation again needs (called from the generating
        thread when it ends; the writer's thread writes it)."""
        import dataclasses
        import json

        from rudder._grammar._lark import compile_grammar
        from rudder.engine._engine import Engine
        from rudder.models._remembered import remembered_of

        remembered = remembered_of(node)
        if remembered is None or not isinstance(remembered.parent.engine, Engine):
            return  # a server's generation cannot be explored from a token
        grammar = compile_grammar(remembered.grammar).lark
        sampling = json.dumps(dataclasses.asdict(remembered.parent.sampling))
        self._queue.put(_Generation(node.run_id, node.id, grammar, sampling))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every message published so far is in the store."""
        if not self._subscription.wait_idle(timeout):
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, ended: Run | None = None) -> None:
        """Write what is pending and stop. ``ended`` (the default run, at exit) is written
        as done: it ends with the process; other runs left running read as interrupted."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._subscription.close()
        self._queue.put(None)
        self._thread.join()
        if ended is not None:
            self._end(ended)
        self.store.close_writer(self.writer_id)
        self.store.close()

    def _end(self, run: Run) -> None:
        from rudder.errors import StoreError
        from rudder.trace._records import run_record
        from rudder.visual.stream._protocol import RunFinished

        try:
            if self.store.run(run.id).status not in ("running", "interrupted"):
                return
        except StoreError:
            return  # nothing of it was shown, so nothing was stored
        record = run_record(run).model_copy(update={"status": "done", "finished_at": time.time()})
        message = RunFinished(seq=self.store.next_seq(run.id), run_id=run.id, run=record)
        self._write([_row(message)])

    # -- the writer's thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        rows: list[Row] = []
        deadline = 0.0
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if rows else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = threading.Event()  # the batch is due: write it, tell nobody
            if isinstance(item, _Generation):
                self._keep_generation(item)
                continue
            if isinstance(item, _ModelUsed):
                models = self._models.setdefault(item.run_id, [])
                if item.model not in models:
                    models.append(item.model)
                    self._models_due[item.run_id] = ", ".join(models)
                continue
            if item is None or isinstance(item, threading.Event):
                self._write(rows)
                rows = []
                if item is None:
                    return
                item.set()
                continue
            if not rows:
                deadline = time.monotonic() + FLUSH_S
            rows.append(_row(item))
            self._fold(item)
            if len(rows) >= MAX_BATCH or item.type == "run_finished":
                self._write(rows)
                rows = []

    def _keep_generation(self, item: _Generation) -> None:
        try:
            self.store.add_generation(*item)
        except Exception:
            self.failures += 1
            _log.exception(
                "the run store %s could not keep generation %d", self.store.path, item.node_id
            )

    def _fold(self, message: ServerMessage) -> None:
        """Keep the run's state for its text (up to ``MAX_FOLDED`` messages: a longer run,
        such as a long script's default run, is read back from the store when it ends)."""
        from rudder.visual.stream._view_state import RunView

        run_id = message.run_id
        if run_id in self._unfolded:
            return
        view = self._views.get(run_id)
        if view is None:
            view = self._views[run_id] = RunView(run_id)
        view.apply(message)
        if view.last_seq >= MAX_FOLDED:
            del self._views[run_id]
            self._unfolded.add(run_id)

    def _write(self, rows: list[Row]) -> None:
        if not rows and not self._models_due:
            return
        try:
            finished = self.store.write(self.writer_id, rows, models=self._models_due)
            self._models_due = {}
            for run_id in finished:
                self._models.pop(run_id, None)
                view = self._views.pop(run_id, None)
                self._unfolded.discard(run_id)
                if view is None or view.gaps or view.unknown_nodes:
                    view = self.store.view(run_id)  # too long, or it attached late
                self.store.set_text(run_id, view.text())
            if finished:
                self.store.keep(
                    max_runs=settings.store_max_runs, max_bytes=settings.store_max_bytes
                )
        except Exception:
            self.failures += 1
            _log.exception(
                "the run store %s could not write %d messages", self.store.path, len(rows)
            )


class _ModelUsed(NamedTuple):
    run_id: str
    model: str


class _Generation(NamedTuple):
    """What exploring a generation again needs (``Store.add_generation``)."""

    run_id: str
    node_id: int
    grammar: str
    sampling: str


def _row(message: ServerMessage) -> Row:
    from rudder.store._store import Row

    return Row(message.run_id, message.seq, message.type, message.model_dump_json())


# -- the process's writer ---------------------------------------------------------------------

_writer: StoreWriter | None = None
_lock = threading.Lock()


def attach(path: pathlib.Path | None) -> StoreWriter | None:
    """Make the process's writer write to the store at ``path`` (None: to none). Opening
    the store is checked here: a path that is not a store raises ``StoreError`` and the
    writer stays as it was."""
    from rudder.store._store import Store

    global _writer
    with _lock:
        if _writer is not None and _writer.store.path == path:
            return _writer
        store = Store(path) if path is not None else None
        previous, _writer = _writer, (StoreWriter(store) if store is not None else None)
    if previous is not None:
        previous.close()
    return _writer


def current_writer() -> StoreWriter | None:
    """The process's writer (None while no store is set)."""
    return _writer


def _close_at_exit() -> None:
    from rudder.trace._run import started_default_run

    global _writer
    with _lock:
        writer, _writer = _writer, None
    if writer is not None:
        try:
            writer.close(ended=started_default_run())
        except Exception:
            _log.exception("the run store %s could not be closed", writer.store.path)


atexit.register(_close_at_exit)


class _StoreListener(TraceListener):
    """Opens the store ``RUDDER_STORE`` names when the first run starts (not at import:
    ``import rudder`` starts no thread and opens no file), and tells the writer which model
    each generation ran on (the messages do not say)."""

    def run_started(self, run: Run) -> None:
        path = settings.store
        if path is not None and _writer is None:
            attach(path)

    def node_added(self, node: TraceNode) -> None:
        writer = _writer
        if writer is not None and node.model is not None:
            writer.note_model(node.run_id, node.model)

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        writer = _writer
        if writer is not None and error is None:
            writer.note_generation(node)


def install() -> None:
    from rudder.trace._events import add_listener

    add_listener(_LISTENER)


_LISTENER = _StoreListener()
