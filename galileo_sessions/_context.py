"""The two ContextVars that carry the current session and the current span.

They live in ``contextvars`` so each thread and each asyncio task sees its own values, and
``contextvars.copy_context()`` (used by ``wrap`` and ``ContextExecutor``) carries them into
worker threads. Entering sets a var and keeps the token; leaving resets it in ``finally``.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._records import SessionHandle, SpanNode

__all__ = ["current_session_var", "current_span_var"]

current_session_var: ContextVar[SessionHandle | None] = ContextVar(
    "galileo_sessions.session", default=None)
current_span_var: ContextVar[SpanNode | None] = ContextVar(
    "galileo_sessions.span", default=None)
