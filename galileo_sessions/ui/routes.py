"""The web view's routes: server-rendered pages over the store, plus one polling endpoint.

Why this shape: every page is one or two indexed queries and a Jinja2 template with
autoescaping on for every template, so any value from the store (names, ids, metadata,
inputs, outputs) is HTML-escaped; markup only ever comes from the templates and the fixed
icon set below. The responses also carry a Content-Security-Policy that allows scripts from
this server only, so even a value that escaped escaping could not run. Handlers are plain
``def`` functions: FastAPI runs them in its thread pool, because the store blocks.

Routes: ``/`` (sessions), ``/ui/sessions/{id}`` (one session), ``/ui/sessions/{id}/live``
(JSON for the live update, 204 when nothing changed), ``/ui/search`` and ``/ui/static/*``.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from galileo_sessions._store import Store
from galileo_sessions.exceptions import NotFoundError
from galileo_sessions.ui import views

__all__ = ["PAGE_SIZE", "StoreGetter", "build_router"]

StoreGetter = Callable[[Request], Store]
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# Fixed 16x16 stroke icons per record type (constant markup, never built from data).
_ICON_PATHS = {
    "trace": '<path d="M2 4h12M2 8h12M2 12h12"/>',
    "workflow": '<circle cx="4" cy="4" r="2"/><circle cx="12" cy="12" r="2"/>'
                '<path d="M4 6v3a3 3 0 0 0 3 3h3"/>',
    "agent": '<rect x="3" y="5" width="10" height="8" rx="2"/><path d="M8 2v3"/>'
             '<circle cx="6" cy="9" r=".6"/><circle cx="10" cy="9" r=".6"/>',
    "llm": '<path d="M2.5 3.5h11v7h-6l-3 3v-3h-2z"/>',
    "retriever": '<circle cx="7" cy="7" r="4"/><path d="M10 10l4 4"/>',
    "tool": '<path d="M10.5 2.5a3 3 0 0 0-3.7 3.9L2.5 10.7l2.8 2.8 4.3-4.3a3 3 0 0 0 3.9-3.7'
            'l-1.9 1.9-2-.6-.6-2z"/>',
    "control": '<path d="M8 1.5l5 2v4c0 3-2.2 5.5-5 7-2.8-1.5-5-4-5-7v-4z"/>',
}


def _icon(kind: str) -> Markup:
    path = _ICON_PATHS.get(kind, '<circle cx="8" cy="8" r="4"/>')
    # constant markup from _ICON_PATHS, never built from data
    return Markup(
        f'<svg class="icon icon-{kind if kind in _ICON_PATHS else "other"}" viewBox="0 0 16 16" '
        f'width="16" height="16" aria-hidden="true">{path}</svg>')


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("galileo_sessions.ui") /
                                           "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.globals.update(icon=_icon, short_time=views.short_time,
                       short_id=lambda value: str(value or "")[:8])
    return env


_ENV = _environment()


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _query(**params: Any) -> str:
    """A query string of the non-empty params (lists repeat the key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, "", 0):
                pairs.append((key, str(item)))
    return ("?" + urlencode(pairs)) if pairs else ""


def _not_found(what: str) -> HTMLResponse:
    return _html(render("not_found.html", what=what, search=""), 404)


def _session_context(store: Store, session_id: str) -> dict[str, Any]:
    session = store.get_session_by_id(session_id)
    traces = views.trace_views(session.get("traces", []))
    chain = store.session_chain(session["id"], limit=50)
    here = next((i for i, s in enumerate(chain) if s["id"] == session["id"]), 0)
    span_count = sum(t.span_count for t in traces)
    errors = sum(t.error_count for t in traces)
    return {
        "session": session, "traces": traces, "chain": chain, "chain_index": here,
        "previous": chain[here - 1] if here > 0 else None,
        "next": chain[here + 1] if here + 1 < len(chain) else None,
        "span_count": span_count, "error_count": errors,
        "version": _live_version(store, session["id"]),
        "open_all": len(traces) == 1,
    }


def _live_version(store: Store, session_id: str) -> str:
    return f"{store.session_version(session_id)}.{store.latest_session_seq()}"


