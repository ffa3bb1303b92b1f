"""The bus: an in-process publisher with a bounded history per run, and subscriptions.

Publishing appends a message to its run's stream and wakes the subscriptions; it never
waits for a renderer. Each subscription delivers from the history in its own thread, so a
slow renderer only falls behind (it is never skipped: it reads the same history), and a
renderer that raises is logged and kept. A subscription can start at any point of a run
(a late renderer gets a replay of everything so far, then the live stream) and can be sent
back to any point (``replay``) when its client missed messages.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from rudder.visual.stream._protocol import Message, ServerMessage, StreamRequest
    from rudder.visual.stream._token_table import TableToken

M = TypeVar("M", bound="Message")

_log = logging.getLogger("rudder.visual")


class Renderer(Protocol):
    """Anything that shows or stores messages; ``send`` is called from a bus thread."""

    def send(self, message: ServerMessage) -> None: ...


class _Later:
    """A message whose fields are made when it is first read (by a subscription's thread,
    or a replay), not when it is published: the generating thread pays only for a closure.
    """

    __slots__ = ("_fields", "_kind", "_message", "run_id", "seq")

    def __init__(
        self, kind: type[Message], seq: int, run_id: str, fields: Callable[[], dict[str, Any]]
    ) -> None:
        self._kind = kind
        self.seq = seq
        self.run_id = run_id
        self._fields: Callable[[], dict[str, Any]] | None = fields
        self._message: ServerMessage | None = None

    def get(self) -> ServerMessage:
        message = self._message
        if message is None:
            fields = self._fields
            assert fields is not None
            made = self._kind(seq=self.seq, run_id=self.run_id, **fields())
            message = self._message = cast("ServerMessage", made)
            self._fields = None
        return message


def _resolve(items: list[ServerMessage | _Later]) -> list[ServerMessage]:
    return [item.get() if isinstance(item, _Later) else item for item in items]


class _Stream:
    """One run's messages. ``first_seq`` is the seq of ``messages[0]`` (older ones were
    dropped to bound the history). The token table entries the dropped messages carried are
    kept (the messages still held may name those tokens): a reset hands them on."""

    __slots__ = (
        "_dropped_table",
        "_dropped_with_table",
        "finished",
        "first_seq",
        "messages",
        "run_id",
    )

    #: Dropped messages whose table entries are read only when needed (building a message
    #: costs), at most this many at a time.
    MAX_UNREAD_TABLES = 256

    def __init__(self, run_id: str, first_seq: int = 0) -> None:
        self.run_id = run_id
        self.messages: list[ServerMessage | _Later] = []
        self.first_seq = first_seq
        self.finished = False
        self._dropped_table: dict[int, TableToken] = {}
        self._dropped_with_table: list[ServerMessage | _Later] = []

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.messages)

    def drop(self, count: int) -> None:
        """Drop the oldest ``count`` messages, keeping the table entries they carried."""
        self._dropped_with_table.extend(m for m in self.messages[:count] if _has_table(m))
        del self.messages[:count]
        self.first_seq += count
        if len(self._dropped_with_table) > self.MAX_UNREAD_TABLES:
            self._read_dropped_tables()

    def dropped_table(self) -> list[TableToken]:
        self._read_dropped_tables()
        return list(self._dropped_table.values())

    def _read_dropped_tables(self) -> None:
        for item in self._dropped_with_table:
            message = item.get() if isinstance(item, _Later) else item
            for entry in getattr(message, "table", ()):
                self._dropped_table[entry.id] = entry
        self._dropped_with_table.clear()


def _has_table(item: ServerMessage | _Later) -> bool:
    kind = item._kind if isinstance(item, _Later) else type(item)
    return "table" in kind.model_fields


class Bus:
    """Streams of messages, one per run, and the subscriptions that read them."""

    def __init__(self, *, max_runs: int = 32, max_messages_per_run: int = 10_000) -> None:
        self.max_runs = max_runs
        self.max_messages_per_run = max_messages_per_run
        self._changed = threading.Condition()
        self._streams: collections.OrderedDict[str, _Stream] = collections.OrderedDict()
        # Where the streams dropped while their run was still going had got to: if such a
        # run publishes again, its stream goes on from there (readers get a reset).
        self._dropped: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._subscriptions: list[Subscription] = []

    def publish(self, run_id: str, kind: type[M], **fields: Any) -> M:
        """Append a ``kind`` message with ``fields`` to the stream of ``run_id`` (its
        ``seq`` is the stream's next); returns the message."""
        with self._changed:
            stream = self._stream(run_id)
            message = kind(seq=stream.next_seq, run_id=run_id, **fields)
            self._append(stream, message)
        return message

    def publish_later(
        self, run_id: str, kind: type[Message], fields: Callable[[], dict[str, Any]]
    ) -> None:
        """Like ``publish``, but ``fields()`` is called when the message is first read.
        The values it reads must not change (frozen entries, finished nodes)."""
        with self._changed:
            stream = self._stream(run_id)
            self._append(stream, _Later(kind, stream.next_seq, run_id, fields))

    def _stream(self, run_id: str) -> _Stream:
        stream = self._streams.get(run_id)
        if stream is None:
            stream = _Stream(run_id, self._dropped.pop(run_id, 0))
            self._streams[run_id] = stream
            self._bound_runs()
        return stream

    def _append(self, stream: _Stream, item: Message | _Later) -> None:
        stream.messages.append(item)  # type: ignore[arg-type]
        if getattr(item, "type", None) == "run_finished":
            stream.finished = True
        if len(stream.messages) > self.max_messages_per_run:
            stream.drop(len(stream.messages) - self.max_messages_per_run // 2)
        self._changed.notify_all()

    def _bound_runs(self) -> None:
        """Drop the oldest finished streams beyond ``max_runs`` (the oldest running ones
        when every stream is running)."""
        while len(self._streams) > self.max_runs:
            victim = next((s for s in self._streams.values() if s.finished), None)
            if victim is None:
                victim = next(iter(self._streams.values()))
                self._dropped[victim.run_id] = victim.next_seq
                while len(self._dropped) > 4 * self.max_runs:
                    self._dropped.popitem(last=False)
            del self._streams[victim.run_id]

    def runs(self) -> list[str]:
        """The runs whose streams the bus holds, oldest first."""
        with self._changed:
            return list(self._streams)

    def messages(self, run_id: str, after_seq: int = -1) -> list[ServerMessage]:
        """The held messages of ``run_id`` with ``seq > after_seq``."""
        with self._changed:
            stream = self._streams.get(run_id)
            if stream is None:
                return []
            start = max(0, after_seq + 1 - stream.first_seq)
            items = stream.messages[start:]
        return _resolve(items)

    def subscribe(
        self, renderer: Renderer, *, run_id: str | None = None, after_seq: int = -1
    ) -> Subscription:
        """Deliver to ``renderer`` the messages of ``run_id`` (or of every run, present
        and future) after ``after_seq``, then the live stream, until ``close()``."""
        subscription = Subscription(self, renderer, run_id, after_seq)
        with self._changed:
            self._subscriptions.append(subscription)
        subscription.start()
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._changed:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
            self._changed.notify_all()

    def clear(self) -> None:
        """Drop every stream (subscriptions stay and see new runs)."""
        with self._changed:
            self._streams.clear()
            self._dropped.clear()
            self._changed.notify_all()


class Subscription:
    """One renderer reading the bus from its own thread."""

    def __init__(self, bus: Bus, renderer: Renderer, run_id: str | None, after_seq: int) -> None:
        self.bus = bus
        self.renderer = renderer
        self.run_id = run_id
        #: Failed ``send`` calls so far (each was logged; delivery went on).
        self.failures = 0
        self._cursors: dict[str, int] = {}  # run id -> next seq to deliver
        self._start_after = after_seq
        self._delivered = 0
        self._closed = False
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._deliver, name="rudder-renderer", daemon=True)
        with bus._changed:
            for stream_id in self._followed():
                self._cursors[stream_id] = after_seq + 1

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop delivering (messages already handed to ``send`` are not taken back)."""
        with self.bus._changed:
            self._closed = True
        self.bus._unsubscribe(self)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def replay(self, run_id: str, after_seq: int) -> None:
        """Deliver the messages of ``run_id`` after ``after_seq`` again (then go on live)."""
        with self.bus._changed:
            self._cursors[run_id] = after_seq + 1
            self._changed_notify()

    def handle(self, message: StreamRequest) -> None:
        """Answer a client's message: ready (with what it holds) or a replay request."""
        if message.type == "replay_request":
            self.replay(message.run_id, message.after_seq)
            return
        last = -1 if message.last_seq is None else message.last_seq
        runs: Iterable[str]
        if message.run_id is not None:
            runs = (message.run_id,)
        else:
            with self.bus._changed:
                runs = tuple(self._followed())
        for run_id in runs:
            self.replay(run_id, last)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every message published so far was handed to the renderer (True at
        once when the subscription is closed: nothing more will be)."""
        with self.bus._changed:
            if self._closed:
                return True
            self._idle.clear()
            self._changed_notify()
        return self._idle.wait(timeout)

    @property
    def delivered(self) -> int:
        """How many messages were handed to the renderer."""
        return self._delivered

    # -- the delivery thread --------------------------------------------------------------

    def _changed_notify(self) -> None:
        self.bus._changed.notify_all()

    def _followed(self) -> list[str]:
        streams = self.bus._streams
        if self.run_id is None:
            return list(streams)
        return [self.run_id] if self.run_id in streams else []

    def _take(self) -> list[ServerMessage | _Later]:
        """Messages due now (called holding the bus lock); advances the cursors."""
        from rudder.visual.stream._protocol import Reset

        due: list[ServerMessage | _Later] = []
        for run_id in self._followed():
            stream = self.bus._streams[run_id]
            first = self._start_after + 1 if run_id == self.run_id else 0
            cursor = self._cursors.setdefault(run_id, first)
            if cursor < stream.first_seq:
                # Part of what the renderer asked for was dropped: it starts over.
                due.append(
                    Reset(
                        seq=stream.first_seq,
                        run_id=run_id,
                        reason="history bounded: older messages were dropped",
                        first_seq=stream.first_seq,
                        table=stream.dropped_table(),
                    )
                )
                cursor = stream.first_seq
            due.extend(stream.messages[cursor - stream.first_seq :])
            self._cursors[run_id] = stream.next_seq
        if len(self._cursors) > 2 * len(self.bus._streams) + 8:
            # A subscription to every run forgets the runs the bounded history dropped.
            streams = self.bus._streams
            self._cursors = {run: seq for run, seq in self._cursors.items() if run in streams}
        return due

    def _deliver(self) -> None:
        while True:
            with self.bus._changed:
                while True:
                    if self._closed:
                        self._idle.set()
                        return
                    due = self._take()
                    if due:
                        break
                    self._idle.set()
                    self.bus._changed.wait()
            for item in due:
                message = item.get() if isinstance(item, _Later) else item
                try:
                    self.renderer.send(message)
                except Exception:
                    self.failures += 1
                    _log.exception(
                        "renderer %r failed on a %s message", self.renderer, message.type
                    )
                self._delivered += 1


_bus: Bus | None = None
_bus_lock = threading.Lock()


def get_bus() -> Bus:
    """The process's bus (made when first needed)."""
    global _bus
    if _bus is None:
        with _bus_lock:
            if _bus is None:
                _bus = Bus()
    return _bus
