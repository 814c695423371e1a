"""Whole request bodies, asserted against literals (api.md sections 2, 3 and 8).

The test kit gives sequential ids (``ID(n)``) and a fixed clock that starts at
2026-01-01T00:00:00Z and advances 1 ms per reading. Opening a span reads it twice (wall time
for ``created_at``, then the monotonic start), closing it once, so every ``created_at`` and
``duration_ns`` below follows from the order of the calls.
"""

from __future__ import annotations

from typing import Any

import galileo_sessions as gs
from galileo_sessions.testing import LOG_STREAM_ID

MS = 1_000_000


def ID(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def AT(ms: int) -> str:
    return f"2026-01-01T00:00:00.{ms * 1000:06d}Z"


ENVELOPE = {"log_stream_id": LOG_STREAM_ID, "logging_method": "python_client",
            "client_version": "galileo-sessions/0.1.0", "reliable": False}


def traces_request(session_id: str | None, *traces: dict[str, Any]) -> dict[str, Any]:
    return {"route": "traces", "body": {**ENVELOPE, "session_id": session_id,
                                        "traces": list(traces), "is_complete": True}}


def rec(type_: str, id_: str, name: str, input_: Any, output: Any, at: int, dur_ms: int,
        *, spans: list[dict[str, Any]] | None = None, status: int | None = 200,
        meta: dict[str, str] | None = None, tags: list[str] | None = None,
        metrics: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": type_, "id": id_, "name": name, "input": input_, "output": output,
        "created_at": AT(at), "user_metadata": meta or {}, "tags": tags or [],
        "status_code": status, "metrics": {"duration_ns": dur_ms * MS, **(metrics or {})},
        **attrs,
    }
    if type_ != "llm":
        record["spans"] = spans or []
    return record


# -- the functions under test ---------------------------------------------------------------

@gs.span(type="retriever")
def retrieve(query: str) -> list[Any]:
    return ["doc a", {"content": "doc b", "metadata": {"src": "kb", "page": 3}}]


@gs.span(type="tool", tags=["weather"], metadata={"version": 2})
def lookup(city: str, units: str = "c") -> dict[str, int]:
    return {"temp": 21}


@gs.span(type="llm", model="gpt-4o", temperature=0.1)
def complete(messages: list[dict[str, str]]) -> str:
    return "answer"


@gs.span
def plan(q: str) -> str:
    retrieve(q)
    lookup("paris")
    return complete([{"role": "system", "content": "be brief"}, {"role": "user", "content": q}])


@gs.trace
def agent(q: str) -> str:
    return plan(q)


def test_trace_with_nested_workflow_llm_retriever_tool(gs_capture: gs.testing.Capture) -> None:
    assert agent("weather?") == "answer"
    # clock readings: agent 0/1, plan 2/3, retrieve 4/5/6, lookup 7/8/9, complete 10/11/12,
    # plan ends 13, agent ends 14.
    expected = rec(
        "trace", ID(1), "agent", '{"q":"weather?"}', "answer", 0, 13, spans=[
            rec("workflow", ID(2), "plan", '{"q":"weather?"}', "answer", 2, 10, spans=[
                rec("retriever", ID(3), "retrieve", "weather?",
                    [{"content": "doc a"},
                     {"content": "doc b", "metadata": {"src": "kb", "page": 3}}], 4, 1),
                rec("tool", ID(4), "lookup", '{"city":"paris","units":"c"}', '{"temp":21}', 7, 1,
                    tags=["weather"], meta={"version": "2"}),
                rec("llm", ID(5), "complete",
                    [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "weather?"}],
                    {"role": "assistant", "content": "answer"}, 10, 1,
                    model="gpt-4o", temperature=0.1),
            ]),
        ])
    assert gs_capture.requests == [traces_request(None, expected)]
    assert gs_capture.traces == [{**expected, "_session_id": None}]
    assert gs_capture.sessions == []
    assert gs_capture.spans == []