def build_router(get_store: StoreGetter) -> APIRouter:
    """The web view's routes, reading from ``get_store(request)``."""
    router = APIRouter(include_in_schema=False)
    indexed: set[int] = set()

    def store_for(request: Request) -> Store:
        store = get_store(request)
        if id(store) not in indexed:  # once per store: older files lack the view's indexes
            with contextlib.suppress(sqlite3.Error):
                store.ensure_read_indexes()
            indexed.add(id(store))
        return store

    @router.get("/", response_class=HTMLResponse)
    def session_list(request: Request, *, name: str = "", external_id: str = "",
                     meta: list[str] = Query(default=[]),  # noqa: B008 - FastAPI idiom
                     page: int = Query(default=1, ge=1, le=1_000_000),
                     per_page: int = Query(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
                     ) -> HTMLResponse:
        store = store_for(request)
        name, external_id = name.strip(), external_id.strip()
        metadata = views.parse_meta(meta)
        sessions, total = store.page_sessions(name=name or None,
                                              external_id=external_id or None,
                                              metadata=metadata or None, limit=per_page,
                                              offset=(page - 1) * per_page)
        pages = max(1, math.ceil(total / per_page))
        meta_text = ", ".join(f"{k}={v}" for k, v in metadata.items())
        filters = {"name": name, "external_id": external_id,
                   "meta": [meta_text] if meta_text else [],
                   "per_page": per_page if per_page != PAGE_SIZE else None}

        def page_url(n: int) -> str:
            return "/" + _query(**filters, page=n if n > 1 else None)

        return _html(render(
            "sessions.html", sessions=sessions, total=total, page=page, pages=pages,
            first=(page - 1) * per_page + 1 if sessions else 0,
            last=(page - 1) * per_page + len(sessions), name=name, external_id=external_id,
            meta_text=meta_text, filtered=bool(name or external_id or metadata),
            prev_url=page_url(page - 1) if page > 1 else None,
            next_url=page_url(page + 1) if page < pages else None,
            filter_url=lambda **kw: "/" + _query(**kw),
            latest_seq=store.latest_session_seq(), search=""))

    @router.get("/ui/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(request: Request, session_id: str) -> HTMLResponse:
        try:
            context = _session_context(store_for(request), session_id)
        except NotFoundError:
            return _not_found(f"session {session_id}")
        return _html(render("session.html", search="", **context))

    @router.get("/ui/sessions/{session_id}/live")
    def session_live(request: Request, session_id: str, v: str = "") -> Response:
        store = store_for(request)
        try:
            if v and v == _live_version(store, session_id):
                return Response(status_code=204, headers=SECURITY_HEADERS)
            context = _session_context(store, session_id)
        except NotFoundError:
            return JSONResponse({"detail": "session not found"}, status_code=404,
                                headers=SECURITY_HEADERS)
        return JSONResponse({
            "version": context["version"],
            "head": render("_session_head.html", **context),
            "traces": render("_traces.html", **context),
            "trace_count": len(context["traces"]),
        }, headers=SECURITY_HEADERS)

    @router.get("/ui/search", response_class=HTMLResponse)
    def search(request: Request, q: str = "",
               page: int = Query(default=1, ge=1, le=100_000)) -> HTMLResponse:
        text = q.strip()
        hits: list[dict[str, Any]] = []
        more = False
        if text:
            rows, more = store_for(request).search_traces(text, limit=PAGE_SIZE,
                                                          offset=(page - 1) * PAGE_SIZE)
            for row in rows:
                snip = next((s for s in (views.snippet("input", str(row["input"] or ""), text),
                                         views.snippet("output", str(row["output"] or ""),
                                                       text)) if s), None)
                hits.append({**row, "snippet": snip})
        return _html(render(
            "search.html", search=text, hits=hits, page=page,
            prev_url=f"/ui/search{_query(q=text, page=page - 1 if page > 2 else None)}"
            if page > 1 else None,
            next_url=f"/ui/search{_query(q=text, page=page + 1)}" if more else None))

    @router.get("/ui/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (resources.files("galileo_sessions.ui") / "static" / name).read_bytes()
        return Response(body, media_type=_STATIC[name],
                        headers={"Cache-Control": "max-age=300",
                                 "X-Content-Type-Options": "nosniff"})

    @router.get("/ui/api/latest")
    def latest(request: Request) -> JSONResponse:
        return JSONResponse({"latest_seq": store_for(request).latest_session_seq()},
                            headers=SECURITY_HEADERS)

    return router

