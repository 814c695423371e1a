"""The local store: Galileo's write and read routes, implemented on one SQLite file.

Why it looks like an HTTP API: the embedded exporter (no credentials) and the FastAPI dev
server both call these methods with the exact request bodies Galileo takes, so the two paths
cannot drift apart and everything the store accepts would be accepted by Galileo.

Concurrency: one connection per ``Store`` guarded by a lock held only for one short SQL
transaction (validation happens before, outside the lock). Writes use ``BEGIN IMMEDIATE`` so
that several processes sharing the file queue on SQLite's busy timeout instead of failing.
After ``os.fork()`` the child opens its own connection (a SQLite handle must not cross a fork).

Counting: ingest responses report the records *in the request* (``records_count``,
``traces_count``, ``spans_count``), whether or not they were already stored. Ingest is
idempotent by record id, so a retried request gets the same answer as the first one and stores
nothing twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from galileo_sessions._store import reads, validate
from galileo_sessions._store.checks import Loc, Problems, normalize_id, now_iso
from galileo_sessions._store.records import Rec
from galileo_sessions._store.schema import open_connection
from galileo_sessions.exceptions import NotFoundError

__all__ = ["DEFAULT_STORE_PATH", "Store"]

DEFAULT_STORE_PATH = ".galileo_sessions/store.db"
_LEAVES = frozenset({"llm", "control"})


class Store:
    """Sessions, traces and spans in a SQLite file, behind Galileo-shaped methods."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []
        self._conn: sqlite3.Connection | None = open_connection(self.path)
        self._conn.row_factory = sqlite3.Row

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection. Idempotent; the store must not be used afterwards."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and os.getpid() == self._pid:
                conn.close()

    # -- connection and transactions ------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # Forked child: keep the parent's handle alive but unused, open our own.
            if self._conn is not None:
                self._inherited.append(self._conn)
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._conn = open_connection(self.path)
            self._conn.row_factory = sqlite3.Row
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"the local store {self.path} is closed")
        return self._conn

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- projects and log streams ---------------------------------------------------------------

    def find_projects(self, name: str | None = None) -> list[dict[str, Any]]:
        """Projects (ProjectDB-like dicts), oldest first; only those named ``name`` if given."""
        sql = "SELECT * FROM projects" + (" WHERE name = ?" if name is not None else "")
        with self._tx(write=False) as conn:
            rows = conn.execute(sql + " ORDER BY created_at, rowid",
                                () if name is None else (name,)).fetchall()
        return [dict(row) for row in rows]

    def create_project(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """ProjectCreate body -> ProjectDB. A second project with the same name is refused."""
        fields = validate.project_body(body)
        with self._tx(write=True) as conn:
            return _insert_project(conn, fields["name"], fields["type"])

    def get_project(self, project_id: str) -> dict[str, Any]:
        with self._tx(write=False) as conn:
            return dict(_project(conn, project_id))

    def list_log_streams(self, project_id: str, *, starting_token: int = 0,
                         limit: int = 100) -> dict[str, Any]:
        """One page of the project's log streams, oldest first (the ``paginated`` route)."""
        with self._tx(write=False) as conn:
            _project(conn, project_id)
            rows = conn.execute(
                "SELECT id FROM log_streams WHERE project_id = ? ORDER BY created_at, rowid "
                "LIMIT ? OFFSET ?",
                (normalize_id(project_id), limit + 1, starting_token)).fetchall()
            streams = [_log_stream(conn, row["id"]) for row in rows[:limit]]
        more = len(rows) > limit
        return {"log_streams": streams, "starting_token": starting_token, "limit": limit,
                "paginated": more, "next_starting_token": starting_token + limit if more else None}

    def create_log_stream(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """LogStreamCreateRequest -> LogStreamResponse. Names are unique within a project."""
        fields = validate.log_stream_body(body)
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            return _insert_log_stream(conn, project["id"], fields["name"])

    def ensure_target(self, project_name: str = "default",
                      log_stream_name: str = "default") -> tuple[str, str]:
        """Get or create the project and log stream by name: ``(project_id, log_stream_id)``."""
        with self._tx(write=True) as conn:
            row = conn.execute("SELECT id FROM projects WHERE name = ? ORDER BY created_at, "
                               "rowid LIMIT 1", (project_name,)).fetchone()
            project_id = row["id"] if row else _insert_project(conn, project_name)["id"]
            row = conn.execute("SELECT id FROM log_streams WHERE project_id = ? AND name = ? "
                               "ORDER BY created_at, rowid LIMIT 1",
                               (project_id, log_stream_name)).fetchone()
            stream_id = row["id"] if row else \
                _insert_log_stream(conn, project_id, log_stream_name)["id"]
        return project_id, stream_id

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, project_id: str, body: Mapping[str, Any], *,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        """SessionCreateRequest -> SessionCreateResponse; the same key returns the first one."""
        env, fields = validate.session_body(body)
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            _check_run(conn, project["id"], env)
            if idempotency_key is not None:
                row = conn.execute("SELECT * FROM sessions WHERE project_id = ? AND "
                                   "idempotency_key = ?",
                                   (project["id"], idempotency_key)).fetchone()
                if row is not None:
                    return _session_response(row, project)
            sid = _insert_session(conn, project["id"], env, fields, idempotency_key)
            row = conn.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
            return _session_response(row, project)

    def search_sessions(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """LogRecordsQueryRequest -> LogRecordsQueryResponse over the project's sessions."""
        query = validate.search_body(body)
        where, params = reads.filter_sql(query.filters)
        if query.env is not None:
            where += " AND s.run_kind = ? AND s.run_id = ?"
            params += [query.env.run_kind, query.env.run_id]
        direction = "ASC" if query.ascending else "DESC"
        with self._tx(write=False) as conn:
            project = _project(conn, project_id)
            rows = conn.execute(
                f"SELECT {reads.SESSION_COLUMNS} FROM sessions s WHERE s.project_id = ? AND "
                f"{where} ORDER BY s.{query.sort_column} {direction}, s.seq {direction} "
                "LIMIT ? OFFSET ?",
                [project["id"], *params, query.limit + 1, query.starting_token]).fetchall()
        records = [reads.session_dict(row) for row in rows[:query.limit]]
        more = len(rows) > query.limit
        return {"starting_token": query.starting_token, "limit": query.limit,
                "paginated": more,
                "next_starting_token": query.starting_token + query.limit if more else None,
                "last_row_id": records[-1]["id"] if records else None, "records": records}

    def get_session(self, project_id: str, session_id: str) -> dict[str, Any]:
        """A session record with ``traces``: its trace trees, oldest first."""
        with self._tx(write=False) as conn:
            project = _project(conn, project_id)
            row = conn.execute(f"SELECT {reads.SESSION_COLUMNS} FROM sessions s WHERE s.id = ? "
                               "AND s.project_id = ?",
                               (normalize_id(session_id), project["id"])).fetchone()
            if row is None:
                raise NotFoundError(f"session {session_id} not found in project {project_id}")
            rows = conn.execute(f"SELECT {reads.RECORD_COLUMNS} FROM records WHERE "
                                "session_id = ? ORDER BY created_at, seq", (row["id"],))
            traces = [t for t in reads.build_trees(rows) if t["type"] == "trace"]
        return {**reads.session_dict(row), "traces": traces}

    def list_sessions(self, *, project_id: str | None = None, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """Session records, newest first, each with ``num_traces``; all projects by default."""
        where, params = ("s.project_id = ?", [normalize_id(project_id)]) if project_id \
            else ("1", [])
        with self._tx(write=False) as conn:
            rows = conn.execute(f"SELECT {reads.SESSION_COLUMNS} FROM sessions s WHERE {where} "
                                "ORDER BY s.created_at DESC, s.seq DESC LIMIT ? OFFSET ?",
                                [*params, limit, offset]).fetchall()
        return [reads.session_dict(row) for row in rows]

    def find_sessions_by_prefix(self, prefix: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Sessions whose id starts with ``prefix`` (case-insensitive), for the CLI."""
        pattern = prefix.strip().lower().replace("\\", "").replace("%", "").replace("_", "")
        with self._tx(write=False) as conn:
            rows = conn.execute(f"SELECT {reads.SESSION_COLUMNS} FROM sessions s WHERE "
                                "substr(s.id, 1, ?) = ? ORDER BY s.created_at DESC LIMIT ?",
                                (len(pattern), pattern, limit)).fetchall()
        return [reads.session_dict(row) for row in rows]

    # -- traces and spans -----------------------------------------------------------------------

    def ingest_traces(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """LogTracesIngestRequest -> LogTracesIngestResponse (wire section 5).

        ``session_external_id`` without ``session_id`` files the traces under the newest
        session of that external id in the log stream, creating one if there is none.
        """
        req = validate.traces_body(body)
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            _check_run(conn, project["id"], req.env)
            session_id = req.session_id
            if session_id is not None:
                _session_exists(conn, project["id"], session_id)
            elif req.session_external_id is not None:
                session_id = _session_for_external_id(conn, project["id"], req.env,
                                                      req.session_external_id)
            for i, trace in enumerate(req.traces):
                own = trace.data["session_id"]
                if own is not None and own != session_id:
                    _session_exists(conn, project["id"], own)
                _insert_tree(conn, trace, project["id"], req.env, session_id=own or session_id,
                             trace_id=trace.id, parent_id=None, ordinal=i,
                             is_complete=req.is_complete)
        records = sum(t.count() for t in req.traces)
        out: dict[str, Any] = {
            "project_id": project["id"], "project_name": project["name"], **req.env.ids(),
            "session_id": session_id, "records_count": records,
            "traces_count": len(req.traces), "spans_count": records - len(req.traces),
        }
        if req.include_trace_ids:
            out["trace_ids"] = [t.id for t in req.traces]
        return out

    def ingest_spans(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """LogSpansIngestRequest -> LogSpansIngestResponse; spans attach under ``parent_id``."""
        req = validate.spans_body(body)
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            _check_run(conn, project["id"], req.env)
            trace = _record_row(conn, project["id"], req.trace_id, env=req.env, trace=True)
            if req.parent_id != req.trace_id:
                parent = conn.execute("SELECT type FROM records WHERE id = ? AND trace_id = ?",
                                      (req.parent_id, req.trace_id)).fetchone()
                if parent is None:
                    raise NotFoundError(f"parent {req.parent_id} not found in trace "
                                        f"{req.trace_id}")
                if parent["type"] in _LEAVES:
                    p = Problems()
                    p.add(Loc() / "parent_id", f"parent_id {req.parent_id} is a "
                          f"{parent['type']} span, which cannot have child spans", "value_error")
                    p.raise_if_any()
            for i, span in enumerate(req.spans):
                _insert_tree(conn, span, project["id"], req.env,
                             session_id=trace["session_id"], trace_id=req.trace_id,
                             parent_id=req.parent_id, ordinal=i, is_complete=None)
        return {"project_id": project["id"], "project_name": project["name"], **req.env.ids(),
                "records_count": sum(s.count() for s in req.spans), "trace_id": req.trace_id,
                "parent_id": req.parent_id, "session_id": trace["session_id"]}

    def update_trace(self, project_id: str, trace_id: str,
                     body: Mapping[str, Any]) -> dict[str, Any]:
        """LogTraceUpdateRequest (PATCH): overwrite given fields, add tags, set completeness."""
        env, changes = validate.trace_update_body(body, normalize_id(trace_id))
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            row = _record_row(conn, project["id"], trace_id, env=env, trace=True)
            complete = changes.pop("is_complete", None)
            _update_row(conn, row, changes, complete)
        return {"project_id": project["id"], "project_name": project["name"], **env.ids(),
                "records_count": 1, "trace_id": row["id"], "session_id": row["session_id"]}

    def update_span(self, project_id: str, span_id: str,
                    body: Mapping[str, Any]) -> dict[str, Any]:
        """LogSpanUpdateRequest (PATCH): overwrite given fields, add tags."""
        env, changes = validate.span_update_body(body, normalize_id(span_id))
        with self._tx(write=True) as conn:
            project = _project(conn, project_id)
            row = _record_row(conn, project["id"], span_id, env=env, trace=False)
            _update_row(conn, row, changes, None)
        return {"project_id": project["id"], "project_name": project["name"], **env.ids(),
                "records_count": 1, "span_id": row["id"], "trace_id": row["trace_id"],
                "session_id": row["session_id"]}

    # -- read side ------------------------------------------------------------------------------

    def get_trace(self, project_id: str, trace_id: str) -> dict[str, Any]:
        """A trace with its nested ``spans``; children in created_at, then insertion order."""
        with self._tx(write=False) as conn:
            project = _project(conn, project_id)
            row = _record_row(conn, project["id"], trace_id, env=None, trace=True)
            rows = conn.execute(f"SELECT {reads.RECORD_COLUMNS} FROM records WHERE "
                                "trace_id = ? ORDER BY created_at, seq", (row["id"],))
            roots = reads.build_trees(rows)
        return next(t for t in roots if t["id"] == row["id"])

    def get_span(self, project_id: str, span_id: str) -> dict[str, Any]:
        """A span (with its own subtree under ``spans`` when its type has children)."""
        with self._tx(write=False) as conn:
            project = _project(conn, project_id)
            row = _record_row(conn, project["id"], span_id, env=None, trace=False)
            rows = conn.execute(f"SELECT {reads.RECORD_COLUMNS} FROM records WHERE "
                                "trace_id = ? ORDER BY created_at, seq", (row["trace_id"],))
            roots = reads.build_trees(rows)
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node["id"] == row["id"]:
                return node
            stack.extend(node.get("spans", ()))
        raise NotFoundError(f"span {span_id} not found")  # pragma: no cover - rows agree

    def counts(self) -> dict[str, int]:
        """How many sessions, traces and spans the whole file holds."""
        with self._tx(write=False) as conn:
            sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            traces, total = conn.execute(
                "SELECT COALESCE(SUM(type = 'trace'), 0), COUNT(*) FROM records").fetchone()
        return {"sessions": sessions, "traces": traces, "spans": total - traces}

    # -- read side for the web view (galileo_sessions.ui) ---------------------------------------

    def ensure_read_indexes(self) -> None:
        """Create the extra indexes the web view's queries use (idempotent, quick when present).

        Kept out of the schema DDL so that existing stores get them too: newest-first listing
        over all projects (``sessions.created_at``) and trace-only scans for search
        (``records.type``).
        """
        with self._tx(write=True) as conn:
            for sql in reads.READ_INDEXES:
                conn.execute(sql)

    def page_sessions(self, *, name: str | None = None, external_id: str | None = None,
                      metadata: Mapping[str, str] | None = None, limit: int = 50,
                      offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """One page of sessions (newest first, all projects) matching the filters, and the total.

        ``name`` matches case-insensitively as a substring, ``external_id`` exactly, and each
        ``metadata`` item as an exact key/value pair. Every session comes with ``num_spans``,
        ``num_errors`` and ``next_sessions`` (the sessions naming it as their previous one).
        """
        where, params = reads.session_filter_sql(name, external_id, metadata)
        with self._tx(write=False) as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM sessions s WHERE {where}",
                                 params).fetchone()[0]
            rows = conn.execute(f"SELECT {reads.SESSION_COLUMNS} FROM sessions s WHERE {where} "
                                "ORDER BY s.created_at DESC, s.seq DESC LIMIT ? OFFSET ?",
                                [*params, limit, offset]).fetchall()
            sessions = [reads.session_dict(row) for row in rows]
            reads.attach_session_extras(conn, sessions)
        return sessions, int(total)

    def get_session_by_id(self, session_id: str) -> dict[str, Any]:
        """``get_session`` for a full session id in any project (``NotFoundError`` if none)."""
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT project_id FROM sessions WHERE id = ?",
                               (normalize_id(session_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"session {session_id} not found")
        return self.get_session(row["project_id"], session_id)

    def session_chain(self, session_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The chain through a session, oldest first: up to ``limit`` sessions each way.

        Walks ``previous_session_id`` back, and forward through the oldest session naming each
        one as its previous. Each item has ``id``, ``name``, ``external_id``, ``created_at``.
        """
        sid = normalize_id(session_id)
        with self._tx(write=False) as conn:
            back = conn.execute(reads.CHAIN_BACK_SQL, (sid, limit)).fetchall()
            ahead = conn.execute(reads.CHAIN_AHEAD_SQL, (sid, limit)).fetchall()
        older = [dict(r) for r in reversed(back)]
        newer = [dict(r) for r in ahead[1:]]
        return older + newer

    def search_traces(self, text: str, *, limit: int = 50,
                      offset: int = 0) -> tuple[list[dict[str, Any]], bool]:
        """Traces whose input or output contains ``text`` (ASCII case-insensitive), newest
        first: ``(page, more)``. Each has ``id``, ``name``, ``session_id``, ``session_name``,
        ``created_at``, ``input``, ``output`` (as text) and ``status_code``."""
        needle = text.lower()
        where, params = reads.trace_search_sql(needle)
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT r.id, r.session_id, r.name, r.created_at, "
                "json_extract(r.data, '$.input') AS input, "
                "json_extract(r.data, '$.output') AS output, "
                "json_extract(r.data, '$.status_code') AS status_code, s.name AS session_name "
                f"FROM records r LEFT JOIN sessions s ON s.id = r.session_id WHERE {where} "
                "ORDER BY r.created_at DESC, r.seq DESC LIMIT ? OFFSET ?",
                [*params, limit + 1, offset]).fetchall()
        return [dict(row) for row in rows[:limit]], len(rows) > limit

    def session_version(self, session_id: str) -> str:
        """A token that changes whenever a record of the session is added or updated."""
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0), COALESCE(SUM(length(data)), 0) "
                "FROM records WHERE session_id = ?", (normalize_id(session_id),)).fetchone()
        return f"{row[0]}.{row[1]}.{row[2]}"

    def latest_session_seq(self) -> int:
        """The insertion number of the newest session (0 when empty): "anything new?"."""
        with self._tx(write=False) as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM sessions").fetchone()[0])


# -- helpers running inside a transaction --------------------------------------------------------

def _project(conn: sqlite3.Connection, project_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM projects WHERE id = ?",
                                           (normalize_id(project_id),)).fetchone()
    if row is None:
        raise NotFoundError(f"project {project_id} not found")
    return row


def _insert_project(conn: sqlite3.Connection, name: str, kind: str = "gen_ai") -> dict[str, Any]:
    if conn.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
        p = Problems()
        p.add(Loc() / "name", f"a project named {name!r} already exists", "value_error")
        p.raise_if_any()
    now = now_iso()
    project = {"id": str(uuid.uuid4()), "name": name, "type": kind, "created_at": now,
               "updated_at": now}
    conn.execute("INSERT INTO projects (id, name, type, created_at, updated_at) "
                 "VALUES (:id, :name, :type, :created_at, :updated_at)", project)
    return project


def _insert_log_stream(conn: sqlite3.Connection, project_id: str, name: str) -> dict[str, Any]:
    if conn.execute("SELECT 1 FROM log_streams WHERE project_id = ? AND name = ?",
                    (project_id, name)).fetchone():
        p = Problems()
        p.add(Loc() / "name", f"a log stream named {name!r} already exists in this project",
              "value_error")
        p.raise_if_any()
    now = now_iso()
    stream_id = str(uuid.uuid4())
    conn.execute("INSERT INTO log_streams (id, project_id, name, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?)", (stream_id, project_id, name, now, now))
    return _log_stream(conn, stream_id)


def _log_stream(conn: sqlite3.Connection, stream_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT l.*, "
        "(SELECT COUNT(*) FROM records r WHERE r.run_id = l.id AND r.type = 'trace') AS nt, "
        "(SELECT COUNT(*) FROM records r WHERE r.run_id = l.id AND r.type != 'trace') AS ns, "
        "EXISTS (SELECT 1 FROM sessions s WHERE s.run_id = l.id) AS hs "
        "FROM log_streams l WHERE l.id = ?", (stream_id,)).fetchone()
    return {"id": row["id"], "created_at": row["created_at"], "updated_at": row["updated_at"],
            "name": row["name"], "project_id": row["project_id"], "created_by": None,
            "num_traces": row["nt"], "num_spans": row["ns"],
            "has_user_created_sessions": bool(row["hs"])}


def _check_run(conn: sqlite3.Connection, project_id: str, env: validate.Envelope) -> None:
    """A log stream must exist in the project; experiments are not tracked by the store."""
    if env.run_kind == "log_stream" and conn.execute(
            "SELECT 1 FROM log_streams WHERE id = ? AND project_id = ?",
            (env.run_id, project_id)).fetchone() is None:
        raise NotFoundError(f"log stream {env.run_id} not found in project {project_id}")


def _insert_session(conn: sqlite3.Connection, project_id: str, env: validate.Envelope,
                    fields: Mapping[str, Any], idempotency_key: str | None) -> str:
    sid = str(uuid.uuid4())
    data = {"user_metadata": fields.get("user_metadata"), "logging_method": env.logging_method,
            "client_version": env.client_version, "reliable": env.reliable}
    conn.execute(
        "INSERT INTO sessions (id, project_id, run_kind, run_id, name, external_id, "
        "previous_session_id, created_at, idempotency_key, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sid, project_id, env.run_kind, env.run_id, fields.get("name"),
         fields.get("external_id"), fields.get("previous_session_id"), now_iso(),
         idempotency_key, json.dumps(data)))
    return sid


def _session_response(row: sqlite3.Row, project: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "project_id": project["id"],
            "project_name": project["name"], "previous_session_id": row["previous_session_id"],
            "external_id": row["external_id"], f"{row['run_kind']}_id": row["run_id"]}


def _session_exists(conn: sqlite3.Connection, project_id: str, session_id: str) -> None:
    if conn.execute("SELECT 1 FROM sessions WHERE id = ? AND project_id = ?",
                    (session_id, project_id)).fetchone() is None:
        raise NotFoundError(f"session {session_id} not found in project {project_id}")


def _session_for_external_id(conn: sqlite3.Connection, project_id: str,
                             env: validate.Envelope, external_id: str) -> str:
    row = conn.execute("SELECT id FROM sessions WHERE project_id = ? AND run_id = ? AND "
                       "external_id = ? ORDER BY created_at DESC, seq DESC LIMIT 1",
                       (project_id, env.run_id, external_id)).fetchone()
    if row is not None:
        return str(row["id"])
    return _insert_session(conn, project_id, env, {"external_id": external_id}, None)


def _record_row(conn: sqlite3.Connection, project_id: str, record_id: str, *,
                env: validate.Envelope | None, trace: bool) -> sqlite3.Row:
    kind = "trace" if trace else "span"
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {reads.RECORD_COLUMNS} FROM records WHERE id = ? AND project_id = ? AND "
        f"(type = 'trace') = ?", (normalize_id(record_id), project_id, trace)).fetchone()
    if row is None or (env is not None and row["run_id"] != env.run_id):
        where = f" in {env.run_kind.replace('_', ' ')} {env.run_id}" if env else ""
        raise NotFoundError(f"{kind} {record_id} not found{where}")
    return row


