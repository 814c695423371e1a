"""Context propagation: asyncio tasks, threads, late spans, nested sessions, current_span."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import galileo_sessions as gs
from galileo_sessions.testing import Capture


def walk(record: dict[str, Any], parent: str | None = None) -> list[tuple[str, str | None]]:
    """(name, parent name) for every span under ``record``."""
    out = [(record["name"], parent)]
    for child in record.get("spans", ()):
        out.extend(walk(child, record["name"]))
    return out


# -- asyncio ---------------------------------------------------------------------------------

@gs.span(type="tool")
async def tool(user: str, step: int) -> str:
    await asyncio.sleep(0.001 * ((step * 7 + len(user)) % 3))
    assert gs.current_span().name == "tool"
    return f"{user}-{step}"


@gs.span
async def worker_step(user: str) -> str:
    parts = []
    for step in range(3):
        parts.append(await tool(user, step))
        await asyncio.sleep(0)
    return ",".join(parts)


async def test_async_isolation_under_gather(gs_capture: Capture) -> None:
    n = 12

    async def handle(user: str) -> str:
        async with gs.session(f"chat-{user}", external_id=user) as s:
            @gs.trace
            async def turn(u: str) -> str:
                assert gs.current_session() is s
                return await worker_step(u)

            return await turn(user)

    users = [f"u{i}" for i in range(n)]
    results = await asyncio.gather(*(handle(u) for u in users))
    assert results == [f"{u}-0,{u}-1,{u}-2" for u in users]
    assert len(gs_capture.traces) == n
    session_ids = {s["external_id"]: s["id"] for s in gs_capture.sessions}
    assert len(set(session_ids.values())) == n
    for trace in gs_capture.traces:
        user = json_input_user(trace["input"])
        assert gs_capture.session_of(trace) == session_ids[user]
        (step,) = trace["spans"]
        assert step["input"] == f'{{"user":"{user}"}}'
        assert [t["output"] for t in step["spans"]] == [f"{user}-{i}" for i in range(3)]
        assert [t["input"] for t in step["spans"]] == \
            [f'{{"user":"{user}","step":{i}}}' for i in range(3)]
    assert gs.current_session() is None
    assert not gs.current_span()


def json_input_user(text: str) -> str:
    import json

    return str(json.loads(text)["u"])


async def test_tasks_created_inside_a_span_nest_under_it(gs_capture: Capture) -> None:
    @gs.trace
    async def fan_out() -> list[str]:
        return list(await asyncio.gather(tool("a", 1), tool("b", 2)))

    assert await fan_out() == ["a-1", "b-2"]
    (trace,) = gs_capture.traces
    assert walk(trace) == [("fan_out", None), ("tool", "fan_out"), ("tool", "fan_out")]


# -- threads ---------------------------------------------------------------------------------

@gs.span(type="tool")
def sync_tool(i: int) -> int:
    return i * i


def test_context_executor_children_nest_under_submitter(gs_capture: Capture) -> None:
    @gs.span
    def fan(n: int) -> list[int]:
        with gs.ContextExecutor(max_workers=4) as pool:
            return list(pool.map(sync_tool, range(n)))

    @gs.trace
    def run() -> list[int]:
        return fan(5)

    with gs.session("threads") as s:
        assert run() == [0, 1, 4, 9, 16]
    (trace,) = gs_capture.traces
    assert gs_capture.session_of(trace) == s.id
    (fan_span,) = trace["spans"]
    assert sorted(c["output"] for c in fan_span["spans"]) == ["0", "1", "16", "4", "9"]
    assert all(c["name"] == "sync_tool" for c in fan_span["spans"])
    assert gs_capture.spans == []


def test_context_executor_submit_and_session_visible(gs_capture: Capture) -> None:
    seen: list[Any] = []

    def job() -> int:
        seen.append((gs.current_session(), gs.current_span().name))
        return sync_tool(3)

    with gs.session("exec") as s, gs.trace("t"), gs.ContextExecutor(2) as pool:
        assert pool.submit(job).result() == 9
    assert seen == [(s, "t")]
    assert walk(gs_capture.traces[0]) == [("t", None), ("sync_tool", "t")]


def test_wrap_binds_context_for_plain_threads(gs_capture: Capture) -> None:
    results: list[int] = []

    @gs.trace
    def run() -> None:
        threads = [threading.Thread(target=gs.wrap(lambda i=i: results.append(sync_tool(i))))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run()
    assert sorted(results) == [0, 1, 4]
    (trace,) = gs_capture.traces
    assert walk(trace) == [("run", None)] + [("sync_tool", "run")] * 3


def test_wrap_keeps_signature_and_can_be_called_repeatedly(gs_capture: Capture) -> None:
    def f(x: int, *, y: int = 1) -> int:
        """F doc."""
        return sync_tool(x + y)

    with gs.trace("t"):
        bound = gs.wrap(f)
    import inspect

    assert inspect.signature(bound) == inspect.signature(f)
    assert bound.__doc__ == "F doc."
    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(bound, [1, 2])) == [4, 9]
    # the trace had ended when the wrapped calls ran: they are late spans of that trace
    (trace,) = gs_capture.traces
    assert len(gs_capture.spans) == 2
    for body in gs_capture.spans:
        assert body["trace_id"] == trace["id"]
        assert body["parent_id"] == trace["id"]


def test_plain_threads_without_wrap_start_their_own_traces(gs_capture: Capture) -> None:
    @gs.trace
    def run() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(sync_tool, range(2)))

    run()
    names = sorted(t["name"] for t in gs_capture.traces)
    assert names == ["run", "sync_tool", "sync_tool"]
    run_trace = next(t for t in gs_capture.traces if t["name"] == "run")
    assert run_trace["spans"] == []


def test_late_child_span_delivered_against_its_trace(gs_capture: Capture) -> None:
    release = threading.Event()
    started = threading.Event()
    pool = gs.ContextExecutor(max_workers=1)

    @gs.span(type="tool")
    def slow_child(x: int) -> str:
        started.set()
        assert release.wait(5)
        return f"late {x}"

    @gs.span
    def submitter() -> Any:
        return pool.submit(slow_child, 7)

    @gs.trace
    def run() -> Any:
        future = submitter()
        assert started.wait(5)
        return future

    with gs.session("late") as s:
        future = run()
    (trace,) = gs_capture.traces
    (submit_span,) = trace["spans"]
    assert submit_span["spans"] == []  # the child was still running when the trace went out
    assert gs_capture.spans == []
    release.set()
    assert future.result(5) == "late 7"
    pool.shutdown(wait=True)
    assert len(gs_capture.spans) == 1
    (body,) = gs_capture.spans
    assert body["trace_id"] == trace["id"]
    assert body["parent_id"] == submit_span["id"]
    (late,) = body["spans"]
    assert (late["name"], late["type"], late["output"], late["input"]) == \
        ("slow_child", "tool", "late 7", '{"x":7}')
    assert late["status_code"] == 200
    assert [r["route"] for r in gs_capture.requests] == ["sessions", "traces", "spans"]
    assert gs_capture.session_of(trace) == s.id


def test_late_child_with_its_own_children(gs_capture: Capture) -> None:
    release = threading.Event()
    pool = gs.ContextExecutor(max_workers=1)

    @gs.span
    def late_parent() -> int:
        first = sync_tool(2)  # ends while the trace is still open, rides with late_parent
        assert release.wait(5)
        return first + sync_tool(3)

    with gs.trace("t"):
        future = pool.submit(late_parent)
    release.set()
    assert future.result(5) == 13
    pool.shutdown(wait=True)
    (trace,) = gs_capture.traces
    assert trace["spans"] == []
    (body,) = gs_capture.spans
    assert (body["trace_id"], body["parent_id"]) == (trace["id"], trace["id"])
    (parent,) = body["spans"]
    assert [c["output"] for c in parent["spans"]] == ["4", "9"]


def test_late_failing_child_is_delivered_with_error(gs_capture: Capture) -> None:
    release = threading.Event()
    pool = gs.ContextExecutor(max_workers=1)

    @gs.span
    def late_fail() -> None:
        assert release.wait(5)
        raise ValueError("late boom")

    with gs.trace("t"):
        future = pool.submit(late_fail)
    release.set()
    with pytest.raises(ValueError, match="late boom"):
        future.result(5)
    pool.shutdown(wait=True)
    (body,) = gs_capture.spans
    assert body["spans"][0]["status_code"] == 500
    assert body["spans"][0]["user_metadata"]["error.type"] == "ValueError"


def test_many_racing_children_never_dropped_or_duplicated(gs_capture: Capture) -> None:
    for _ in range(20):
        with gs.trace("t"), gs.ContextExecutor(4) as pool:
            futures = [pool.submit(sync_tool, i) for i in range(8)]
            # leaving the executor waits for the children; some may end after the trace
        for f in futures:
            f.result()
    for _ in range(20):
        pool = gs.ContextExecutor(4)
        with gs.trace("t2"):
            futures = [pool.submit(sync_tool, i) for i in range(8)]
        pool.shutdown(wait=True)
    ids: list[str] = []
    for trace in gs_capture.traces:
        ids.extend(s["id"] for s in trace["spans"])
    for body in gs_capture.spans:
        trace_ids = {t["id"] for t in gs_capture.traces}
        assert body["trace_id"] in trace_ids
        assert body["parent_id"] == body["trace_id"]
        ids.extend(s["id"] for s in body["spans"])
    assert len(ids) == len(set(ids)) == 40 * 8


# -- sessions nesting ------------------------------------------------------------------------

def test_nested_sessions_are_separate_and_outer_restored(gs_capture: Capture) -> None:
    assert gs.current_session() is None
    with gs.session("outer") as outer:
        sync_tool(1)
        with gs.session("inner") as inner:
            assert gs.current_session() is inner
            sync_tool(2)
        assert gs.current_session() is outer
        sync_tool(3)
    assert gs.current_session() is None
    assert outer.id != inner.id
    assert inner.previous_session_id is None  # different chain (different name)
    assert [gs_capture.session_of(t) for t in gs_capture.traces] == \
        [outer.id, inner.id, outer.id]
    assert [s["name"] for s in gs_capture.sessions] == ["outer", "inner"]


async def test_nested_async_sessions(gs_capture: Capture) -> None:
    async with gs.session("outer") as outer:
        async with gs.session("inner") as inner:
            assert gs.current_session() is inner
        assert gs.current_session() is outer
    assert gs.current_session() is None


def test_session_exit_after_exception_restores(gs_capture: Capture) -> None:
    with pytest.raises(KeyError), gs.session("outer") as outer:
        with gs.session("inner"):
            raise KeyError("x")
    assert gs.current_session() is None
    with gs.session("after") as after:
        assert gs.current_session() is after
    assert outer.id is not None


# -- current_span ----------------------------------------------------------------------------

def test_current_span_update_overrides(gs_capture: Capture) -> None:
    @gs.span(type="llm", model="decl-model")
    def call(prompt: str) -> dict[str, Any]:
        handle = gs.current_span()
        assert handle
        assert handle.type == "llm"
        handle.update(output="overridden", metadata={"k": 1, "s": "v"}, tags=["a", "b"],
                      status_code=201, model="real-model", input_tokens=10, output_tokens=4)
        return {"choices": [{"message": {"role": "assistant", "content": "returned"}}]}

    @gs.trace
    def run() -> str:
        call("hi")
        gs.current_span().update(output="trace-out", tags=["t"])
        return "ignored"

    assert run() == "ignored"
    (trace,) = gs_capture.traces
    assert (trace["output"], trace["tags"]) == ("trace-out", ["t"])
    (span,) = trace["spans"]
    assert span["output"] == {"role": "assistant", "content": "overridden"}
    assert span["user_metadata"] == {"k": "1", "s": "v"}
    assert span["tags"] == ["a", "b"]
    assert span["status_code"] == 201
    assert span["model"] == "real-model"
    assert span["metrics"]["num_input_tokens"] == 10
    assert span["metrics"]["num_output_tokens"] == 4
    assert span["metrics"]["num_total_tokens"] == 14


def test_update_status_code_does_not_hide_an_exception(gs_capture: Capture) -> None:
    @gs.span
    def f() -> None:
        gs.current_span().update(status_code=200)
        raise RuntimeError("still failed")

    with pytest.raises(RuntimeError):
        f()
    assert gs_capture.traces[0]["spans"][0]["status_code"] == 500


def test_update_output_none_is_recorded(gs_capture: Capture) -> None:
    @gs.span
    def f() -> str:
        gs.current_span().update(output=None)
        return "returned"

    f()
    # None serializes like a function returning None; the return value does not win
    assert gs_capture.traces[0]["spans"][0]["output"] == ""


def test_current_span_outside_is_noop_handle() -> None:
    handle = gs.current_span()
    assert not handle
    assert handle.id is None and handle.trace_id is None and handle.name is None
    handle.update(output="x", metadata={"a": 1}, tags=["t"], status_code=500, model="m",
                  input_tokens=1, output_tokens=2)
    assert "no active span" in repr(handle)
    assert gs.current_session() is None


def test_current_span_trace_id(gs_capture: Capture) -> None:
    with gs.trace("t") as t, gs.span("s") as s:
        assert gs.current_span().trace_id == t.id
        assert s.trace_id == t.id
        assert gs.current_span().id == s.id


def test_instrument_threads_carries_context_into_plain_executors(
        gs_capture: gs.testing.Capture) -> None:
    """Opt-in: a library's own ThreadPoolExecutor nests its spans once patched, and not after
    the patch is undone."""
    from concurrent.futures import ThreadPoolExecutor

    @gs.span(type="tool")
    def work(n: int) -> int:
        return n * 2

    @gs.trace
    def agent() -> list[int]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(work, [1, 2]))

    original = ThreadPoolExecutor.submit
    gs.instrument_threads()
    gs.instrument_threads()  # idempotent
    try:
        assert agent() == [2, 4]
    finally:
        gs.uninstrument_threads()
    assert ThreadPoolExecutor.submit is original
    (trace,) = gs_capture.traces
    assert [s["name"] for s in trace["spans"]] == ["work", "work"]
    gs_capture.clear()
    assert agent() == [2, 4]  # unpatched: the thread spans start traces of their own
    assert sorted(t["name"] for t in gs_capture.traces) == ["agent", "work", "work"]
