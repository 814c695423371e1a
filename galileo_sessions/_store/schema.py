"""The SQLite file: how it is created, opened and laid out.

Why these choices:

- The file is created by us with mode ``0600`` before SQLite touches it (SQLite gives its
  ``-wal``/``-shm`` companions the same mode), because recorded inputs and outputs may hold
  private data.
- WAL mode and a generous busy timeout let several processes (an app, the dev server, the CLI)
  share one file: readers never block the writer, and writers queue instead of failing.
- Every record keeps its full JSON in ``data`` plus a few indexed columns used for lookups,
  tree assembly and ordering; the JSON is the source of truth for the record's fields.
- ``created_at`` columns hold the canonical UTC text form, which sorts chronologically.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "open_connection"]

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0

_DDL = """
CREATE TABLE IF NOT EXISTS projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS projects_name ON projects (name);

CREATE TABLE IF NOT EXISTS log_streams (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_streams_project ON log_streams (project_id, name);

CREATE TABLE IF NOT EXISTS sessions (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    project_id           TEXT NOT NULL,
    run_kind             TEXT NOT NULL,
    run_id               TEXT NOT NULL,
    name                 TEXT,
    external_id          TEXT,
    previous_session_id  TEXT,
    created_at           TEXT NOT NULL,
    idempotency_key      TEXT,
    data                 TEXT NOT NULL,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS sessions_project ON sessions (project_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_external ON sessions (project_id, external_id);
CREATE INDEX IF NOT EXISTS sessions_previous ON sessions (previous_session_id);

CREATE TABLE IF NOT EXISTS records (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    run_kind     TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    session_id   TEXT,
    trace_id     TEXT NOT NULL,
    parent_id    TEXT,
    type         TEXT NOT NULL,
    name         TEXT,
    created_at   TEXT NOT NULL,
    ordinal      INTEGER NOT NULL,
    is_complete  INTEGER,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_trace ON records (trace_id, created_at);
CREATE INDEX IF NOT EXISTS records_session ON records (session_id, type, created_at);
CREATE INDEX IF NOT EXISTS records_parent ON records (parent_id);
CREATE INDEX IF NOT EXISTS records_project ON records (project_id, type, created_at);
"""


def _create_private_file(path: Path) -> None:
    """Create the directory (0700) and the file (0600) unless they exist; name the path on error."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise type(exc)(exc.errno, f"cannot create the local store {path}: {reason}",
                        str(path)) from exc
    os.close(fd)


def open_connection(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store at ``path`` with the schema in place.

    Raises ``OSError`` or ``sqlite3.Error`` whose message names the path: an unwritable
    directory, a file that is not a database, or a store written by a newer version.
    """
    _create_private_file(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"the local store {path} was written by a newer galileo-sessions "
                f"(schema {version}, this version reads {SCHEMA_VERSION})")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
        if str(path) in str(exc):
            raise
        raise type(exc)(f"cannot open the local store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn
