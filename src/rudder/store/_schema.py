"""The store's schema and its migrations.

The schema's version is SQLite's ``user_version``. ``MIGRATIONS[n]`` takes a store from
version ``n`` to ``n + 1``; a new store runs them all, so a store made by any earlier
rudder and a new one end with the same tables. A migration never rewrites messages: they
are the protocol's JSON, read back as they were written.
"""

from __future__ import annotations

import sqlite3

# Version 1: runs, their messages and the processes that wrote them.
_V1 = """
CREATE TABLE writers (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    process_started REAL,          -- the process's start time: a reused pid is not it
    opened_at REAL NOT NULL,
    closed_at REAL                 -- set when the process closed the store cleanly
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,          -- running, done or error, as the run's record says
    started_at REAL,
    finished_at REAL,
    error TEXT,
    usage TEXT,                    -- the run's latest usage record (JSON)
    writer_id INTEGER REFERENCES writers(id),
    messages INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_start ON runs(started_at);
CREATE TABLE messages (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,            -- the message as the protocol's JSON
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

# Version 2: what search reads without folding messages: captures as rows, a run's text
# (set when it ends; NULL while it runs or for runs written by version 1), and the models
# its generations ran on (the messages do not carry them).
_V2 = """
CREATE TABLE captures (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX captures_by_value ON captures(value);
ALTER TABLE runs ADD COLUMN text TEXT;
ALTER TABLE runs ADD COLUMN model TEXT;        -- the models its generations ran on
INSERT INTO captures (run_id, seq, name, value)
    SELECT run_id, seq, json_extract(body, '$.capture.name'), json_extract(body, '$.capture.value')
    FROM messages WHERE type = 'capture';
"""

# Version 3: what exploring a stored generation again needs (``rudder view --model``) that
# its messages do not carry: its grammar (as Lark) and the Model's sampling settings. A
# generation stored before (or on a server) has no row, and says it cannot be explored.
_V3 = """
CREATE TABLE generations (
    run_id TEXT NOT NULL,
    node_id INTEGER NOT NULL,
    grammar TEXT NOT NULL,         -- the grammar as Lark (captures, limits, temperatures)
    sampling TEXT NOT NULL,        -- the Model's Sampling as JSON
    PRIMARY KEY (run_id, node_id)
) WITHOUT ROWID;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
#: The version a store has once opened by this rudder.
SCHEMA_VERSION = len(MIGRATIONS)


def version(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection, to: int = SCHEMA_VERSION) -> int:
    """Bring the store to version ``to`` (each step in its own transaction, so a process
    that opens the store meanwhile sees one version or the next); returns the version it
    had. A store newer than ``to`` is left alone: the caller decides what that means."""
    found = version(connection)
    for step in range(found, to):
        # executescript commits first; BEGIN IMMEDIATE makes two openers take turns, and
        # the version is read again inside: the other may have migrated meanwhile.
        connection.execute("BEGIN IMMEDIATE")
        try:
            if version(connection) != step:
                connection.execute("ROLLBACK")
                continue
            for statement in _statements(MIGRATIONS[step]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {step + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return found


def _statements(script: str) -> list[str]:
    """The statements of a migration (they hold no semicolons inside literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
