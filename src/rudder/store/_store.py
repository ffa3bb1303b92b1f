"""The run store: one SQLite file (WAL) of runs and their protocol messages.

Writing is done by :class:`rudder.store._writer.StoreWriter` (a bus renderer) through
:meth:`Store.write`, one transaction per batch; any number of processes may write one store
at once (WAL, ``BEGIN IMMEDIATE`` with a busy timeout). Reading gives a run's messages as
they were streamed, so every view (``RunView``, the client page) shows a stored run as it
showed the live one.

A run is *interrupted* when it is still marked running but the process that wrote it is
gone: it closed the store without ending the run, or it died (its pid is no longer the
process that opened the store). Reading such a run ends its stream with a ``run_finished``
that says so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rudder.errors import StoreError
from rudder.store._schema import SCHEMA_VERSION, migrate, version

if TYPE_CHECKING:
    from rudder.visual.stream._protocol import ServerMessage
    from rudder.visual.stream._view_state import RunView

#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0
#: What a run's status says once its writer is gone with the run still running.
INTERRUPTED = "interrupted"
#: The error a read-back interrupted run ends with.
INTERRUPTED_ERROR = "interrupted: the process writing this run ended before the run did"
#: Runs a search returns at most.
MAX_LISTED = 500

_HOST = socket.gethostname()


def default_path() -> pathlib.Path:
    """The per-user store: ``$XDG_DATA_HOME/rudder/runs.sqlite`` (``~/.local/share`` when
    unset), ``~/Library/Application Support/rudder`` on macOS, ``%LOCALAPPDATA%\\rudder``
    on Windows."""
    if sys.platform == "win32":
        base = pathlib.Path(os.environ.get("LOCALAPPDATA") or pathlib.Path.home() / "AppData")
    elif sys.platform == "darwin":
        base = pathlib.Path.home() / "Library" / "Application Support"
    else:
        base = pathlib.Path(os.environ.get("XDG_DATA_HOME") or pathlib.Path.home() / ".local/share")
    return base / "rudder" / "runs.sqlite"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A stored run as the list of runs shows it."""

    id: str
    name: str
    status: str  # running, done, error or interrupted
    started_at: float | None
    finished_at: float | None
    error: str | None
    usage: dict[str, Any]
    model: str  # the models its generations ran on, comma-separated ("" when unknown)
    captures: dict[str, str]
    messages: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Row:
    """One message to write: the run, its place, its type and its JSON."""

    run_id: str
    seq: int
    type: str
    body: str


