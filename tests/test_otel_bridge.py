"""configure(otel=True): galileo spans mirrored as OTel spans on the user's provider."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from otel_support import OtelKit, otel  # noqa: F401 - fixture

import galileo_sessions as gs
from galileo_sessions import _runtime
from galileo_sessions.otel import SessionSpanProcessor


@pytest.fixture
def loopback() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@gs.span(type="llm", model="gpt-4o")
def chat(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": "hello"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


@gs.span(type="tool")
def search(q: str) -> str:
    return f"found {q}"


@gs.span(type="agent")
def agent(question: str) -> str:
    chat([{"role": "user", "content": question}])
    return search("docs")


def test_spans_mirrored_with_gen_ai_attributes(otel: OtelKit) -> None:
    with gs.testing.capture(otel=True) as cap, gs.session("chat", external_id="u1") as s:
        agent("hi")
    spans = {span.name: span for span in otel.spans()}
    assert set(spans) == {"agent", "chat", "search"}
    agent_span, llm, tool = spans["agent"], spans["chat"], spans["search"]
    assert llm.parent.span_id == agent_span.context.span_id
    assert tool.parent.span_id == agent_span.context.span_id
    assert agent_span.parent is None
    assert llm.instrumentation_scope.name == "galileo_sessions"
    a = llm.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.usage.input_tokens"] == 5
    assert a["gen_ai.usage.output_tokens"] == 2
    assert json.loads(a["gen_ai.input.messages"]) == [{"role": "user", "content": "hi"}]
    assert json.loads(a["gen_ai.output.messages"]) == [{"role": "assistant", "content": "hello"}]
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "search"
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    trace_id = cap.traces[0]["id"]
    for span in spans.values():
        assert span.attributes["galileo.session.id"] == s.id
        assert span.attributes["gen_ai.conversation.id"] == s.id
        assert span.attributes["galileo.trace.id"] == trace_id
    assert {span.attributes["galileo.span.type"] for span in spans.values()} == {
        "agent", "llm", "tool"}
    # the galileo records are unchanged by the bridge
    assert [c["name"] for c in cap.traces[0]["spans"][0]["spans"]] == ["chat", "search"]


def test_previous_session_attribute(otel: OtelKit) -> None:
    with gs.testing.capture(otel=True):
        with gs.session("turn", external_id="u2") as first:
            search("a")
        with gs.session("turn", external_id="u2"):
            search("b")
    second_span = [s for s in otel.spans() if s.name == "search"][1]
    assert second_span.attributes["galileo.session.previous_id"] == first.id


def test_error_and_trace_spans(otel: OtelKit) -> None:
    @gs.trace
    def failing() -> None:
        raise ValueError("boom")

    with gs.testing.capture(otel=True), pytest.raises(ValueError):
        failing()
    (span,) = otel.spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes["galileo.span.type"] == "trace"
    assert span.attributes["galileo.status_code"] == 500
    assert [e.name for e in span.events] == ["exception"]


def test_context_is_restored_after_each_call(otel: OtelKit) -> None:
    with gs.testing.capture(otel=True):
        outer = otel.tracer.start_span("outer")
        with trace.use_span(outer, end_on_exit=True):
            search("x")
            assert trace.get_current_span() is outer
            search("y")
    searches = [s for s in otel.spans() if s.name == "search"]
    assert [s.parent.span_id for s in searches] == [outer.context.span_id] * 2
    assert not trace.get_current_span().get_span_context().is_valid


def test_generator_span_mirrored(otel: OtelKit) -> None:
    @gs.span(type="llm")
    def stream(prompt: str) -> Iterator[str]:
        yield "a"
        yield "b"

    with gs.testing.capture(otel=True):
        assert "".join(stream("p")) == "ab"
    (span,) = otel.spans()
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["content"] == "ab"
    assert not trace.get_current_span().get_span_context().is_valid


def test_httpx_call_nests_under_agent_span(otel: OtelKit, loopback: str) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    processor = SessionSpanProcessor(include_non_llm=True)
    otel.provider.add_span_processor(processor)

    @gs.span(type="agent")
    def fetching_agent(question: str) -> str:
        with httpx.Client() as client:
            return client.get(f"{loopback}/data").text

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider)
    try:
        with gs.testing.capture(otel=True) as cap, gs.session("web") as s:
            fetching_agent("q")
    finally:
        instrumentor.uninstrument()
    spans = otel.spans()
    agent_span = next(x for x in spans if x.name == "fetching_agent")
    http_span = next(x for x in spans if x.instrumentation_scope.name.endswith("httpx"))
    assert http_span.parent.span_id == agent_span.context.span_id
    assert http_span.context.trace_id == agent_span.context.trace_id
    assert agent_span.attributes["galileo.session.id"] == s.id
    # the HTTP call is a galileo record too, under the agent span, in the same session
    (tree,) = cap.traces
    assert cap.session_of(tree) == s.id
    (agent_record,) = tree["spans"]
    assert agent_record["name"] == "fetching_agent"
    assert [c["name"] for c in agent_record["spans"]] == [http_span.name]
    assert agent_record["spans"][0]["type"] == "workflow"


def test_httpx_span_dropped_by_default(otel: OtelKit, loopback: str) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    otel.provider.add_span_processor(SessionSpanProcessor())

    @gs.span(type="agent")
    def fetching_agent() -> int:
        return httpx.get(f"{loopback}/x").status_code

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider)
    try:
        with gs.testing.capture(otel=True) as cap:
            fetching_agent()
    finally:
        instrumentor.uninstrument()
    assert len(otel.spans()) == 2
    assert cap.traces[0]["spans"][0]["spans"] == []


def test_no_provider_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no span may be started without an SDK provider")

    monkeypatch.setattr(trace.ProxyTracer, "start_span", refuse)
    monkeypatch.setattr(trace.NoOpTracer, "start_span", refuse)
    with gs.testing.capture(otel=True) as cap:
        hook = _runtime.current.otel_hook  # type: ignore[union-attr]
        assert hook is not None and hook.tracer() is None
        agent("q")
    assert cap.traces


def test_otel_off_by_default() -> None:
    with gs.testing.capture():
        assert _runtime.current.otel_hook is None  # type: ignore[union-attr]


def test_import_and_configure_never_set_provider(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("set_tracer_provider must never be called by the library")

    monkeypatch.setattr(trace, "set_tracer_provider", refuse)
    monkeypatch.setattr(trace, "_set_tracer_provider", refuse)
    import galileo_sessions.otel as otel_module

    importlib.reload(otel_module)
    importlib.reload(importlib.import_module("galileo_sessions._otel_hook"))
    gs.configure(otel=True, store=str(tmp_path / "s.db"))
    search("q")
    otel_module.SessionSpanProcessor()
    otel_module.GalileoSessionStamper()
    otel_module.galileo_otlp_exporter(api_url="http://127.0.0.1:9")
    gs.flush(5)
    assert trace._TRACER_PROVIDER is None
