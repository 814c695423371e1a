"""Turning stored rows back into the dicts the read routes return, and the search SQL.

Why separate from ``store.py``: these are pure functions of rows (no locking, no I/O), so the
shape of what the API returns, and the tree assembly, can be read and tested on their own.
On read the store fills ``trace_id``, ``parent_id`` and ``session_id`` from its columns, as the
real API does, because clients leave them null on nested records.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

__all__ = ["RECORD_COLUMNS", "SESSION_COLUMNS", "build_trees", "filter_sql", "record_dict",
           "session_dict"]

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
