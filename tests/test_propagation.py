"""Sessions and traces across services: inject / extract / continue_from, the ASGI
middleware, and two real services on loopback producing one session and one tree."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from otel_support import OtelKit, otel  # noqa: F401 - fixture

import galileo_sessions as gs
from galileo_sessions._store import Store
from galileo_sessions.asgi import SessionMiddleware
from galileo_sessions.server import ServerThread

TRACE = "6f1e4c7a-0d39-4c55-9c0a-6d5f2b1e7a10"
PARENT = "0b7e2f44-8a51-4d2c-9f3e-1c2d3e4f5a6b"
SESSION = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


@gs.span(type="tool")
def lookup(q: str) -> str:
    return f"answer to {q}"


def test_inject_then_extract_round_trip() -> None:
    with gs.testing.capture(), gs.session("s", external_id="user-1") as s:
        with gs.span("outer") as span:
            headers = gs.inject({"baggage": "other=1"})
            remote = gs.extract(headers)
    assert remote is not None
    assert remote.session_id == s.id and remote.session_external_id == "user-1"
    assert remote.trace_id == span.trace_id and remote.parent_id == span.id
    assert headers["X-Galileo-Trace-ID"] == span.trace_id
    assert headers["X-Galileo-Parent-ID"] == span.id
    assert "other=1" in headers["baggage"]
    version, trace_hex, span_hex, flags = headers["traceparent"].split("-")
    assert (version, flags) == ("00", "01")
    assert trace_hex == span.trace_id.replace("-", "")  # type: ignore[union-attr]
    assert span_hex == span.id.replace("-", "")[:16]  # type: ignore[union-attr]


def test_inject_outside_anything_is_empty() -> None:
    with gs.testing.capture():
        assert gs.inject() == {}
    assert gs.extract({}) is None


def test_extract_galileo_headers_and_case() -> None:
    remote = gs.extract({"x-galileo-trace-id": TRACE, "X-GALILEO-PARENT-ID": PARENT})
    assert remote is not None and (remote.trace_id, remote.parent_id) == (TRACE, PARENT)
    remote = gs.extract([(b"baggage", f"galileo.session.id={SESSION}".encode())])
    assert remote is not None and remote.session_id == SESSION and remote.trace_id is None


def test_extract_ignores_garbage() -> None:
    assert gs.extract({"baggage": "galileo.trace.id=not-a-uuid,,=;;", "x-galileo-parent-id":
                       "zzz"}) is None
    assert gs.extract({"baggage": "%%%"}) is None


def test_continue_from_sends_late_spans_into_the_callers_trace() -> None:
    headers = {"baggage": f"galileo.session.id={SESSION},galileo.trace.id={TRACE},"
                          f"galileo.parent.id={PARENT}"}
    with gs.testing.capture() as cap:
        with gs.continue_from(headers) as remote:
            assert remote is not None
            assert gs.current_session().id == SESSION  # type: ignore[union-attr]
            lookup("q")

            @gs.trace
            def handler() -> str:
                return lookup("r")

            handler()
        assert gs.current_span().id is None and gs.current_session() is None
    assert cap.traces == []
    assert [(s["trace_id"], s["parent_id"]) for s in cap.spans] == [(TRACE, PARENT)] * 2
    assert cap.spans[0]["spans"][0]["name"] == "lookup"
    workflow = cap.spans[1]["spans"][0]
    assert workflow["type"] == "workflow" and workflow["spans"][0]["name"] == "lookup"


def test_continue_from_session_only_makes_traces_in_that_session() -> None:
    with gs.testing.capture() as cap:
        with gs.continue_from({"baggage": f"galileo.session.id={SESSION}"}):
            lookup("q")
    (trace,) = cap.traces
    assert cap.session_of(trace) == SESSION


def test_continue_from_external_id_resumes_the_session() -> None:
    with gs.testing.capture() as cap:
        with gs.session("first", external_id="ext-7") as first:
            lookup("a")
        with gs.continue_from({"baggage": "galileo.session.external_id=ext-7"}):
            lookup("b")
    assert [cap.session_of(t) for t in cap.traces] == [first.id, first.id]


def test_continue_from_attaches_the_callers_otel_context(otel: OtelKit) -> None:
    caller = otel.tracer.start_span("caller")
    from opentelemetry import trace

    with trace.use_span(caller, end_on_exit=True), gs.testing.capture(otel=True):
        headers = gs.inject()
    with gs.testing.capture(otel=True), gs.continue_from(headers):
        lookup("x")
    span = otel.by_name("lookup")
    assert span.context.trace_id == caller.context.trace_id
    assert span.parent.span_id == caller.context.span_id


def test_middleware_passes_other_scopes_through() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    middleware = SessionMiddleware(app)
    asyncio.run(middleware({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    asyncio.run(middleware({"type": "http", "headers": []}, None, None))  # type: ignore[arg-type]
    assert calls == ["lifespan", "http"]


# -- two services on loopback --------------------------------------------------------------
class _Uvicorn:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, http="h11", ws="none", lifespan="off", log_config=None,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> _Uvicorn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def _tool_service() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/tool")
    async def tool(body: dict[str, str]) -> dict[str, str]:
        return {"result": lookup(body["q"])}

    return SessionMiddleware(app)


@pytest.fixture
def galileo_server(tmp_path: Path) -> Iterator[ServerThread]:
    store = Store(tmp_path / "server.db")
    srv = ServerThread(store).start()
    try:
        yield srv
    finally:
        srv.stop()
        store.close()


def _run_client(service_url: str, *, flush_inside: bool = False) -> gs.SessionHandle:
    @gs.span(type="tool")
    def call_service(q: str) -> str:
        response = httpx.post(f"{service_url}/tool", json={"q": q}, headers=gs.inject())
        response.raise_for_status()
        if flush_inside:  # the service's spans reach the server before this trace does
            gs.flush(timeout=1.0)
        return str(response.json()["result"])

    @gs.trace
    def agent(question: str) -> str:
        return call_service(question)

    with gs.session("two-services", external_id="user-42") as s:
        assert agent("weather") == "answer to weather"
    return s


def _single_tree(store: Store, session_id: str) -> dict[str, Any]:
    (session,) = store.list_sessions()
    assert session["id"] == session_id
    full = store.get_session(str(session["project_id"]), session_id)
    (tree,) = full["traces"]
    return tree  # type: ignore[no-any-return]


def test_two_services_make_one_session_and_one_tree(galileo_server: ServerThread,
                                                    tmp_path: Path) -> None:
    # One batch: the caller's trace goes out before the service's late spans (see the
    # next test for the other order).
    gs.configure(api_url=galileo_server.url, flush_interval=30.0,
                 spool_dir=str(tmp_path / "spool"))
    with _Uvicorn(_tool_service()) as service:
        s = _run_client(service.url)
        result = gs.flush(10)
    assert result.failed == 0 and result.pending == 0, result
    tree = _single_tree(galileo_server.store, s.id)  # type: ignore[arg-type]
    assert tree["name"] == "agent"
    (call,) = tree["spans"]
    assert call["name"] == "call_service"
    (remote,) = call["spans"]
    assert (remote["name"], remote["type"]) == ("lookup", "tool")
    assert remote["output"] == "answer to weather"


def test_service_spans_sent_before_the_callers_trace(galileo_server: ServerThread,
                                                     tmp_path: Path) -> None:
    gs.configure(api_url=galileo_server.url, flush_interval=0.05,
                 spool_dir=str(tmp_path / "spool"))
    with _Uvicorn(_tool_service()) as service:
        s = _run_client(service.url, flush_inside=True)
        gs.flush(10)
    tree = _single_tree(galileo_server.store, s.id)  # type: ignore[arg-type]
    assert tree["spans"][0]["spans"][0]["name"] == "lookup"
