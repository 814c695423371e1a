"""Delivery: records go from the caller into a pipeline, and from there to an exporter.

``Pipeline`` is the facade the rest of the library uses. Fire-and-forget records go through
the ``Worker`` (a background thread); reliable records are sent on the caller's thread by the
``Sender``, which both share. See ``docs/architecture.md`` for the whole picture.
"""

from .ops import Op, SessionOp, SpansOp, TraceOp
from .pipeline import Pipeline
from .stats import FlushResult, Stats

__all__ = ["FlushResult", "Op", "Pipeline", "SessionOp", "SpansOp", "Stats", "TraceOp"]
