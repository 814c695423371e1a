"""The raw ASGI layer in front of the FastAPI app: record, inject faults, check credentials.

It runs *outside* Starlette's middleware stack on purpose. Starlette's error middleware wraps
``send``, and a dropped connection needs the server's own ``send``: under uvicorn that is a
bound method of the request cycle, whose transport we abort so the client sees the connection
close with no response at all (httpx: ``RemoteProtocolError``/``ReadError``), which is what a
crashed load balancer or a killed pod looks like. Raising from the app instead would make
uvicorn answer 500, and returning without a response makes it log an error and answer 500.

Order per request: buffer the body (so the log holds it even when the request is faulted),
apply the fault decision (delay, drop, status), check credentials, then hand over to FastAPI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from galileo_sessions.server.state import RequestRecord, ServerState, decode_body, redact_headers

__all__ = ["MAX_BODY_BYTES", "ConnectionDroppedError", "handle_http"]

#: Bodies above this size are refused with 413 before anything else happens.
MAX_BODY_BYTES = 64 * 1024 * 1024


class ConnectionDroppedError(ConnectionError):
    """Raised to drop a connection under a server whose transport we cannot reach."""


async def handle_http(scope: Scope, receive: Receive, send: Send, *, state: ServerState,
                      inner: ASGIApp) -> None:
    """Serve one HTTP request through the front door, then ``inner`` (the FastAPI app)."""
    method: str = scope["method"]
    path: str = scope["path"]
    raw_body, size, complete = await _read_body(receive)
    if not complete:  # the client went away mid-body: nobody to answer
        return
    record = state.requests.start(
        method=method,
        path=path,
        query=scope.get("query_string", b"").decode("latin-1"),
        route=_route_template(state.route_table, scope),
        headers=redact_headers(scope.get("headers", [])),
        body=decode_body(raw_body),
        # admin calls are counted but kept out of the log, so tests read only their traffic
        keep=not path.startswith("/_admin"),
    )
    outcome = "error"

    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status = int(message["status"])
        await send(message)

    try:
        if size > MAX_BODY_BYTES:
            outcome = "too_large"
            await _send_json(recording_send, 413, {"detail": "Request body too large"})
            return
        decision = state.faults.decide(method, path)
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.drop:
            outcome = "dropped"
            await _drop_connection(send)
            return
        if decision.status is not None:
            outcome = "fault"
            await _send_json(
                recording_send, decision.status,
                {"detail": f"Injected fault: HTTP {decision.status}"}, decision.headers,
            )
            return
        headers = dict(_lower_headers(scope))
        if not state.auth.allows(path, headers):
            outcome = "unauthorized"
            await _send_json(
                recording_send, 401,
                {"detail": "Invalid or missing credentials: send Galileo-API-Key or a bearer "
                           "token from POST /login/api_key"},
                {"WWW-Authenticate": "Bearer"},
            )
            return
        await inner(scope, _replay(raw_body, receive), recording_send)
        outcome = "ok"
    finally:
        _finish(state, record, outcome)


def _finish(state: ServerState, record: RequestRecord, outcome: str) -> None:
    if outcome == "dropped":
        record.status = None
    state.requests.finish(record, outcome)


async def _read_body(receive: Receive) -> tuple[bytes, int, bool]:
    """The body (at most ``MAX_BODY_BYTES`` of it), its full size, and whether it completed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), size, False
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size, True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the server's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _lower_headers(scope: Scope) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1").lower(), v.decode("latin-1"))
        for k, v in scope.get("headers", [])
    ]


def _route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The matched route's path template (``/v2/projects/{project_id}/traces``) for counters.

    Matched here, before dispatch, because faulted and refused requests never reach the
    router, and they are the ones a reliability test most wants counted.
    """
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        template: str | None = getattr(route, "path", None)
        if match is Match.FULL and template is not None:
            return template
        if match is Match.PARTIAL and partial is None:
            partial = template
    return partial or "<unmatched>"


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
    ]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _drop_connection(send: Send) -> None:
    """Close the client's connection without writing a single byte of response.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the transport.
    Aborting it makes uvicorn mark the cycle disconnected, so it neither logs an error nor
    tries to answer 500 when we return. Under any other server we raise instead.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    abort: Callable[[], None] | None = getattr(transport, "abort", None)
    if abort is None:
        raise ConnectionDroppedError("fault injection: connection dropped")
    abort()
    # connection_lost runs on a later loop iteration; wait for it so uvicorn stays quiet.
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)

