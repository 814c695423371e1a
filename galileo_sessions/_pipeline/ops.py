"""The units the pipeline moves: a session to create, a finished trace, late spans.

An op holds wire dicts that are final except for server ids that may not be known yet (the
session's id, a previous session's id); the sender fills those in just before sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._records import SessionHandle

__all__ = ["Op", "SessionOp", "SpansOp", "TraceOp"]


@dataclass(slots=True)
class SessionOp:
    """Create (or, with ``resume``, find) the session of ``handle``."""

    handle: SessionHandle
    body: dict[str, Any]
    size: int = 512
    attempts: int = field(default=0)
    spool_path: Path | None = field(default=None)


@dataclass(slots=True)
class TraceOp:
    """A finished trace tree, sent with ``LogTracesIngestRequest``."""

    session: SessionHandle | None
    trace: dict[str, Any]
    size: int
    attempts: int = field(default=0)
    spool_path: Path | None = field(default=None)


@dataclass(slots=True)
class SpansOp:
    """Spans that ended after their trace was sent, sent with ``LogSpansIngestRequest``."""

    session: SessionHandle | None
    trace_id: str
    parent_id: str
    spans: list[dict[str, Any]]
    size: int
    attempts: int = field(default=0)
    spool_path: Path | None = field(default=None)


Op = SessionOp | TraceOp | SpansOp
