"""Where each chain remembers its latest session, so the next one links to it.

A chain key (see ``session()``) maps to the last ``SessionHandle`` opened on that chain.
``InMemoryChainStore`` is the default: one process, thread-safe. ``SQLiteChainStore`` keeps
the links in a file so several worker processes of one server share their chains; it stores
server ids, which in fire-and-forget mode arrive in the background, so a handle is written
to the file once its id is known (and kept in memory until then).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._records import SessionHandle

__all__ = ["ChainStore", "InMemoryChainStore", "SQLiteChainStore"]


@runtime_checkable
class ChainStore(Protocol):
    """Maps a chain key to the latest session handle on that chain."""

    def get(self, key: str) -> SessionHandle | None: ...

    def set(self, key: str, handle: SessionHandle) -> None: ...


class InMemoryChainStore:
    """The default chain store: a dict behind a lock, for one process."""

    def __init__(self) -> None:
        self._latest: dict[str, SessionHandle] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> SessionHandle | None:
        with self._lock:
            return self._latest.get(key)

    def set(self, key: str, handle: SessionHandle) -> None:
        with self._lock:
            self._latest[key] = handle

    def swap(self, key: str, handle: SessionHandle) -> SessionHandle | None:
        """Atomically make ``handle`` the latest and return the one it replaces."""
        with self._lock:
            previous = self._latest.get(key)
            self._latest[key] = handle
            return previous


class SQLiteChainStore:
    """Chains in a SQLite file shared by several processes (e.g. gunicorn workers).

    ``get`` prefers a handle this process set whose id is still on its way; otherwise it
    reads the newest id recorded for the key. Writes happen when the id is known, on
    whichever thread learns it (the pipeline's worker in fire-and-forget mode).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import sqlite3

        self.path = Path(path)
        self._local: dict[str, SessionHandle] = {}
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False,
                                   isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS chains (key TEXT PRIMARY KEY, "
                             "session_id TEXT NOT NULL, name TEXT, external_id TEXT, "
                             "updated_at REAL NOT NULL)")

    def get(self, key: str) -> SessionHandle | None:
        with self._lock:
            local = self._local.get(key)
            if local is not None and local.error is None:
                return local
            row = self._db.execute(
                "SELECT session_id, name, external_id FROM chains WHERE key = ?",
                (key,)).fetchone()
        if row is None:
            return None
        return SessionHandle.known(row[0], name=row[1], external_id=row[2])

    def set(self, key: str, handle: SessionHandle) -> None:
        with self._lock:
            self._local[key] = handle
        handle.on_resolve(lambda resolved: self._persist(key, resolved))

    def _persist(self, key: str, handle: SessionHandle) -> None:
        session_id = handle.wait(0)
        with self._lock:
            if self._local.get(key) is handle:
                del self._local[key]
            if session_id is None:
                return
            self._db.execute(
                "INSERT INTO chains (key, session_id, name, external_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "session_id = excluded.session_id, name = excluded.name, "
                "external_id = excluded.external_id, updated_at = excluded.updated_at",
                (key, session_id, handle.name, handle.external_id, time.time()))

    def close(self) -> None:
        with self._lock:
            self._db.close()
