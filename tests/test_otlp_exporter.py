"""galileo_otlp_exporter() and GalileoSessionStamper, delivering to the dev server's
POST /otel/traces, and that route's mapping of OTLP spans into sessions and traces."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)

import galileo_sessions as gs
from galileo_sessions._store import Store
from galileo_sessions.otel import GalileoSessionStamper, galileo_otlp_exporter
from galileo_sessions.server import ServerThread

API_KEY = "gs-otel-test-key-0f3c2a"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path / "server.db", api_key=API_KEY) as srv:  # owns the store
        yield srv


@pytest.fixture
def sink() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """A loopback HTTP server that answers 200 and records (path, lower-cased headers)."""
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()


def _sent_headers(exporter: OTLPSpanExporter, seen: list[tuple[str, dict[str, str]]]
                  ) -> dict[str, str]:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _chat(provider.get_tracer("app"))
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    path, headers = seen[-1]
    assert path == "/otel/traces"
    assert headers["content-type"] == "application/x-protobuf"
    return headers


def test_exporter_endpoint_and_headers_explicit(sink: Any) -> None:
    url, seen = sink
    exporter = galileo_otlp_exporter(api_url=url, api_key="k1", project="proj", log_stream="ls")
    headers = _sent_headers(exporter, seen)
    assert headers["galileo-api-key"] == "k1"
    assert headers["project"] == "proj" and headers["logstream"] == "ls"
    assert "experimentid" not in headers


def test_exporter_reads_configuration(tmp_path: Path, sink: Any) -> None:
    url, seen = sink
    gs.configure(api_url=url, api_key="k2", project="p2",
                 experiment_id="6f1e4c7a-0d39-4c55-9c0a-6d5f2b1e7a10",
                 spool_dir=str(tmp_path / "spool"))
    headers = _sent_headers(galileo_otlp_exporter(timeout=3), seen)
    assert headers["galileo-api-key"] == "k2" and headers["project"] == "p2"
    assert headers["experimentid"] == "6f1e4c7a-0d39-4c55-9c0a-6d5f2b1e7a10"
    assert "logstream" not in headers


def test_exporter_reads_environment(monkeypatch: pytest.MonkeyPatch, sink: Any) -> None:
    url, seen = sink
    monkeypatch.setenv("GALILEO_API_URL", url)
    monkeypatch.setenv("GALILEO_API_KEY", "k3")
    monkeypatch.setenv("GALILEO_LOG_STREAM", "prod")
    headers = _sent_headers(galileo_otlp_exporter(), seen)
    assert headers["galileo-api-key"] == "k3" and headers["logstream"] == "prod"
    assert headers["project"] == "default"


def test_exporter_endpoint_from_console_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALILEO_CONSOLE_URL", "https://console.acme.test")
    assert galileo_otlp_exporter()._endpoint == "https://api.acme.test/otel/traces"


def _chat(tracer: Any, name: str = "chat", **extra: Any) -> None:
    with tracer.start_as_current_span(name, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": "hi"}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "yo"}]),
            "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1, **extra}):
        pass


def _only_project(store: Store) -> str:
    sessions = store.list_sessions()
    return str(sessions[0]["project_id"])


def test_otlp_export_lands_in_the_session(server: ServerThread, tmp_path: Path) -> None:
    gs.configure(api_url=server.url, api_key=API_KEY, project="otel-proj",
                 spool_dir=str(tmp_path / "spool"), mode="reliable")
    provider = TracerProvider()
    provider.add_span_processor(GalileoSessionStamper())
    processor = BatchSpanProcessor(galileo_otlp_exporter())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    with gs.session("otlp", external_id="user-9") as s:
        with tracer.start_as_current_span("turn", attributes={
                "openinference.span.kind": "AGENT", "input.value": "question"}):
            _chat(tracer)
            with tracer.start_as_current_span("GET /x", attributes={"http.method": "GET"}):
                _chat(tracer, "inner-chat")
    assert processor.force_flush(10_000)
    provider.shutdown()
    store = server.store
    session = store.get_session(_only_project(store), s.id)
    assert session["external_id"] == "user-9"
    (tree,) = session["traces"]
    assert tree["name"] == "turn" and tree["input"] == "question"
    (agent,) = tree["spans"]
    assert agent["type"] == "agent"
    children = [(c["type"], c["name"]) for c in agent["spans"]]
    assert children == [("llm", "chat"), ("llm", "inner-chat")]  # the HTTP span is left out
    llm = agent["spans"][0]
    assert llm["input"] == [{"role": "user", "content": "hi"}]
    assert llm["output"]["content"] == "yo"
    assert llm["metrics"]["num_input_tokens"] == 3


def test_children_exported_before_parent_join_one_tree(server: ServerThread) -> None:
    exporter = galileo_otlp_exporter(api_url=server.url, api_key=API_KEY, project="p")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # one export per span
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("root", attributes={
            "gen_ai.operation.name": "invoke_agent", "session.id": "ext-1"}):
        _chat(tracer)
        _chat(tracer, "second")
    provider.shutdown()
    store = server.store
    (session,) = store.list_sessions()
    assert session["external_id"] == "ext-1"
    full = store.get_session(str(session["project_id"]), session["id"])
    (tree,) = full["traces"]
    (agent,) = tree["spans"]
    assert [c["name"] for c in agent["spans"]] == ["chat", "second"]


def test_otlp_route_checks_the_api_key(server: ServerThread) -> None:
    exporter = galileo_otlp_exporter(api_url=server.url, api_key="wrong", project="p")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    _chat(tracer)
    provider.shutdown()
    assert server.store.list_sessions() == []
    r = httpx.post(f"{server.url}/otel/traces", content=b"",
                   headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 401


def test_otlp_route_rejects_bad_bodies(server: ServerThread) -> None:
    headers = {"Galileo-API-Key": API_KEY}
    r = httpx.post(f"{server.url}/otel/traces", content=b"x",
                   headers={**headers, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(f"{server.url}/otel/traces", content=b"\xff\x00garbage",
                   headers={**headers, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 400
    assert "OTLP" in r.json()["detail"]


def test_otlp_json_body(server: ServerThread) -> None:
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "session.id", "value": {"stringValue": "json-user"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "4"}}],
        }]}]}]}
    r = httpx.post(f"{server.url}/otel/traces", json=body,
                   headers={"Galileo-API-Key": API_KEY, "project": "p", "logstream": "l"})
    assert r.status_code == 200, r.text
    (session,) = server.store.list_sessions()
    full = server.store.get_session(str(session["project_id"]), session["id"])
    (tree,) = full["traces"]
    assert tree["id"] == "5b8efff7-9803-8103-d269-b633813fc60c"
    assert tree["spans"][0]["metrics"]["num_input_tokens"] == 4
    assert tree["spans"][0]["metrics"]["duration_ns"] == 1_000_000_000


def test_export_result_is_success(server: ServerThread) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _chat(provider.get_tracer("app"))
    exporter = galileo_otlp_exporter(api_url=server.url, api_key=API_KEY)
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
