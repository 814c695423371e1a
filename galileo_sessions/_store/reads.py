"""Turning stored rows back into the dicts the read routes return, and the search SQL.

Why separate from ``store.py``: these are pure functions of rows (no locking, no I/O), so the
shape of what the API returns, and the tree assembly, can be read and tested on their own.
On read the store fills ``trace_id``, ``parent_id`` and ``session_id`` from its columns, as the
real API does, because clients leave them null on nested records.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CHAIN_AHEAD_SQL", "CHAIN_BACK_SQL", "READ_INDEXES", "RECORD_COLUMNS",
           "SESSION_COLUMNS", "attach_session_extras", "build_trees", "filter_sql",
           "record_dict", "session_dict", "session_filter_sql", "trace_search_sql"]

RECORD_COLUMNS = ("seq, id, project_id, run_kind, run_id, session_id, trace_id, parent_id, "
                  "type, created_at, is_complete, data")
SESSION_COLUMNS = ("s.seq, s.id, s.project_id, s.run_kind, s.run_id, s.name, s.external_id, "
                   "s.previous_session_id, s.created_at, s.data, "
                   "(SELECT COUNT(*) FROM records r WHERE r.session_id = s.id "
                   "AND r.type = 'trace') AS num_traces")
_WITH_CHILDREN = frozenset({"trace", "workflow", "agent", "retriever", "tool"})


def record_dict(row: sqlite3.Row) -> dict[str, Any]:
    """One trace or span as the read routes return it (children not attached yet)."""
    out: dict[str, Any] = json.loads(row["data"])
    out.update(
        id=row["id"], session_id=row["session_id"], trace_id=row["trace_id"],
        parent_id=row["parent_id"], project_id=row["project_id"], run_id=row["run_id"],
    )
    if row["type"] == "trace":
        out["is_complete"] = bool(row["is_complete"])
    if row["type"] in _WITH_CHILDREN:
        out["spans"] = []
    return out


def build_trees(rows: Iterable[sqlite3.Row]) -> list[dict[str, Any]]:
    """Nest rows (ordered by created_at, then insertion) under their parents.

    Returns the roots in row order: traces, plus any record whose parent is missing (which the
    ingest checks prevent, but a tree must never silently lose a node).
    """
    ordered = [(row, record_dict(row)) for row in rows]
    nodes = {row["id"]: node for row, node in ordered}
    roots: list[dict[str, Any]] = []
    for row, node in ordered:
        parent = nodes.get(row["parent_id"]) if row["parent_id"] else None
        if parent is None and row["type"] != "trace":
            parent = nodes.get(row["trace_id"])
        if parent is not None and parent is not node:
            parent.setdefault("spans", []).append(node)
        else:
            roots.append(node)
    return roots


def session_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A session record (``ExtendedSessionRecord``-like), with ``num_traces``."""
    data: dict[str, Any] = json.loads(row["data"])
    return {
        "type": "session",
        "id": row["id"],
        "name": row["name"],
        "external_id": row["external_id"],
        "previous_session_id": row["previous_session_id"],
        "user_metadata": data.get("user_metadata") or {},
        "created_at": row["created_at"],
        "project_id": row["project_id"],
        "run_id": row["run_id"],
        f"{row['run_kind']}_id": row["run_id"],
        "num_traces": row["num_traces"],
        "logging_method": data.get("logging_method"),
        "client_version": data.get("client_version"),
    }


def filter_sql(filters: Iterable[dict[str, Any]]) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND) for validated text/id filters on session columns.

    ``ne`` and ``not_in`` match null columns too (a session without an external id is not
    equal to "x"), which is what a Python caller would expect.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for flt in filters:
        column = f"s.{flt['column']}"
        op = flt["operator"]
        value = flt["value"]
        fold = not flt["case_sensitive"]
        col = f"lower({column})" if fold else column
        values = [v.lower() if fold else v for v in (value if isinstance(value, list)
                                                         else [value])]
        if op == "eq":
            clauses.append(f"{col} = ?")
        elif op == "ne":
            clauses.append(f"({column} IS NULL OR {col} != ?)")
        elif op == "contains":
            clauses.append(f"instr({col}, ?) > 0")
        elif op == "one_of":
            clauses.append(f"{col} IN ({', '.join('?' * len(values))})" if values else "0")
        else:  # not_in
            clauses.append(f"({column} IS NULL OR {col} NOT IN ({', '.join('?' * len(values))}))"
                           if values else "1")
        params.extend(values)
    return " AND ".join(clauses) or "1", params


# -- the web view's queries (galileo_sessions.ui) ---------------------------------------------

#: Indexes the web view relies on (created by ``Store.ensure_read_indexes``).
READ_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_at)",
    "CREATE INDEX IF NOT EXISTS sessions_external_id ON sessions (external_id)",
    "CREATE INDEX IF NOT EXISTS records_type ON records (type, created_at)",
)

