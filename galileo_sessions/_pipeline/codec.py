"""Ops to JSON and back, for the disk spool.

A spooled op must make sense in a new process, where the ``SessionHandle`` objects it
referred to no longer exist. So sessions are written with their client-side ``local_id`` and
whatever server id is already known; on reading, all ops that name the same ``local_id`` get
one shared handle, and in the process that wrote them they get the live handle back (the one
the user holds), through ``HANDLES``.
"""

from __future__ import annotations

import weakref
from typing import Any

from .._records import SessionHandle
from .ops import Op, SessionOp, SpansOp, TraceOp

__all__ = ["HANDLES", "decode", "encode"]

HANDLES: weakref.WeakValueDictionary[str, SessionHandle] = weakref.WeakValueDictionary()
"""Live session handles of this process by ``local_id``."""

_VERSION = 1


def _session_ref(handle: SessionHandle | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    HANDLES.setdefault(handle.local_id, handle)
    return {"local_id": handle.local_id, "id": handle.wait(0) if handle.resolved else None,
            "name": handle.name, "external_id": handle.external_id}


def encode(op: Op) -> dict[str, Any]:
    """A JSON-ready dict for ``op``."""
    if isinstance(op, SessionOp):
        handle = op.handle
        previous = handle.previous
        return {"v": _VERSION, "kind": "session", "session": _session_ref(handle),
                "body": op.body, "resume": handle.resume, "reliable": handle.reliable,
                "previous": _session_ref(previous),
                "previous_session_id": handle.previous_session_id_explicit}
    if isinstance(op, TraceOp):
        return {"v": _VERSION, "kind": "trace", "session": _session_ref(op.session),
                "trace": op.trace, "size": op.size}
    return {"v": _VERSION, "kind": "spans", "session": _session_ref(op.session),
            "trace_id": op.trace_id, "parent_id": op.parent_id, "spans": op.spans,
            "size": op.size}


def _handle(ref: dict[str, Any] | None, seen: dict[str, SessionHandle]) -> SessionHandle | None:
    if ref is None:
        return None
    local_id = str(ref["local_id"])
    handle = HANDLES.get(local_id) or seen.get(local_id)
    if handle is None:
        if ref.get("id"):
            handle = SessionHandle.known(str(ref["id"]), name=ref.get("name"),
                                         external_id=ref.get("external_id"))
        else:
            handle = SessionHandle(name=ref.get("name"), external_id=ref.get("external_id"),
                                   metadata=None, previous=None, previous_session_id=None,
                                   reliable=False, resume=False, chain_key=None,
                                   wait_timeout=30.0)
        handle.local_id = local_id
        HANDLES[local_id] = handle
    seen[local_id] = handle
    return handle


def decode(data: dict[str, Any], seen: dict[str, SessionHandle]) -> Op:
    """The op ``data`` describes; ``seen`` shares handles across one replay."""
    if data.get("v") != _VERSION:
        raise ValueError(f"unknown spool record version {data.get('v')!r}")
    kind = data["kind"]
    session = _handle(data.get("session"), seen)
    if kind == "session":
        assert session is not None
        session.resume = bool(data.get("resume"))
        session.reliable = bool(data.get("reliable"))
        if data.get("previous") is not None:
            session.previous = _handle(data["previous"], seen)
        session.previous_session_id_explicit = data.get("previous_session_id")
        return SessionOp(session, dict(data["body"]))
    if kind == "trace":
        return TraceOp(session, data["trace"], int(data.get("size", 1024)))
    if kind == "spans":
        return SpansOp(session, str(data["trace_id"]), str(data["parent_id"]),
                       list(data["spans"]), int(data.get("size", 1024)))
    raise ValueError(f"unknown spool record kind {kind!r}")
