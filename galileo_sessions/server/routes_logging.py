"""Session, trace and span routes: the logging API proper (galileo-wire.md §4-§6).

Every route is served twice, under ``/v2`` (the documented API and the SDK's hand-written
traces client) and without it (the generated client and the JS SDK): both forms are in use by
official clients. Bodies go to the store untouched; it validates them and raises
``IngestValidationError`` (422) or ``NotFoundError`` (404), which the app turns into
FastAPI-shaped answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from galileo_sessions.server.deps import json_body, store_of

__all__ = ["PREFIXES", "router"]

#: Both path forms the official clients use.
PREFIXES = ("/v2", "")

router = APIRouter()

_P = "/projects/{project_id}"


# --- sessions ------------------------------------------------------------------------------

async def create_session(
    request: Request,
    project_id: str,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    # Idempotency-Key lets a client retry a create whose answer it never saw without making a
    # second session: the store returns the first session for a repeated key.
    body = await json_body(request)
    return await run_in_threadpool(
        store_of(request).create_session, project_id, body, idempotency_key=idempotency_key
    )


async def search_sessions(request: Request, project_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).search_sessions, project_id, body)


async def get_session(
    request: Request,
    project_id: str,
    session_id: str,
    include_presigned_urls: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    del include_presigned_urls  # no files are stored, so there is nothing to presign
    return await run_in_threadpool(store_of(request).get_session, project_id, session_id)


# --- traces --------------------------------------------------------------------------------

async def ingest_traces(request: Request, project_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).ingest_traces, project_id, body)


async def get_trace(request: Request, project_id: str, trace_id: str) -> dict[str, Any]:
    return await run_in_threadpool(store_of(request).get_trace, project_id, trace_id)


async def update_trace(request: Request, project_id: str, trace_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).update_trace, project_id, trace_id, body)


# --- spans ---------------------------------------------------------------------------------

async def ingest_spans(request: Request, project_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).ingest_spans, project_id, body)


async def get_span(request: Request, project_id: str, span_id: str) -> dict[str, Any]:
    return await run_in_threadpool(store_of(request).get_span, project_id, span_id)


async def update_span(request: Request, project_id: str, span_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).update_span, project_id, span_id, body)


for _prefix in PREFIXES:
    _base = _prefix + _P
    router.add_api_route(f"{_base}/sessions", create_session, methods=["POST"])
    router.add_api_route(f"{_base}/sessions/search", search_sessions, methods=["POST"])
    router.add_api_route(f"{_base}/sessions/{{session_id}}", get_session, methods=["GET"])
    router.add_api_route(f"{_base}/traces", ingest_traces, methods=["POST"])
    router.add_api_route(f"{_base}/traces/{{trace_id}}", get_trace, methods=["GET"])
    router.add_api_route(f"{_base}/traces/{{trace_id}}", update_trace, methods=["PATCH"])
    router.add_api_route(f"{_base}/spans", ingest_spans, methods=["POST"])
    router.add_api_route(f"{_base}/spans/{{span_id}}", get_span, methods=["GET"])
    router.add_api_route(f"{_base}/spans/{{span_id}}", update_span, methods=["PATCH"])
