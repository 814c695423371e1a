"""The dev server, run for real on 127.0.0.1 and spoken to over loopback with httpx.

Why real sockets: fault injection (dropped connections, Retry-After, latency) and the
stop/start-on-the-same-port behaviour only mean something on a real connection, and they are
what the library's reliability suite leans on.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from galileo_sessions._store import Store
from galileo_sessions.server import FaultConfig, ServerThread, create_app
from galileo_sessions.server.faults import FaultInjector
from galileo_sessions.server.state import RequestLog

API_KEY = "test-key-7f3a9c"
UNKNOWN = "00000000-0000-4000-8000-00000000dead"


# --- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path / "store.db") as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path / "store.db", api_key=API_KEY) as srv:
        yield srv


def target(c: httpx.Client, project: str = "default", stream: str = "default") -> tuple[str, str]:
    """Resolve project and log stream by name exactly as the official SDK does (wire §8)."""
    found = c.get("/projects", params={"project_name": project, "type": "gen_ai"})
    assert found.status_code == 200
    if found.json():
        pid = found.json()[0]["id"]
    else:
        created = c.post("/projects", json={"name": project, "type": "gen_ai",
                                            "create_example_templates": False})
        assert created.status_code == 200, created.text
        pid = created.json()["id"]
    token: int | None = 0
    while token is not None:
        page = c.get(f"/projects/{pid}/log_streams/paginated",
                     params={"include_counts": "false", "starting_token": token, "limit": 500})
        assert page.status_code == 200
        for stream_obj in page.json()["log_streams"]:
            if stream_obj["name"] == stream:
                return pid, stream_obj["id"]
        token = page.json()["next_starting_token"] if page.json()["paginated"] else None
    made = c.post(f"/projects/{pid}/log_streams", json={"name": stream})
    assert made.status_code == 200, made.text
    return pid, made.json()["id"]


def trace_body(lsid: str, *, session_id: str | None = None, trace_id: str | None = None,
               is_complete: bool = True, spans: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    return {
        "log_stream_id": lsid, "logging_method": "api_direct", "client_version": None,
        "reliable": True, "session_id": session_id, "is_complete": is_complete,
        "traces": [{
            "type": "trace", "id": trace_id or str(uuid.uuid4()), "name": "turn",
            "input": "who are you?", "output": "I am!", "created_at": "2026-11-01T10:00:00.000001Z",
            "metrics": {"duration_ns": 1500}, "tags": ["t"], "user_metadata": {"k": "v"},
            "spans": spans if spans is not None else [{
                "type": "llm", "id": str(uuid.uuid4()), "name": "chat",
                "input": [{"role": "user", "content": "who are you?"}],
                "output": {"role": "assistant", "content": "I am!"},
                "model": "gpt-x", "metrics": {"num_input_tokens": 3},
            }],
        }],
    }


def admin(c: httpx.Client, faults: dict[str, Any]) -> dict[str, Any]:
    resp = c.put("/_admin/faults", json=faults)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def jwt_payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return payload


# --- health, login, auth -------------------------------------------------------------------

def test_healthcheck_and_ingest_probe(client: httpx.Client) -> None:
    assert client.get("/healthcheck").json()["message"] == "ok"
    # 404 makes the official SDK use its standard client, i.e. the routes below.
    assert client.get("/ingest/healthz").status_code == 404
    assert client.post("/ingest/traces/" + UNKNOWN, json={}).status_code in (404, 405)


def test_login_and_current_user(client: httpx.Client) -> None:
    resp = client.post("/login/api_key", json={"api_key": "anything"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 86400
    token = body["access_token"]
    assert token.count(".") == 2
    assert jwt_payload(token)["exp"] > time.time() + 86400  # the SDK refreshes within 300 s
    user = client.get("/current_user", headers={"Authorization": f"Bearer {token}"}).json()
    assert {"id", "email"} <= user.keys() and user["role"] == "admin"
    bad = client.post("/login/api_key", json={})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "api_key"]


def test_auth_enforced_with_api_key(secured: ServerThread) -> None:
    with httpx.Client(base_url=secured.url) as c:
        assert c.get("/healthcheck").status_code == 200
        assert c.get("/ingest/healthz").status_code == 404
        missing = c.get("/projects")
        assert missing.status_code == 401 and isinstance(missing.json()["detail"], str)
        assert c.get("/projects", headers={"Galileo-API-Key": "wrong"}).status_code == 401
        assert c.get("/projects", headers={"Authorization": "Bearer a.b.c"}).status_code == 401
        assert c.get("/_admin/stats").status_code == 401
        assert c.post("/login/api_key", json={"api_key": "wrong"}).status_code == 401

        assert c.get("/projects", headers={"Galileo-API-Key": API_KEY}).status_code == 200
        token = c.post("/login/api_key", json={"api_key": API_KEY}).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert c.get("/current_user", headers=bearer).status_code == 200
        assert c.get("/projects", headers=bearer).status_code == 200
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert c.get("/projects",
                     headers={"Authorization": f"Bearer {tampered}"}).status_code == 401

        log = c.get("/_admin/requests", headers={"Galileo-API-Key": API_KEY}).json()
        text = json.dumps(log) + missing.text
        # credentials are never echoed or logged, not even the login body's api_key
        assert API_KEY not in text and token not in text
        login = next(r for r in log["requests"] if r["path"] == "/login/api_key")
        assert login["body"] == {"api_key": "***"}


def test_no_api_key_lets_everything_in(client: httpx.Client) -> None:
    assert client.get("/projects").status_code == 200
    assert client.get("/projects", headers={"Galileo-API-Key": "whatever"}).status_code == 200


# --- projects and log streams --------------------------------------------------------------

def test_project_get_or_create_flow(client: httpx.Client) -> None:
    assert client.get("/projects", params={"project_name": "p1", "type": "gen_ai"}).json() == []
    pid, _ = target(client, "p1")
    listed = client.get("/projects", params={"project_name": "p1", "type": "gen_ai"}).json()
    assert [p["id"] for p in listed] == [pid]
    assert listed[0]["type"] == "gen_ai"
    assert {"id", "name", "created_at", "updated_at"} <= listed[0].keys()
    # the fields Galileo's generated ProjectDB model insists on are there
    assert {"created_by", "created_by_user", "runs"} <= listed[0].keys()
    assert client.get("/projects", params={"project_name": "p1", "type": "other"}).json() == []
    assert target(client, "p1")[0] == pid  # second resolution reuses it
    assert client.get(f"/projects/{pid}").json()["name"] == "p1"
    assert client.get(f"/v2/projects/{pid}").json()["id"] == pid
    # the official SDK's create body, "created_by": null included (galileo 2.7.0 on the wire)
    sdk_body = {"name": "p2", "created_by": None, "type": "gen_ai",
                "create_example_templates": False}
    assert client.post("/projects", json=sdk_body).status_code == 200
    assert {p["name"] for p in client.get("/projects/all").json()} == {"p1", "p2"}


def test_log_stream_pagination_flow(client: httpx.Client) -> None:
    pid, default_id = target(client)
    names = [f"stream-{i}" for i in range(7)]
    for name in names:
        assert client.post(f"/projects/{pid}/log_streams", json={"name": name}).status_code == 200
    seen: list[str] = []
    token: int | None = 0
    pages = 0
    while token is not None:
        page = client.get(f"/projects/{pid}/log_streams/paginated",
                          params={"starting_token": token, "limit": 3}).json()
        pages += 1
        seen += [s["name"] for s in page["log_streams"]]
        token = page["next_starting_token"] if page["paginated"] else None
    assert pages == 3 and seen == ["default", *names]
    # name resolution by paging finds an existing stream rather than making a new one
    assert target(client, "default", "stream-6")[1] == next(
        s["id"] for s in client.get(f"/projects/{pid}/log_streams").json()
        if s["name"] == "stream-6")
    assert len(client.get(f"/projects/{pid}/log_streams").json()) == 8
    got = client.get(f"/projects/{pid}/log_streams/{default_id}").json()
    assert got["name"] == "default" and got["project_id"] == pid
    assert client.get(f"/projects/{pid}/log_streams/{UNKNOWN}").status_code == 404
    found = client.post(f"/v2/projects/{pid}/log_streams/search", json={
        "filters": [{"column_id": "name", "operator": "contains", "value": "stream-"}],
        "limit": 5}).json()
    assert len(found["log_streams"]) == 5 and found["paginated"] is True
    bad = client.get(f"/projects/{pid}/log_streams/paginated", params={"limit": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]


# --- sessions, traces, spans ---------------------------------------------------------------

def test_session_create_idempotent_search_and_get(client: httpx.Client) -> None:
    pid, lsid = target(client)
    body = {"log_stream_id": lsid, "name": "chat", "external_id": "ext-1",
            "user_metadata": {"user": "u1"}}
    first = client.post(f"/v2/projects/{pid}/sessions", json=body,
                        headers={"Idempotency-Key": "idem-1"})
    assert first.status_code == 200, first.text
    sid = first.json()["id"]
    assert first.json()["project_id"] == pid and first.json()["external_id"] == "ext-1"
    again = client.post(f"/v2/projects/{pid}/sessions", json=body,
                        headers={"Idempotency-Key": "idem-1"})
    assert again.json()["id"] == sid
    other = client.post(f"/projects/{pid}/sessions", json={"log_stream_id": lsid, "name": "x"})
    assert other.status_code == 200 and other.json()["id"] != sid

    search = client.post(f"/v2/projects/{pid}/sessions/search", json={
        "log_stream_id": lsid, "limit": 1,
        "filters": [{"type": "text", "column_id": "external_id", "operator": "eq",
                     "value": "ext-1", "case_sensitive": True}]})
    assert search.status_code == 200, search.text
    records = search.json()["records"]
    assert [r["id"] for r in records] == [sid] and records[0]["type"] == "session"

    got = client.get(f"/v2/projects/{pid}/sessions/{sid}")
    assert got.status_code == 200 and got.json()["id"] == sid and got.json()["traces"] == []
    assert client.get(f"/v2/projects/{pid}/sessions/{UNKNOWN}").status_code == 404


@pytest.mark.parametrize("prefix", ["/v2", ""])
def test_trace_ingest_shows_in_session(client: httpx.Client, prefix: str) -> None:
    pid, lsid = target(client)
    made = client.post(f"{prefix}/projects/{pid}/sessions", json={"log_stream_id": lsid})
    sid = made.json()["id"]
    tid = str(uuid.uuid4())
    resp = client.post(f"{prefix}/projects/{pid}/traces",
                       json={**trace_body(lsid, session_id=sid, trace_id=tid),
                             "include_trace_ids": True})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["traces_count"], out["spans_count"], out["records_count"]) == (1, 1, 2)
    assert out["session_id"] == sid and out["trace_ids"] == [tid]
    session = client.get(f"{prefix}/projects/{pid}/sessions/{sid}").json()
    assert [t["id"] for t in session["traces"]] == [tid]
    assert session["traces"][0]["spans"][0]["type"] == "llm"
    trace = client.get(f"{prefix}/projects/{pid}/traces/{tid}").json()
    assert trace["output"] == "I am!" and trace["session_id"] == sid


def test_late_spans_and_patches(client: httpx.Client) -> None:
    """Distributed-mode sequence (wire §6.4): open trace, spans later, PATCH span and trace."""
    pid, lsid = target(client)
    tid = str(uuid.uuid4())
    opened = client.post(f"/v2/projects/{pid}/traces",
                         json=trace_body(lsid, trace_id=tid, is_complete=False, spans=[]))
    assert opened.status_code == 200, opened.text
    wid = str(uuid.uuid4())
    workflow = {"type": "workflow", "id": wid, "name": "plan", "input": "q", "spans": []}
    r = client.post(f"/v2/projects/{pid}/spans", json={
        "log_stream_id": lsid, "trace_id": tid, "parent_id": tid, "spans": [workflow]})
    assert r.status_code == 200, r.text
    assert r.json()["trace_id"] == tid and r.json()["parent_id"] == tid
    tool_id = str(uuid.uuid4())
    r = client.post(f"/projects/{pid}/spans", json={
        "log_stream_id": lsid, "trace_id": tid, "parent_id": wid,
        "spans": [{"type": "tool", "id": tool_id, "name": "search", "input": "q",
                   "output": "r", "tool_call_id": "call-1"}]})
    assert r.status_code == 200, r.text

    r = client.patch(f"/v2/projects/{pid}/spans/{wid}", json={
        "log_stream_id": lsid, "span_id": wid, "output": "done", "status_code": 200,
        "duration_ns": 42, "tags": ["late"], "input": None})
    assert r.status_code == 200, r.text
    assert r.json()["span_id"] == wid
    r = client.patch(f"/projects/{pid}/traces/{tid}", json={
        "log_stream_id": lsid, "trace_id": tid, "output": "final", "is_complete": True,
        "duration_ns": 99})
    assert r.status_code == 200, r.text

    span = client.get(f"/v2/projects/{pid}/spans/{wid}").json()
    assert span["output"] == "done" and "late" in span["tags"]
    assert [s["id"] for s in span["spans"]] == [tool_id]
    trace = client.get(f"/v2/projects/{pid}/traces/{tid}").json()
    assert trace["output"] == "final"
    assert [s["id"] for s in trace["spans"]] == [wid]
    stats = client.get("/_admin/stats").json()
    assert stats["store"] == {"sessions": stats["store"]["sessions"], "traces": 1, "spans": 2}


@pytest.mark.parametrize(("body", "loc_prefix"), [
    ({"log_stream_id": "L", "traces": []}, ["body"]),
    ({"log_stream_id": "L", "traces": [{"type": "trace", "spans": [{"type": "bogus"}]}]},
     ["body", "traces", 0, "spans", 0]),
    ({"log_stream_id": "L", "traces": "nope"}, ["body", "traces"]),
    ([1, 2], ["body"]),
])
def test_malformed_trace_bodies_get_422(client: httpx.Client, body: Any,
                                        loc_prefix: list[Any]) -> None:
    pid, lsid = target(client)
    if isinstance(body, dict):
        body = {**body, "log_stream_id": lsid}
    resp = client.post(f"/v2/projects/{pid}/traces", json=body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, list) and detail
    assert all({"loc", "msg", "type"} <= d.keys() for d in detail)
    assert any(d["loc"][:len(loc_prefix)] == loc_prefix for d in detail), detail
    assert client.get("/_admin/stats").json()["store"]["traces"] == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_invalid_json_gets_422(client: httpx.Client, raw: bytes) -> None:
    pid, _ = target(client)
    resp = client.post(f"/v2/projects/{pid}/sessions", content=raw,
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert detail[0]["loc"][0] == "body"
    assert detail[0]["type"] in ("json_invalid", "missing")


_LS = str(uuid.uuid4())  # any log stream: the unknown project is found out first


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/projects/{u}", None), ("GET", "/v2/projects/{u}", None),
    ("GET", "/projects/{u}/log_streams/paginated", None),
    ("GET", "/projects/{u}/log_streams", None),
    ("GET", "/projects/{u}/log_streams/{u}", None),
    ("POST", "/projects/{u}/log_streams", {"name": "n"}),
    ("POST", "/v2/projects/{u}/log_streams/search", {}),
    ("POST", "/v2/projects/{u}/sessions", {"log_stream_id": _LS}),
    ("POST", "/v2/projects/{u}/sessions/search", {}),
    ("GET", "/v2/projects/{u}/sessions/{u}", None),
    ("POST", "/v2/projects/{u}/traces", {"log_stream_id": _LS, "traces": [{"type": "trace"}]}),
    ("POST", "/projects/{u}/traces", {"log_stream_id": _LS, "traces": [{"type": "trace"}]}),
    ("GET", "/v2/projects/{u}/traces/{u}", None),
    ("PATCH", "/v2/projects/{u}/traces/{u}", {"log_stream_id": _LS, "trace_id": UNKNOWN}),
    ("POST", "/v2/projects/{u}/spans", {"log_stream_id": _LS, "trace_id": UNKNOWN,
                                        "parent_id": UNKNOWN, "spans": [{"type": "tool"}]}),
    ("GET", "/v2/projects/{u}/spans/{u}", None),
    ("PATCH", "/projects/{u}/spans/{u}", {"log_stream_id": _LS, "span_id": UNKNOWN}),
])
def test_unknown_project_is_404(client: httpx.Client, method: str, path: str,
                                body: dict[str, Any] | None) -> None:
    target(client)  # the store is not empty: only the project id is wrong
    resp = client.request(method, path.format(u=UNKNOWN), json=body)
    assert resp.status_code == 404, resp.text
    assert isinstance(resp.json()["detail"], str)


# --- fault injection -----------------------------------------------------------------------

def test_status_fault_with_count_and_retry_after(client: httpx.Client) -> None:
    pid, lsid = target(client)
    admin(client, {"status": 503, "rate": 1.0, "count": 2, "retry_after": 1.5})
    assert client.get(f"/projects/{pid}").status_code == 200  # reads are never status-faulted
    for _ in range(2):
        r = client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid))
        assert r.status_code == 503 and r.headers["Retry-After"] == "1.5"
        assert isinstance(r.json()["detail"], str)
    assert client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid)).status_code == 200
    stats = client.get("/_admin/stats").json()
    assert stats["faults"]["status_injected"] == 2 and stats["faults"]["remaining"] == 0
    assert stats["store"]["traces"] == 1  # faulted requests never reached the store
    routes = stats["requests"]["by_route"]
    assert routes["POST /v2/projects/{project_id}/traces"] == 3
    assert stats["requests"]["by_status"]["503"] == 2


def test_429_integer_retry_after_and_path_filter(client: httpx.Client) -> None:
    pid, lsid = target(client)
    admin(client, {"status": 429, "retry_after": 2, "paths": ["/spans"]})
    assert client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid)).status_code == 200
    r = client.post(f"/v2/projects/{pid}/spans", json={})
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    admin(client, {"status": 500})
    r = client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid))
    assert r.status_code == 500 and "Retry-After" not in r.headers


def test_latency_fault(client: httpx.Client) -> None:
    admin(client, {"latency_ms": 250})
    started = time.perf_counter()
    assert client.get("/projects").status_code == 200
    assert time.perf_counter() - started >= 0.24
    started = time.perf_counter()
    assert client.get("/healthcheck").status_code == 200  # exempt
    assert time.perf_counter() - started < 0.24


def test_dropped_connection(client: httpx.Client, server: ServerThread) -> None:
    pid, lsid = target(client)
    admin(client, {"drop_rate": 1.0, "count": 1})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid))
    # the next request (new connection) goes through, and nothing was stored by the first
    assert client.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid)).status_code == 200
    stats = client.get("/_admin/stats").json()
    assert stats["faults"]["dropped"] == 1 and stats["store"]["traces"] == 1
    log = client.get("/_admin/requests", params={"limit": 2}).json()["requests"]
    assert [r["outcome"] for r in log] == ["dropped", "ok"]
    assert log[0]["status"] is None and log[0]["body"]["log_stream_id"] == lsid
    assert server.running


def test_seeded_faults_repeat(tmp_path: Path) -> None:
    def pattern(db: str) -> list[int]:
        faults = FaultConfig(status=503, rate=0.5, seed=1234)
        with ServerThread(tmp_path / db, faults=faults) as srv, \
                httpx.Client(base_url=srv.url) as c:
            return [c.post("/projects", json={"name": f"p{i}"}).status_code for i in range(20)]

    first = pattern("a.db")
    assert first == pattern("b.db")
    assert 503 in first and 200 in first


def test_admin_faults_runtime_and_reset(client: httpx.Client) -> None:
    assert client.get("/_admin/faults").json()["status"] is None
    cfg = admin(client, {"status": 502, "rate": 1.0})
    assert cfg["status"] == 502 and cfg["rate"] == 1.0
    assert client.post("/projects", json={"name": "x"}).status_code == 502
    admin(client, {})  # back to no faults
    assert client.post("/projects", json={"name": "x"}).status_code == 200
    bad = client.put("/_admin/faults", json={"rate": 2, "bogus": 1})
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "rate"),
                                                                ("body", "bogus")}
    admin(client, {"status": 503})
    assert client.post("/_admin/reset").json() == {"reset": True}  # admin is never faulted
    stats = client.get("/_admin/stats").json()
    assert stats["fault_config"]["status"] is None and stats["faults"]["status_injected"] == 0
    assert stats["requests"]["by_route"] == {"GET /_admin/stats": 1}
    assert client.get("/projects").json()[0]["name"] == "x"  # the store survives a reset


def test_request_log_records_bodies_and_is_capped() -> None:
    log = RequestLog(capacity=3)
    for i in range(5):
        rec = log.start(method="POST", path=f"/p/{i}", query="", route="/p/{i}",
                        headers={}, body={"i": i})
        rec.status = 200
        log.finish(rec, "ok")
    recent = log.recent(10)
    assert [r["body"]["i"] for r in recent] == [2, 3, 4]
    assert [r["path"] for r in log.recent(1)] == ["/p/4"]
    assert log.counters()["total"] == 5


def test_fault_injector_validation_and_exemptions() -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultConfig(status=503, rate=1.5)
    with pytest.raises(ValueError, match="status"):
        FaultConfig(status=42)
    inj = FaultInjector(FaultConfig(status=503, drop_rate=0.0))
    assert inj.decide("POST", "/_admin/faults").status is None
    assert inj.decide("GET", "/healthcheck").status is None
    assert inj.decide("GET", "/projects").status is None
    assert inj.decide("POST", "/projects").status == 503


# --- lifecycle -----------------------------------------------------------------------------

def test_stop_start_same_port_keeps_data(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "store.db", api_key=API_KEY) as srv:
        port = srv.port
        with httpx.Client(base_url=srv.url, headers={"Galileo-API-Key": API_KEY}) as c:
            pid, lsid = target(c)
            assert c.post(f"/v2/projects/{pid}/traces", json=trace_body(lsid)).status_code == 200
            token = c.post("/login/api_key", json={"api_key": API_KEY}).json()["access_token"]
            srv.stop()
            assert not srv.running
            with pytest.raises(httpx.ConnectError):
                c.get("/healthcheck")
            srv.start()
            assert srv.port == port
            assert c.get("/_admin/stats").json()["store"]["traces"] == 1
            assert c.get("/projects",
                         headers={"Authorization": f"Bearer {token}",
                                  "Galileo-API-Key": ""}).status_code == 200
            assert target(c) == (pid, lsid)


def test_server_thread_with_store_instance(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        with ServerThread(store) as srv, httpx.Client(base_url=srv.url) as c:
            assert srv.store is store
            target(c)
        assert store.counts() == {"sessions": 0, "traces": 0, "spans": 0}  # still open
    finally:
        store.close()


def test_create_app_with_path_owns_store(tmp_path: Path) -> None:
    app = create_app(str(tmp_path / "own.db"))
    state = app.state.galileo
    assert state.owns_store
    state.close_owned_store()
    state.open_owned_store()
    assert state.store.counts()["traces"] == 0
    state.close_owned_store()


def test_cli_serve_prints_url_and_serves(tmp_path: Path) -> None:
    code = ("import sys; from galileo_sessions.server import cli_serve; "
            "sys.exit(cli_serve(sys.argv[1:]))")
    env = {**os.environ, "GALILEO_SESSIONS_SERVER_API_KEY": API_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--store", str(tmp_path / "cli.db"),
         "--quiet", "--fault-status", "503", "--fault-rate", "1.0", "--retry-after", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert API_KEY not in line
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"Galileo-API-Key": API_KEY}) as c:
            assert c.get("/healthcheck").status_code == 200
            r = c.post("/projects", json={"name": "p"})
            assert r.status_code == 503 and r.headers["Retry-After"] == "3"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert API_KEY not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_cli_with_a_store_that_cannot_be_opened_says_so_in_one_line(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``serve`` and ``ui`` share one main loop: an unopenable store is one line, exit 1."""
    from galileo_sessions.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = str(blocker / "store.db")
    assert main([command, "--port", "0", "--store", bad]) == 1
    err = capsys.readouterr().err
    assert f"galileo-sessions {command}: cannot open the local store {bad}" in err
    assert "Traceback" not in err
