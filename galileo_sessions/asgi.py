"""``SessionMiddleware``: continue the caller's galileo session and trace in an ASGI server.

Pure ASGI (no Starlette import)::

    app = FastAPI()
    app.add_middleware(SessionMiddleware)        # or: app = SessionMiddleware(app)

For each HTTP (or WebSocket) request carrying ``gs.inject`` headers (W3C ``baggage`` /
``traceparent``, or Galileo's ``X-Galileo-Trace-ID`` / ``X-Galileo-Parent-ID``), spans made
while handling it are children of the caller's span, delivered as late spans into the
caller's trace, in the caller's session. Requests without them pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._propagation import continue_from, extract

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SessionMiddleware:
    """Wraps an ASGI app; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        remote = extract(scope.get("headers") or ())
        if remote is None:
            await self.app(scope, receive, send)
            return
        async with continue_from(remote):
            await self.app(scope, receive, send)