#: The session and its predecessors, nearest first (the session itself at depth 0).
CHAIN_BACK_SQL = """
WITH RECURSIVE back(id, prev, depth) AS (
    SELECT id, previous_session_id, 0 FROM sessions WHERE id = ?
    UNION ALL
    SELECT s.id, s.previous_session_id, back.depth + 1
    FROM sessions s JOIN back ON s.id = back.prev WHERE back.depth < ?
)
SELECT s.id, s.name, s.external_id, s.created_at
FROM back JOIN sessions s ON s.id = back.id ORDER BY back.depth
"""

#: The session and its successors (the oldest one naming each as previous), nearest first.
CHAIN_AHEAD_SQL = """
WITH RECURSIVE ahead(id, depth) AS (
    SELECT ?, 0
    UNION ALL
    SELECT (SELECT n.id FROM sessions n WHERE n.previous_session_id = ahead.id
            ORDER BY n.created_at, n.seq LIMIT 1), ahead.depth + 1
    FROM ahead WHERE ahead.id IS NOT NULL AND ahead.depth < ?
)
SELECT s.id, s.name, s.external_id, s.created_at
FROM ahead JOIN sessions s ON s.id = ahead.id ORDER BY ahead.depth
"""


def session_filter_sql(name: str | None, external_id: str | None,
                       metadata: Mapping[str, str] | None) -> tuple[str, list[Any]]:
    """Conditions on ``sessions s``: name contains (ASCII case-insensitive), external id
    equals, and each metadata key has exactly that value."""
    clauses: list[str] = []
    params: list[Any] = []
    if name:
        clauses.append("instr(lower(s.name), ?) > 0")
        params.append(name.lower())
    if external_id:
        clauses.append("s.external_id = ?")
        params.append(external_id)
    for key, value in (metadata or {}).items():
        clauses.append("EXISTS (SELECT 1 FROM json_each(s.data, '$.user_metadata') m "
                       "WHERE m.key = ? AND m.value = ?)")
        params.extend([key, value])
    return " AND ".join(clauses) or "1", params


def _ascii_safe(text: str) -> bool:
    """Whether ``text`` appears unchanged inside ``json.dumps`` output (ensure_ascii)."""
    return all(" " <= ch <= "~" and ch not in '"\\' for ch in text)


def trace_search_sql(needle: str) -> tuple[str, list[Any]]:
    """Conditions on ``records r`` for traces whose input or output contains ``needle``
    (already lower-cased). A cheap substring test on the raw JSON goes first when the needle
    would appear verbatim there, so most rows are rejected without parsing their JSON."""
    clauses = ["r.type = 'trace'"]
    params: list[Any] = []
    if _ascii_safe(needle):
        clauses.append("instr(lower(r.data), ?) > 0")
        params.append(needle)
    clauses.append("(instr(lower(json_extract(r.data, '$.input')), ?) > 0 OR "
                   "instr(lower(json_extract(r.data, '$.output')), ?) > 0)")
    params.extend([needle, needle])
    return " AND ".join(clauses), params


def attach_session_extras(conn: sqlite3.Connection, sessions: list[dict[str, Any]]) -> None:
    """Add ``num_spans``, ``num_errors``, ``previous_session`` and ``next_sessions`` to each
    session of a page (three indexed queries for the whole page)."""
    if not sessions:
        return
    ids = [s["id"] for s in sessions]
    marks = ", ".join("?" * len(ids))
    stats = {row[0]: (row[1], row[2]) for row in conn.execute(
        "SELECT session_id, SUM(type != 'trace'), "
        "SUM(COALESCE(json_extract(data, '$.status_code'), 0) >= 400) "
        f"FROM records WHERE session_id IN ({marks}) GROUP BY session_id", ids)}
    nexts: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute("SELECT id, name, previous_session_id, created_at FROM sessions "
                            f"WHERE previous_session_id IN ({marks}) "
                            "ORDER BY created_at, seq", ids):
        nexts.setdefault(row[2], []).append({"id": row[0], "name": row[1],
                                             "created_at": row[3]})
    prev_ids = sorted({s["previous_session_id"] for s in sessions if s["previous_session_id"]})
    prevs = {row[0]: {"id": row[0], "name": row[1], "created_at": row[2]} for row in
             conn.execute("SELECT id, name, created_at FROM sessions WHERE id IN "
                          f"({', '.join('?' * len(prev_ids))})", prev_ids)} if prev_ids else {}
    for s in sessions:
        spans, errors = stats.get(s["id"], (0, 0))
        s["num_spans"] = int(spans or 0)
        s["num_errors"] = int(errors or 0)
        s["next_sessions"] = nexts.get(s["id"], [])
        prev = s["previous_session_id"]
        s["previous_session"] = prevs.get(prev) if prev else None