def test_lone_span_gets_an_implicit_trace_named_after_it(gs_capture: gs.testing.Capture) -> None:
    assert lookup("rome") == {"temp": 21}
    span = rec("tool", ID(2), "lookup", '{"city":"rome","units":"c"}', '{"temp":21}', 0, 1,
               tags=["weather"], meta={"version": "2"})
    trace = rec("trace", ID(1), "lookup", '{"city":"rome","units":"c"}', '{"temp":21}', 0, 1,
                spans=[span])
    assert gs_capture.requests == [traces_request(None, trace)]


def test_lone_llm_span_trace_takes_last_message_and_answer_text(
        gs_capture: gs.testing.Capture) -> None:
    complete([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}])
    (trace,) = gs_capture.traces
    assert trace["input"] == "hi"
    assert trace["output"] == "answer"
    assert trace["spans"][0]["output"] == {"role": "assistant", "content": "answer"}


def test_two_top_level_calls_make_two_traces(gs_capture: gs.testing.Capture) -> None:
    agent("one")
    agent("two")
    assert [t["name"] for t in gs_capture.traces] == ["agent", "agent"]
    first, second = gs_capture.traces
    assert (first["id"], second["id"]) == (ID(1), ID(6))
    assert (first["input"], second["input"]) == ('{"q":"one"}', '{"q":"two"}')
    assert (first["created_at"], second["created_at"]) == (AT(0), AT(15))
    assert [r["route"] for r in gs_capture.requests] == ["traces", "traces"]
    # each trace holds its own spans only
    assert first["spans"][0]["id"] == ID(2)
    assert second["spans"][0]["id"] == ID(7)
    assert len(first["spans"]) == len(second["spans"]) == 1


def test_sessions_chain_across_three_sessions(gs_capture: gs.testing.Capture) -> None:
    handles = []
    for turn in range(3):
        with gs.session("chat", metadata={"turn": turn}) as s:
            handles.append(s)
            lookup(f"city{turn}")
    # ids: session n takes a local id then a server id, then the trace and span ids.
    assert [h.id for h in handles] == [ID(2), ID(6), ID(10)]
    assert [h.previous_session_id for h in handles] == [None, ID(2), ID(6)]
    session_bodies = [r["body"] for r in gs_capture.requests if r["route"] == "sessions"]
    assert session_bodies == [
        {**ENVELOPE, "name": "chat", "external_id": None, "user_metadata": {"turn": str(turn)},
         "previous_session_id": prev}
        for turn, prev in enumerate([None, ID(2), ID(6)])
    ]
    server_ids = [ID(2), ID(6), ID(10)]
    assert gs_capture.sessions == [{"id": sid, **body}
                                   for sid, body in zip(server_ids, session_bodies, strict=True)]
    assert [r["route"] for r in gs_capture.requests] == ["sessions", "traces"] * 3
    assert [gs_capture.session_of(t) for t in gs_capture.traces] == [ID(2), ID(6), ID(10)]
    traces = [r["body"] for r in gs_capture.requests if r["route"] == "traces"]
    assert [b["session_id"] for b in traces] == [ID(2), ID(6), ID(10)]
    assert [b["traces"][0]["id"] for b in traces] == [ID(3), ID(7), ID(11)]


