"""The embedded default exporter: request bodies go straight into the local SQLite store.

It calls the same ``Store`` ingest functions as the dev server's routes, so the local path
and the HTTP path validate and store records identically. A store that cannot be written
(read-only folder, full disk) surfaces as ``ApiConnectionError`` so the pipeline keeps the
records and retries, and the reason is logged once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from .._exporter import Route, Target
from .._internal import log_once
from ..exceptions import ApiConnectionError

__all__ = ["LocalExporter"]


class LocalExporter:
    """Implements ``Exporter`` on a ``Store`` file, opened on first use."""

    kind = "local"

    def __init__(self, path: str, *, project: str = "default", log_stream: str = "default",
                 project_id: str | None = None, log_stream_id: str | None = None,
                 experiment_id: str | None = None) -> None:
        self.path = path
        self._project = project
        self._log_stream = log_stream
        self._project_id = project_id
        self._log_stream_id = log_stream_id
        self._experiment_id = experiment_id
        self._store: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    from .._store import Store  # sqlite3 is imported only when needed

                    self._store = Store(self.path)
                store = self._store
        return store

    def _guard(self, what: str, exc: BaseException) -> ApiConnectionError:
        log_once(f"local-store:{type(exc).__name__}", logging.ERROR,
                 "galileo_sessions: cannot write the local store %s (%s: %s); records are kept "
                 "in memory and retried", self.path, type(exc).__name__, exc)
        return ApiConnectionError(f"local store {self.path}: {what}: {exc}")

    def resolve_target(self) -> Target:
        try:
            store = self._open()
            if self._project_id is not None:
                project_id = self._project_id
            else:
                project_id, log_stream_id = store.ensure_target(self._project, self._log_stream)
                if self._log_stream_id is None and self._experiment_id is None:
                    return Target(project_id, log_stream_id=log_stream_id)
            if self._experiment_id is not None:
                return Target(project_id, experiment_id=self._experiment_id)
            if self._log_stream_id is not None:
                return Target(project_id, log_stream_id=self._log_stream_id)
            _, log_stream_id = store.ensure_target(self._project, self._log_stream)
            return Target(project_id, log_stream_id=log_stream_id)
        except (sqlite3.Error, OSError) as exc:
            raise self._guard("open", exc) from exc

    def send(self, route: Route, target: Target, body: dict[str, Any], *,
             idempotency_key: str | None = None) -> dict[str, Any]:
        try:
            store = self._open()
            pid = target.project_id
            if route is Route.SESSIONS:
                result: dict[str, Any] = store.create_session(pid, body,
                                                              idempotency_key=idempotency_key)
            elif route is Route.SESSIONS_SEARCH:
                result = store.search_sessions(pid, body)
            elif route is Route.TRACES:
                result = store.ingest_traces(pid, body)
            else:
                result = store.ingest_spans(pid, body)
            return result
        except (sqlite3.Error, OSError) as exc:
            raise self._guard(route.value, exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