class Store:
    """A store file, opened (made and migrated when needed). Thread-safe: one connection,
    used under a lock."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path).strip():
            raise StoreError(f"a store is a path to a SQLite file (runs.sqlite), not {path!r}")
        self.path = pathlib.Path(path).expanduser().absolute()
        if self.path.is_dir():
            raise StoreError(f"the store {self.path} is a folder; name a file (runs.sqlite)")
        if not create and not self.path.exists():
            raise StoreError(
                f"there is no store at {self.path}: run a program with rudder.settings.store "
                "(or RUDDER_STORE) set to that path first"
            )
        self._lock = threading.Lock()
        self._connection = self._connect(create)

    def _connect(self, create: bool) -> sqlite3.Connection:
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            found = version(connection)
            if found > SCHEMA_VERSION:
                connection.close()
                raise StoreError(
                    f"the store {self.path} has schema version {found}, newer than this "
                    f"rudder reads ({SCHEMA_VERSION}): upgrade rudder, or use another store"
                )
            migrate(connection)
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"cannot open the store {self.path}: {error} (is it a rudder store? "
                "name a new file to start one)"
            ) from error
        except OSError as error:
            raise StoreError(f"cannot open the store {self.path}: {error}") from error
        return connection

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return version(self._connection)

    # -- writing ------------------------------------------------------------------------------

    def open_writer(self) -> int:
        """Register this process as a writer; returns its id for :meth:`write`."""
        started = _process_started(os.getpid())
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO writers (pid, host, process_started, opened_at) VALUES (?, ?, ?, ?)",
                (os.getpid(), _HOST, started, time.time()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def close_writer(self, writer_id: int) -> None:
        """The writer closed cleanly: its runs still marked running read as interrupted."""
        with self._transaction() as db:
            db.execute("UPDATE writers SET closed_at = ? WHERE id = ?", (time.time(), writer_id))

    def write(
        self, writer_id: int, rows: Sequence[Row], *, models: dict[str, str] | None = None
    ) -> list[str]:
        """Write ``rows`` in one transaction (a row already held is kept as it was), and
        ``models``, the models each run generated with; returns the ids of the runs that
        finished in it."""
        finished: list[str] = []
        models = models or {}
        with self._transaction() as db:
            for run_id in dict.fromkeys([*(row.run_id for row in rows), *models]):
                # The run's writer is the process that wrote it last.
                db.execute(
                    "INSERT INTO runs (id, name, status, writer_id) "
                    "VALUES (?, 'run', 'running', ?) "
                    "ON CONFLICT (id) DO UPDATE SET writer_id = excluded.writer_id",
                    (run_id, writer_id),
                )
            db.executemany(
                "INSERT OR IGNORE INTO messages (run_id, seq, type, body) VALUES (?, ?, ?, ?)",
                [(row.run_id, row.seq, row.type, row.body) for row in rows],
            )
            sizes: dict[str, list[int]] = {}
            for row in rows:
                size = sizes.setdefault(row.run_id, [0, 0])
                size[0] += 1
                size[1] += len(row.body)
                if self._fold_row(db, writer_id, row):
                    finished.append(row.run_id)
            db.executemany(
                "UPDATE runs SET messages = messages + ?, bytes = bytes + ? WHERE id = ?",
                [(count, size, run_id) for run_id, (count, size) in sizes.items()],
            )
            db.executemany(
                "UPDATE runs SET model = ? WHERE id = ?", [(m, r) for r, m in models.items()]
            )
        return finished

    def _fold_row(self, db: sqlite3.Connection, writer_id: int, row: Row) -> bool:
        """What a message changes in its run's row; True when the run finished."""
        if row.type in ("run_started", "run_finished"):
            run = json.loads(row.body)["run"]
            db.execute(
                "UPDATE runs SET name = ?, status = ?, started_at = ?, finished_at = ?, "
                "error = ?, usage = ?, writer_id = ? WHERE id = ?",
                (
                    run["name"],
                    run["status"],
                    run["started_at"],
                    run["finished_at"],
                    run["error"],
                    json.dumps(run["usage"]),
                    writer_id,
                    row.run_id,
                ),
            )
            return row.type == "run_finished"
        if row.type == "metrics":
            body = json.loads(row.body)
            if body["node_id"] is None:
                usage = json.dumps(body["usage"])
                db.execute("UPDATE runs SET usage = ? WHERE id = ?", (usage, row.run_id))
        elif row.type == "capture":
            capture = json.loads(row.body)["capture"]
            db.execute(
                "INSERT OR IGNORE INTO captures (run_id, seq, name, value) VALUES (?, ?, ?, ?)",
                (row.run_id, row.seq, capture["name"], capture["value"]),
            )
        return False

    def add_generation(self, run_id: str, node_id: int, grammar: str, sampling: str) -> None:
        """Keep what exploring generation ``node_id`` of run ``run_id`` again needs: its
        grammar as Lark and the Model's sampling settings (JSON)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO generations (run_id, node_id, grammar, sampling) "
                "VALUES (?, ?, ?, ?)",
                (run_id, node_id, grammar, sampling),
            )

    def generation(self, run_id: str, node_id: int) -> tuple[str, str] | None:
        """The grammar (Lark) and sampling (JSON) kept for a generation, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT grammar, sampling FROM generations WHERE run_id = ? AND node_id = ?",
                (run_id, node_id),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def set_text(self, run_id: str, text: str) -> None:
        """Keep the run's text for search (done when it ends)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET text = ? WHERE id = ?", (text, run_id))

    def next_seq(self, run_id: str) -> int:
        with self._lock:
            row = self._connection.execute(
                "SELECT max(seq) FROM messages WHERE run_id = ?", (run_id,)
            ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def keep(self, *, max_runs: int, max_bytes: int) -> list[str]:
        """Delete the oldest runs beyond ``max_runs`` runs or ``max_bytes`` bytes of
        messages; a run a live process is still writing is never deleted (nor counted).
        Returns the ids deleted."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT r.id, r.status, r.bytes, w.pid, w.host, w.process_started, w.closed_at "
                "FROM runs r LEFT JOIN writers w ON w.id = r.writer_id "
                "ORDER BY coalesce(r.started_at, 0) DESC, r.rowid DESC"
            ).fetchall()
        kept_runs = kept_bytes = 0
        doomed: list[str] = []
        for run_id, status, size, *writer in rows:
            if status == "running" and _writer_alive(*writer):
                continue  # being written: kept, and not counted
            if kept_runs < max_runs and kept_bytes + size <= max_bytes:
                kept_runs += 1
                kept_bytes += size
            else:
                doomed.append(run_id)
        if doomed:
            with self._transaction() as db:
                for table, column in (
                    ("messages", "run_id"),
                    ("captures", "run_id"),
                    ("generations", "run_id"),
                    ("runs", "id"),
                ):
                    db.executemany(
                        f"DELETE FROM {table} WHERE {column} = ?", [(r,) for r in doomed]
                    )
        return doomed

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    # -- reading ------------------------------------------------------------------------------

    def runs(self, query: str = "", *, limit: int = MAX_LISTED) -> list[RunSummary]:
        """Stored runs, newest first; ``query`` keeps those whose name, a capture's value or
        text contains it (case-insensitive for ASCII)."""
        if not isinstance(query, str):
            raise StoreError(f"a search query is a str, got {query!r}")
        where, params = "", []
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # Runs without their text yet (running, or from schema 1) are searched in the
            # JSON of their messages, where the query is spelled as JSON spells it.
            json_like = (
                "%"
                + json.dumps(query, ensure_ascii=False)[1:-1]
                .replace("\\", "\\\\")
                .replace("%", "\\%")
                .replace("_", "\\_")
                + "%"
            )
            where = (
                "WHERE r.name LIKE ?1 ESCAPE '\\' OR r.text LIKE ?1 ESCAPE '\\' "
                "OR r.model LIKE ?1 ESCAPE '\\' "
                "OR EXISTS (SELECT 1 FROM captures c WHERE c.run_id = r.id "
                "AND c.value LIKE ?1 ESCAPE '\\') "
                "OR (r.text IS NULL AND EXISTS (SELECT 1 FROM messages m WHERE m.run_id = r.id "
                "AND m.type IN ('node_added', 'tokens_appended') AND m.body LIKE ?2 ESCAPE '\\'))"
            )
            params = [like, json_like]
        sql = (
            "SELECT r.id, r.name, r.status, r.started_at, r.finished_at, r.error, r.usage, "
            "r.model, r.messages, r.bytes, w.pid, w.host, w.process_started, w.closed_at "
            f"FROM runs r LEFT JOIN writers w ON w.id = r.writer_id {where} "
            "ORDER BY coalesce(r.started_at, 0) DESC, r.rowid DESC LIMIT ?"
        )
        with self._lock:
            rows = self._connection.execute(sql, [*params, limit]).fetchall()
            captures = self._captures([row[0] for row in rows])
        return [_summary(row, captures.get(row[0], {})) for row in rows]

    def _captures(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        """Each run's captures, the last value of each name; captures of branches explored
        after the run ended (stored after its end) are left out: they are not its result."""
        out: dict[str, dict[str, str]] = {}
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for run_id, name, value in self._connection.execute(
                f"SELECT c.run_id, c.name, c.value FROM captures c WHERE c.run_id IN ({marks}) "
                "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.run_id = c.run_id "
                "AND m.type = 'run_finished' AND m.seq < c.seq) ORDER BY c.seq",
                chunk,
            ):
                out.setdefault(run_id, {})[name] = value
        return out

    def run(self, run_id: str) -> RunSummary:
        """One stored run; :class:`StoreError` when there is none with that id."""
        _check_id(run_id)
        with self._lock:
            row = self._connection.execute(
                "SELECT r.id, r.name, r.status, r.started_at, r.finished_at, r.error, r.usage, "
                "r.model, r.messages, r.bytes, w.pid, w.host, w.process_started, w.closed_at "
                "FROM runs r LEFT JOIN writers w ON w.id = r.writer_id WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            captures = self._captures([run_id]) if row is not None else {}
        if row is None:
            raise StoreError(
                f"the store {self.path} holds no run {run_id!r}: `rudder view {self.path}` "
                "lists the runs it holds"
            )
        return _summary(row, captures.get(run_id, {}))

    def resolve(self, name_or_id: str) -> RunSummary:
        """A run by its id, a unique prefix of its id, or its name (the newest run of that
        name)."""
        _check_id(name_or_id)
        with self._lock:
            found = self._connection.execute(
                "SELECT id FROM runs WHERE id = ?1 OR (length(?1) >= 4 AND id LIKE ?1 || '%') "
                "UNION ALL SELECT id FROM (SELECT id FROM runs WHERE name = ?1 "
                "ORDER BY coalesce(started_at, 0) DESC LIMIT 1)",
                (name_or_id,),
            ).fetchall()
        ids = list(dict.fromkeys(row[0] for row in found))
        if len(ids) > 1 and name_or_id not in ids:
            raise StoreError(
                f"{name_or_id!r} names several runs in {self.path}; give more of the run's id"
            )
        return self.run(name_or_id if name_or_id in ids else ids[0] if ids else name_or_id)

    def messages_json(self, run_id: str, after_seq: int = -1) -> list[str]:
        """The run's stored messages after ``after_seq`` as JSON texts, in order; an
        interrupted run's end with the ``run_finished`` that says so."""
        summary = self.run(run_id)
        with self._lock:
            bodies = [
                body
                for (body,) in self._connection.execute(
                    "SELECT body FROM messages WHERE run_id = ? AND seq > ? ORDER BY seq",
                    (run_id, after_seq),
                )
            ]
        if summary.status == INTERRUPTED:
            end = self.next_seq(run_id)
            if after_seq < end:
                bodies.append(_interrupted_end(summary, end))
        return bodies

    def messages(self, run_id: str, after_seq: int = -1) -> list[ServerMessage]:
        """The run's messages after ``after_seq``, as the bus streamed them."""
        from rudder.visual.stream._protocol import parse_server_message

        return [parse_server_message(body) for body in self.messages_json(run_id, after_seq)]

    def view(self, run_id: str) -> RunView:
        """The run's state, folded from its stored messages."""
        from rudder.visual.stream._view_state import RunView

        view = RunView(run_id)
        for message in self.messages(run_id):
            view.apply(message)
        return view


class _Transaction:
    """``with store._transaction() as db:``: the store's lock and one IMMEDIATE transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        self._store._lock.acquire()
        try:
            self._store._connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._store._lock.release()
            raise
        return self._store._connection

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            self._store._connection.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._store._lock.release()


def _check_id(run_id: object) -> None:
    if not isinstance(run_id, str) or not run_id:
        raise StoreError(f"a run is named by its id or name (a non-empty str), not {run_id!r}")


def _summary(row: Iterable[Any], captures: dict[str, str]) -> RunSummary:
    run_id, name, status, started, finished, error, usage, model, count, size, *writer = row
    if status == "running" and not _writer_alive(*writer):
        status = INTERRUPTED
    return RunSummary(
        id=run_id,
        name=name,
        status=status,
        started_at=started,
        finished_at=finished,
        error=error,
        usage=json.loads(usage) if usage else {},
        model=model or "",
        captures=captures,
        messages=count,
        bytes=size,
    )


def _interrupted_end(summary: RunSummary, seq: int) -> str:
    from rudder.trace._records import RunRecord
    from rudder.visual.stream._protocol import RunFinished

    record = RunRecord.model_validate(
        {
            "id": summary.id,
            "name": summary.name,
            "status": "error",
            "started_at": summary.started_at,
            "finished_at": summary.finished_at,
            "error": INTERRUPTED_ERROR,
            "usage": summary.usage or {},
        }
    )
    return RunFinished(seq=seq, run_id=summary.id, run=record).model_dump_json()


def _writer_alive(
    pid: int | None, host: str | None, started: float | None, closed_at: float | None
) -> bool:
    """Whether the process that wrote a run may still write it: it did not close the store,
    and, on this host, its pid is still the process that opened it. A writer on another
    host is taken as alive (nothing here can tell)."""
    if pid is None or closed_at is not None:
        return False
    if host != _HOST:
        return True
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, not yet reaped by its parent
        now_started = float(process.create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # another user's process holds the pid: it may be the writer
    return started is None or abs(now_started - started) < 1.0


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None
