"""Project and log-stream routes: how clients turn names into ids (galileo-wire.md §8).

The official SDK looks a project up by name (``GET /projects?project_name=&type=gen_ai``) and
creates it when the list is empty; then it pages through ``/log_streams/paginated`` matching
the name itself and creates the log stream when nothing matches. We serve exactly that, plus the
plain list/get forms the generated client and the docs use.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from galileo_sessions.exceptions import NotFoundError
from galileo_sessions.server.auth import DEV_USER
from galileo_sessions.server.deps import json_body, store_of

__all__ = ["router"]

router = APIRouter()

_PAGE = 1000  # page size used when a route has to walk every log stream


@router.get("/projects")
async def list_projects(
    request: Request,
    project_name: Annotated[str | None, Query()] = None,
    type: Annotated[str | None, Query()] = None,  # the wire name shadows the builtin
) -> list[dict[str, Any]]:
    projects = await run_in_threadpool(store_of(request).find_projects, project_name)
    return [project_db(p) for p in projects if type is None or p.get("type") == type]


@router.get("/projects/all")
async def all_projects(request: Request) -> list[dict[str, Any]]:
    return [project_db(p) for p in await run_in_threadpool(store_of(request).find_projects, None)]


@router.post("/projects")
async def create_project(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    # The official SDK sends "created_by": null (wire §8 observed body); the creator is
    # whoever is logged in, so a null here carries nothing and is not the store's business.
    if body.get("created_by", ...) is None:
        del body["created_by"]
    return project_db(await run_in_threadpool(store_of(request).create_project, body))


@router.get("/projects/{project_id}")
@router.get("/v2/projects/{project_id}")
async def get_project(request: Request, project_id: str) -> dict[str, Any]:
    return project_db(await run_in_threadpool(store_of(request).get_project, project_id))


def project_db(project: dict[str, Any]) -> dict[str, Any]:
    """A store project completed to the ``ProjectDB`` shape the official generated client
    parses: it requires ``created_by``, ``created_by_user`` and ``runs`` to be present."""
    user = {k: DEV_USER[k] for k in ("id", "email", "first_name", "last_name")}
    return {"created_by": DEV_USER["id"], "created_by_user": user, "runs": [],
            "permissions": [], **project}


@router.get("/projects/{project_id}/log_streams/paginated")
async def log_streams_paginated(
    request: Request,
    project_id: str,
    starting_token: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    include_counts: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    del include_counts  # counts are not tracked per log stream; accepted for compatibility
    return await run_in_threadpool(
        store_of(request).list_log_streams, project_id,
        starting_token=starting_token, limit=limit,
    )


@router.get("/projects/{project_id}/log_streams")
async def list_log_streams(request: Request, project_id: str) -> list[dict[str, Any]]:
    return await run_in_threadpool(_all_log_streams, request, project_id)


@router.post("/projects/{project_id}/log_streams")
async def create_log_stream(request: Request, project_id: str) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(store_of(request).create_log_stream, project_id, body)


@router.get("/projects/{project_id}/log_streams/{log_stream_id}")
async def get_log_stream(request: Request, project_id: str, log_stream_id: str) -> dict[str, Any]:
    streams = await run_in_threadpool(_all_log_streams, request, project_id)
    for stream in streams:
        if stream.get("id") == log_stream_id:
            return stream
    raise NotFoundError(f"Log stream {log_stream_id} not found in project {project_id}")


@router.post("/v2/projects/{project_id}/log_streams/search")
async def search_log_streams(request: Request, project_id: str) -> dict[str, Any]:
    """A small subset of ``LogStreamSearchRequest``: name filters, offset pagination."""
    body = await json_body(request)
    streams = await run_in_threadpool(_all_log_streams, request, project_id)
    filters = body.get("filters") or []
    if isinstance(filters, list):
        streams = [s for s in streams if all(_name_filter_matches(f, s) for f in filters)]
    start = _int_or(body.get("starting_token"), 0)
    limit = _int_or(body.get("limit"), 100)
    page = streams[start:start + limit]
    more = start + limit < len(streams)
    return {
        "log_streams": page,
        "starting_token": start,
        "limit": limit,
        "paginated": more,
        "next_starting_token": start + limit if more else None,
    }


def _all_log_streams(request: Request, project_id: str) -> list[dict[str, Any]]:
    store = store_of(request)
    out: list[dict[str, Any]] = []
    token: int | None = 0
    while token is not None:
        page = store.list_log_streams(project_id, starting_token=token, limit=_PAGE)
        out.extend(page["log_streams"])
        token = page.get("next_starting_token") if page.get("paginated") else None
    return out


def _name_filter_matches(flt: Any, stream: dict[str, Any]) -> bool:
    if not isinstance(flt, dict):
        return True
    column = flt.get("column_id", flt.get("name"))
    if column not in ("name", None):
        return True  # only name filters are understood; others do not narrow
    value = flt.get("value")
    name = str(stream.get("name", ""))
    if not flt.get("case_sensitive", True):
        name = name.lower()
        value = [str(v).lower() for v in value] if isinstance(value, list) else str(value).lower()
    op = flt.get("operator", "eq")
    if op == "eq":
        return name == value
    if op == "ne":
        return name != value
    if op == "contains":
        return str(value) in name
    if op == "one_of":
        return isinstance(value, list) and name in value
    if op == "not_in":
        return not (isinstance(value, list) and name in value)
    return True


def _int_or(value: Any, default: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else default
