"""galileo_sessions: sessions, traces and spans for LLM agents, delivered to Galileo.

::

    import galileo_sessions as gs

    @gs.session("support", external_id=lambda user_id, msg: user_id)
    @gs.trace
    def handle_turn(user_id: str, msg: str) -> str: ...

With no API key and no API URL, records go to a local SQLite store
(``.galileo_sessions/store.db``); ``galileo-sessions sessions`` lists them.
The public API is exactly the names in ``__all__``; everything else is private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._chainstore import ChainStore, InMemoryChainStore, SQLiteChainStore
from ._decorators import Instrument, SpanType, log, span, trace
from ._handles import SpanHandle, current_span
from ._pipeline.stats import FlushResult
from ._propagation import RemoteContext, continue_from, extract, inject
from ._records import SessionHandle
from ._runtime import configure, flush, shutdown, stats
from ._session import SessionScope, current_session, session
from ._threads import ContextExecutor, instrument_threads, uninstrument_threads, wrap
from .exceptions import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    ConfigError,
    DeliveryError,
    GalileoSessionsError,
)

__version__ = "0.1.0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "ApiTimeoutError",
    "ChainStore",
    "ConfigError",
    "ContextExecutor",
    "DeliveryError",
    "FlushResult",
    "GalileoSessionsError",
    "InMemoryChainStore",
    "Instrument",
    "RemoteContext",
    "SQLiteChainStore",
    "SessionHandle",
    "SessionScope",
    "SpanHandle",
    "SpanType",
    "__version__",
    "aflush",
    "configure",
    "continue_from",
    "current_session",
    "current_span",
    "extract",
    "flush",
    "inject",
    "instrument_threads",
    "log",
    "session",
    "shutdown",
    "span",
    "stats",
    "testing",
    "trace",
    "uninstrument_threads",
    "wrap",
]


if TYPE_CHECKING:
    from . import testing


async def aflush(timeout: float | None = None) -> FlushResult:
    """``flush`` for async code: waits in a thread, so the event loop keeps running."""
    import asyncio

    return await asyncio.to_thread(flush, timeout)


def __getattr__(name: str) -> Any:
    # ``gs.testing`` is imported on first use, keeping ``import galileo_sessions`` light.
    if name == "testing":
        import importlib

        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