def _insert_tree(conn: sqlite3.Connection, rec: Rec, project_id: str, env: validate.Envelope,
                 *, session_id: str | None, trace_id: str, parent_id: str | None,
                 ordinal: int, is_complete: bool | None) -> None:
    """Store ``rec`` and its descendants; records whose id is already stored are kept as is."""
    data = dict(rec.data)
    data.update(session_id=session_id, trace_id=trace_id, parent_id=parent_id)
    cur = conn.execute(
        "INSERT OR IGNORE INTO records (id, project_id, run_kind, run_id, session_id, trace_id, "
        "parent_id, type, name, created_at, ordinal, is_complete, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rec.id, project_id, env.run_kind, env.run_id, session_id, trace_id, parent_id,
         data["type"], data["name"], data["created_at"], ordinal, is_complete,
         json.dumps(data)))
    if cur.rowcount == 0:
        # Already stored (a retry): children go under the stored copy's trace and session.
        stored = conn.execute("SELECT session_id, trace_id FROM records WHERE id = ?",
                              (rec.id,)).fetchone()
        session_id, trace_id = stored["session_id"], stored["trace_id"]
    for i, child in enumerate(rec.children):
        _insert_tree(conn, child, project_id, env, session_id=session_id, trace_id=trace_id,
                     parent_id=rec.id, ordinal=i, is_complete=None)


def _update_row(conn: sqlite3.Connection, row: sqlite3.Row, changes: Mapping[str, Any],
                complete: bool | None) -> None:
    data: dict[str, Any] = json.loads(row["data"])
    for key, value in changes.items():
        if key == "duration_ns":
            data["metrics"] = {**(data.get("metrics") or {}), "duration_ns": value}
        elif key == "tags":
            data["tags"] = [*data.get("tags", []),
                            *(t for t in value if t not in data.get("tags", []))]
        else:
            data[key] = value
    conn.execute("UPDATE records SET data = ?, is_complete = COALESCE(?, is_complete) "
                 "WHERE id = ?", (json.dumps(data), complete, row["id"]))