OPENAI_RESPONSE = {
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Paris."}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


@gs.span(type="llm")
def chat(messages: list[dict[str, str]], model: str, temperature: float = 0.7) -> Any:
    return OPENAI_RESPONSE


def test_llm_span_normalisation_from_openai_shaped_response(
        gs_capture: gs.testing.Capture) -> None:
    @gs.trace
    def ask() -> str:
        return str(chat([{"role": "user", "content": "Capital of France?"}],
                        model="gpt-4o-mini")["choices"][0]["message"]["content"])

    assert ask() == "Paris."
    llm = rec("llm", ID(2), "chat", [{"role": "user", "content": "Capital of France?"}],
              {"role": "assistant", "content": "Paris."}, 2, 1,
              metrics={"num_input_tokens": 12, "num_output_tokens": 3, "num_total_tokens": 15},
              model="gpt-4o-mini", temperature=0.7, finish_reason="stop")
    trace = rec("trace", ID(1), "ask", "{}", "Paris.", 0, 4, spans=[llm])
    assert gs_capture.requests == [traces_request(None, trace)]


def test_llm_span_takes_model_from_response_when_not_given(
        gs_capture: gs.testing.Capture) -> None:
    @gs.span(type="llm")
    def raw(prompt: str) -> Any:
        return OPENAI_RESPONSE

    raw("hello")
    (span,) = gs_capture.traces[0]["spans"]
    assert span["input"] == [{"role": "user", "content": "hello"}]
    assert span["model"] == "gpt-4o-mini-2024-07-18"
    assert "temperature" not in span
    assert span["metrics"]["num_total_tokens"] == 15


def test_llm_span_message_object_with_tool_calls(gs_capture: gs.testing.Capture) -> None:
    class Message:
        role = "assistant"
        content = None

    @gs.span(type="llm")
    def call(messages: list[Any]) -> Any:
        return {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "lookup", "arguments": {"city": "x"}}}]}}]}

    call([{"role": "user", "content": "hi"}, {"role": "tool", "content": "r",
                                              "tool_call_id": "c0"}])
    (span,) = gs_capture.traces[0]["spans"]
    assert span["input"] == [{"role": "user", "content": "hi"},
                             {"role": "tool", "content": "r", "tool_call_id": "c0"}]
    assert span["output"] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "function": {"name": "lookup", "arguments": '{"city":"x"}'}}]}


def test_failing_call_tree(gs_capture: gs.testing.Capture) -> None:
    class Throttled(Exception):
        status_code = 429

    @gs.span(type="tool")
    def flaky() -> None:
        raise Throttled("slow down")

    @gs.trace
    def run() -> str:
        try:
            flaky()
        except Throttled:
            return "recovered"
        return "no"

    assert run() == "recovered"
    meta = {"error.type": "test_failing_call_tree.<locals>.Throttled",
            "error.message": "slow down"}
    span = rec("tool", ID(2), "flaky", "{}", None, 2, 1, status=429, meta=meta)
    assert gs_capture.traces == [{**rec("trace", ID(1), "run", "{}", "recovered", 0, 4,
                                         spans=[span]), "_session_id": None}]


def test_capture_restarts_ids_and_clock() -> None:
    bodies = []
    for _ in range(2):
        with gs.testing.capture() as cap:
            with gs.session("again"):
                agent("same")
            bodies.append(cap.requests)
    assert bodies[0] == bodies[1]
    assert bodies[0][1]["body"]["traces"][0]["id"] == ID(3)


def test_reliable_mode_bodies() -> None:
    with gs.testing.capture(mode="reliable") as cap:
        with gs.session("r") as s:
            assert s.id == ID(2)  # known at once in reliable mode
            agent("r")
        with gs.session("ff", reliable=False):
            lookup("x")
    assert [(r["route"], r["body"]["reliable"]) for r in cap.requests] == [
        ("sessions", True), ("traces", True), ("sessions", False), ("traces", False)]
    assert cap.traces[0]["spans"][0]["name"] == "plan"


async def test_async_trees_match_sync_shape(gs_capture: gs.testing.Capture) -> None:
    @gs.span(type="tool")
    async def atool(city: str) -> str:
        return city.upper()

    @gs.trace
    async def aagent(q: str) -> str:
        return await atool(q)

    assert await aagent("oslo") == "OSLO"
    span = rec("tool", ID(2), "atool", '{"city":"oslo"}', "OSLO", 2, 1)
    trace = rec("trace", ID(1), "aagent", '{"q":"oslo"}', "OSLO", 0, 4, spans=[span])
    assert gs_capture.requests == [traces_request(None, trace)]
