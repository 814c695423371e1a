"""SessionSpanProcessor: spans from any instrumentation become records of the session."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from otel_support import OtelKit, otel, strip_timing  # noqa: F401 - fixture

import galileo_sessions as gs
from galileo_sessions.otel import SessionSpanProcessor

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture
def kit(otel: OtelKit) -> Iterator[OtelKit]:
    otel.provider.add_span_processor(SessionSpanProcessor())
    yield otel


# -- the decorated program every OTel variant must match ---------------------------------
@gs.span(type="llm", model="gpt-4o")
def chat(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": "hello"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


@gs.span(type="tool")
def search(q: str) -> str:
    return "found it"


@gs.span(type="retriever")
def retrieve(query: str) -> list[dict[str, Any]]:
    return [{"content": "doc one", "metadata": {"id": "d1"}}, {"content": "doc two"}]


@gs.trace
def decorated_agent(question: str) -> str:
    chat(MESSAGES)
    search("docs")
    retrieve("docs")
    return "done"


def _decorated_tree() -> list[dict[str, Any]]:
    with gs.testing.capture() as cap, gs.session("s"):
        decorated_agent("why")
    return strip_timing(cap.traces)


def _gen_ai_spans(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("chat", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps(MESSAGES),
            "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 2}) as span:
        span.set_attribute("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]))
    with tracer.start_as_current_span("search", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
            "gen_ai.tool.call.arguments": '{"q":"docs"}'}) as span:
        span.set_attribute("gen_ai.tool.call.result", "found it")
    with tracer.start_as_current_span("retrieve", attributes={
            "db.operation": "search", "gen_ai.system": "galileo-otel",
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": "docs"}])}) as span:
        span.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "content": {
            "documents": [{"content": "doc one", "metadata": {"id": "d1"}},
                          {"content": "doc two"}]}}]))


def _openinference_spans(tracer: trace.Tracer) -> None:
    attrs: dict[str, Any] = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"}
    for i, m in enumerate(MESSAGES):
        attrs[f"llm.input_messages.{i}.message.role"] = m["role"]
        attrs[f"llm.input_messages.{i}.message.content"] = m["content"]
    with tracer.start_as_current_span("chat", attributes=attrs) as span:
        span.set_attributes({"llm.output_messages.0.message.role": "assistant",
                             "llm.output_messages.0.message.contents.0.message_content.text":
                                 "hello",
                             "llm.token_count.prompt": 5, "llm.token_count.completion": 2,
                             "llm.token_count.total": 7})
    with tracer.start_as_current_span("search", attributes={
            "openinference.span.kind": "TOOL", "input.value": '{"q":"docs"}',
            "input.mime_type": "application/json"}) as span:
        span.set_attribute("output.value", "found it")
    with tracer.start_as_current_span("retrieve", attributes={
            "openinference.span.kind": "RETRIEVER", "input.value": "docs"}) as span:
        span.set_attributes({"retrieval.documents.0.document.content": "doc one",
                             "retrieval.documents.0.document.id": "d1",
                             "retrieval.documents.1.document.content": "doc two"})


@pytest.mark.parametrize("emit", [_gen_ai_spans, _openinference_spans],
                         ids=["gen_ai", "openinference"])
def test_foreign_spans_make_the_same_records(kit: OtelKit, emit: Any) -> None:
    expected = _decorated_tree()

    @gs.trace
    def decorated_agent(question: str) -> str:  # same name, body made of OTel spans
        emit(kit.tracer)
        return "done"

    with gs.testing.capture() as cap, gs.session("s"):
        decorated_agent("why")
    assert strip_timing(cap.traces) == expected


def test_nested_foreign_spans_keep_their_tree(kit: OtelKit) -> None:
    with gs.testing.capture() as cap, gs.session("s") as s:
        with kit.tracer.start_as_current_span("planner", attributes={
                "openinference.span.kind": "AGENT", "input.value": "plan it"}) as agent:
            with kit.tracer.start_as_current_span("GET", attributes={"http.method": "GET"}):
                with kit.tracer.start_as_current_span("chat", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}):
                    pass
            agent.set_attribute("output.value", "planned")
    (tree,) = cap.traces
    assert cap.session_of(tree) == s.id
    assert tree["name"] == "planner" and tree["input"] == "plan it"
    (planner,) = tree["spans"]
    assert planner["type"] == "agent" and planner["output"] == "planned"
    assert [(c["type"], c["name"]) for c in planner["spans"]] == [("llm", "chat")]
    assert planner["spans"][0]["model"] == "m"


def test_include_non_llm_and_span_types(otel: OtelKit) -> None:
    otel.provider.add_span_processor(SessionSpanProcessor(span_types=["llm", "workflow"],
                                                          include_non_llm=True))
    with gs.testing.capture() as cap:
        with otel.tracer.start_as_current_span("SELECT", attributes={"db.system": "sqlite"}):
            with otel.tracer.start_as_current_span("tool", attributes={
                    "gen_ai.operation.name": "execute_tool"}):
                pass
            with otel.tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat"}):
                pass
    (tree,) = cap.traces
    (db,) = tree["spans"]
    assert db["type"] == "workflow" and db["name"] == "SELECT"
    assert [c["name"] for c in db["spans"]] == ["chat"]


def test_span_under_galileo_span_and_late_delivery(kit: OtelKit) -> None:
    started = threading.Event()
    finish = threading.Event()
    holder: list[Any] = []

    @gs.span(type="agent")
    def agent() -> str:
        ctx = gs.wrap(lambda: (holder.append(kit.tracer.start_span(
            "late-chat", attributes={"gen_ai.operation.name": "chat"})), started.set()))
        ctx()
        return "ok"

    with gs.testing.capture() as cap:
        agent()
        assert started.wait(5)
        worker = threading.Thread(target=lambda: (finish.wait(5), holder[0].end()))
        worker.start()
        finish.set()
        worker.join(5)
    (tree,) = cap.traces
    agent_id = tree["spans"][0]["id"]
    (late,) = cap.spans
    assert late["trace_id"] == tree["id"] and late["parent_id"] == agent_id
    assert late["spans"][0]["name"] == "late-chat"


def test_malformed_attributes_become_notes(kit: OtelKit) -> None:
    with gs.testing.capture() as cap:
        with kit.tracer.start_as_current_span("chat", attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": "not json {",
                "gen_ai.output.messages": "[{broken",
                "gen_ai.usage.input_tokens": "many",
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.request.temperature": "hot",
                "gen_ai.request.model": 42}):
            pass
        with kit.tracer.start_as_current_span("t", attributes={
                "openinference.span.kind": "RETRIEVER",
                "retrieval.documents.0.document.content": "d",
                "retrieval.documents.0.document.metadata": "{nope"}):
            pass
    llm = cap.traces[0]["spans"][0]
    assert llm["input"] == [{"role": "user", "content": "not json {"}]
    assert llm["output"]["content"] == "[{broken"
    assert llm["metrics"]["num_output_tokens"] == 3
    assert "num_input_tokens" not in llm["metrics"]
    note = llm["user_metadata"]["otel.unreadable"]
    for part in ("gen_ai.input.messages", "gen_ai.output.messages",
                 "gen_ai.usage.input_tokens", "temperature"):
        assert part in note
    retriever = cap.traces[1]["spans"][0]
    assert retriever["output"] == [{"content": "d"}]
    assert "document.metadata" in retriever["user_metadata"]["otel.unreadable"]


def test_error_status_and_exception_event(kit: OtelKit) -> None:
    with gs.testing.capture() as cap, pytest.raises(RuntimeError):
        with kit.tracer.start_as_current_span("chat", attributes={
                "gen_ai.operation.name": "chat"}):
            raise RuntimeError("model down")
    span = cap.traces[0]["spans"][0]
    assert span["status_code"] == 500
    assert span["user_metadata"]["error.type"] == "RuntimeError"
    assert span["user_metadata"]["error.message"] == "model down"
    assert cap.traces[0]["status_code"] == 500


def test_galileo_session_attribute_without_current_session(kit: OtelKit) -> None:
    sid = "11111111-2222-4333-8444-555555555555"
    with gs.testing.capture() as cap:
        with kit.tracer.start_as_current_span("chat", attributes={
                "gen_ai.operation.name": "chat", "galileo.session.id": sid}):
            pass
    assert cap.requests[-1]["body"]["session_id"] == sid


def test_processor_never_raises_into_the_app(kit: OtelKit, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from galileo_sessions import _internal
    from galileo_sessions import otel as otel_module

    monkeypatch.setattr(_internal, "strict", False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mapping bug")

    monkeypatch.setattr(otel_module, "map_span", broken)
    with gs.testing.capture():
        with kit.tracer.start_as_current_span("chat", attributes={
                "gen_ai.operation.name": "chat"}):
            pass
