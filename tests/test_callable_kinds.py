"""Every callable kind x success / exception / cancellation (api.md section 3).

The wrapper must be invisible: same return value, the same exception object with its
traceback, the generator protocol kept exactly, introspection preserved.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import galileo_sessions as gs
from galileo_sessions.testing import Capture


class Boom(Exception):
    pass


class NotFound(Exception):
    status_code = 404


def frames(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


def only_span(cap: Capture) -> dict[str, Any]:
    (trace,) = cap.traces
    (span,) = trace["spans"]
    return span


def assert_failed(span: dict[str, Any], status: int, type_: str, message: str) -> None:
    assert span["status_code"] == status
    assert span["user_metadata"]["error.type"] == type_
    assert span["user_metadata"]["error.message"] == message
    assert "cancelled" not in span["user_metadata"]


def assert_cancelled(span: dict[str, Any]) -> None:
    assert span["user_metadata"].get("cancelled") == "true"
    assert span["status_code"] != 500
    assert "error.type" not in span["user_metadata"]


# -- sync functions --------------------------------------------------------------------------

def test_function_success(gs_capture: Capture) -> None:
    result = object()

    @gs.span(type="tool")
    def fn(a: int, b: str = "x", *rest: int, flag: bool = False, **extra: Any) -> object:
        return result

    assert fn(1, "y", 2, 3, flag=True, k="v") is result
    span = only_span(gs_capture)
    assert span["input"] == '{"a":1,"b":"y","rest":[2,3],"flag":true,"k":"v"}'
    assert span["status_code"] == 200


@pytest.mark.parametrize(("exc", "status"), [(Boom("bad"), 500), (NotFound("gone"), 404),
                                             (KeyboardInterrupt(), 500)])
def test_function_exception_same_object(gs_capture: Capture, exc: BaseException,
                                        status: int) -> None:
    @gs.span
    def failing_function() -> None:
        raise exc

    with pytest.raises(type(exc)) as info:
        failing_function()
    assert info.value is exc
    assert "failing_function" in frames(info.value)
    span = only_span(gs_capture)
    assert_failed(span, status, type(exc).__qualname__, str(exc))
    assert gs_capture.traces[0]["status_code"] == status


def test_status_code_attribute_that_is_not_int_gives_500(gs_capture: Capture) -> None:
    class Weird(Exception):
        status_code = "418"

    class Flag(Exception):
        status_code = True

    @gs.span
    def f(exc: Exception) -> None:
        raise exc

    for exc in (Weird(), Flag()):
        with pytest.raises(type(exc)):
            f(exc)
    assert [t["spans"][0]["status_code"] for t in gs_capture.traces] == [500, 500]


# -- coroutines ------------------------------------------------------------------------------

async def test_coroutine_success_and_exception(gs_capture: Capture) -> None:
    @gs.span(type="tool")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise NotFound(f"no {x}")
        return x * 2

    assert await fetch(4) == 8
    exc: BaseException | None = None
    try:
        await fetch(-1)
    except NotFound as caught:
        exc = caught
    assert exc is not None
    assert "fetch" in frames(exc)
    ok, failed = (t["spans"][0] for t in gs_capture.traces)
    assert ok["output"] == "8"
    assert_failed(failed, 404, "NotFound", "no -1")


async def test_coroutine_cancelled(gs_capture: Capture) -> None:
    started = asyncio.Event()

    @gs.span
    async def slow() -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.ensure_future(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = only_span(gs_capture)
    assert_cancelled(span)
    assert gs_capture.traces[0]["user_metadata"]["cancelled"] == "true"


async def test_coroutine_cancelled_inside_trace(gs_capture: Capture) -> None:
    @gs.span
    async def slow() -> None:
        await asyncio.sleep(30)

    @gs.trace
    async def outer() -> str:
        try:
            await asyncio.wait_for(slow(), 0.01)
        except asyncio.TimeoutError:
            return "timed out"
        return "no"

    assert await outer() == "timed out"
    (trace,) = gs_capture.traces
    assert trace["status_code"] == 200
    assert_cancelled(trace["spans"][0])


# -- generators ------------------------------------------------------------------------------

def test_generator_success_output_joined(gs_capture: Capture) -> None:
    @gs.span
    def words(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"w{i} "
        return "done"  # type: ignore[misc]

    gen = words(3)
    assert list(gen) == ["w0 ", "w1 ", "w2 "]
    span = only_span(gs_capture)
    assert span["output"] == "w0 w1 w2 "
    assert span["input"] == '{"n":3}'
    assert span["status_code"] == 200


def test_generator_non_string_items_listed(gs_capture: Capture) -> None:
    @gs.span
    def nums() -> Iterator[int]:
        yield 1
        yield 2

    assert list(nums()) == [1, 2]
    assert only_span(gs_capture)["output"] == "[1,2]"


def test_generator_protocol_send_throw_close_return(gs_capture: Capture) -> None:
    log: list[Any] = []

    @gs.span
    def echo() -> Any:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
                log.append(received)
            except ValueError as exc:
                log.append(f"caught {exc}")
                received = yield "recovered"
            if received == "stop":
                return "result"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "got a"
    assert gen.throw(ValueError("oops")) == "recovered"
    assert gen.send("b") == "got b"
    with pytest.raises(StopIteration) as stop:
        gen.send("stop")
    assert stop.value.value == "result"
    assert log == ["caught oops", "stop"]
    span = only_span(gs_capture)
    assert span["status_code"] == 200
    assert span["output"] == "readygot arecoveredgot b"


def test_generator_yield_from_delegation(gs_capture: Capture) -> None:
    @gs.span
    def inner() -> Any:
        value = yield 1
        yield value
        return "inner-result"

    def outer() -> Any:
        result = yield from inner()
        yield result

    gen = outer()
    assert next(gen) == 1
    assert gen.send("sent") == "sent"
    assert next(gen) == "inner-result"
    assert only_span(gs_capture)["status_code"] == 200


def test_generator_exception_same_object(gs_capture: Capture) -> None:
    exc = Boom("mid-stream")

    @gs.span
    def failing_gen() -> Iterator[str]:
        yield "a"
        raise exc

    gen = failing_gen()
    assert next(gen) == "a"
    with pytest.raises(Boom) as info:
        next(gen)
    assert info.value is exc
    assert "failing_gen" in frames(exc)
    assert_failed(only_span(gs_capture), 500, "Boom", "mid-stream")


def test_generator_throw_not_caught_propagates(gs_capture: Capture) -> None:
    @gs.span
    def gen_fn() -> Iterator[int]:
        yield 1
        yield 2

    gen = gen_fn()
    next(gen)
    exc = NotFound("thrown")
    with pytest.raises(NotFound) as info:
        gen.throw(exc)
    assert info.value is exc
    assert_failed(only_span(gs_capture), 404, "NotFound", "thrown")


def test_generator_close_marks_cancelled_and_runs_finally(gs_capture: Capture) -> None:
    cleaned: list[bool] = []

    @gs.span
    def gen_fn() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            cleaned.append(True)

    gen = gen_fn()
    assert next(gen) == 1
    gen.close()
    assert cleaned == [True]
    span = only_span(gs_capture)
    assert_cancelled(span)
    assert span["output"] is None or span["output"] == ""


def test_generator_abandoned_and_collected_ends_span(gs_capture: Capture) -> None:
    cleaned: list[bool] = []

    @gs.span
    def gen_fn() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            cleaned.append(True)

    def consume_two() -> None:
        gen = gen_fn()
        next(gen)
        next(gen)

    consume_two()
    gc.collect()
    assert cleaned == [True]
    assert_cancelled(only_span(gs_capture))


def test_generator_span_not_current_between_items(gs_capture: Capture) -> None:
    seen: list[str | None] = []

    @gs.span
    def gen_fn() -> Iterator[int]:
        seen.append(gs.current_span().name)
        yield 1
        seen.append(gs.current_span().name)
        yield 2

    @gs.trace
    def consumer() -> None:
        for _ in gen_fn():
            seen.append(gs.current_span().name)

    consumer()
    assert seen == ["gen_fn", "consumer", "gen_fn", "consumer"]


def test_llm_generator_time_to_first_token(gs_capture: Capture) -> None:
    @gs.span(type="llm", model="m")
    def stream(prompt: str) -> Iterator[Any]:
        yield {"choices": [{"delta": {"content": "Hel"}}]}
        yield {"choices": [{"delta": {"content": "lo"}}]}

    assert len(list(stream("hi"))) == 2
    span = only_span(gs_capture)
    assert span["output"] == {"role": "assistant", "content": "Hello"}
    # fixed clock: created 0, start 1, first token read at 2
    assert span["metrics"]["time_to_first_token_ns"] == 1_000_000
    assert span["metrics"]["duration_ns"] == 2_000_000


# -- async generators ------------------------------------------------------------------------

async def test_async_generator_success(gs_capture: Capture) -> None:
    @gs.span(type="llm")
    async def stream(prompt: str) -> AsyncIterator[str]:
        for part in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield part

    assert [x async for x in stream("q")] == ["a", "b", "c"]
    span = only_span(gs_capture)
    assert span["output"] == {"role": "assistant", "content": "abc"}
    assert span["metrics"]["time_to_first_token_ns"] > 0
    assert span["status_code"] == 200


async def test_async_generator_asend_athrow(gs_capture: Capture) -> None:
    @gs.span
    async def echo() -> AsyncIterator[str]:
        got = yield "ready"
        try:
            got = yield f"got {got}"
        except ValueError:
            yield "recovered"

    agen = echo()
    assert await agen.asend(None) == "ready"
    assert await agen.asend("x") == "got x"
    assert await agen.athrow(ValueError("v")) == "recovered"
    with pytest.raises(StopAsyncIteration):
        await agen.asend(None)
    assert only_span(gs_capture)["output"] == "readygot xrecovered"


async def test_async_generator_exception_same_object(gs_capture: Capture) -> None:
    exc = NotFound("agen")

    @gs.span
    async def failing_agen() -> AsyncIterator[int]:
        yield 1
        raise exc

    agen = failing_agen()
    assert await agen.__anext__() == 1
    with pytest.raises(NotFound) as info:
        await agen.__anext__()
    assert info.value is exc
    assert "failing_agen" in frames(exc)
    assert_failed(only_span(gs_capture), 404, "NotFound", "agen")


async def test_async_generator_aclose_and_break(gs_capture: Capture) -> None:
    cleaned: list[int] = []

    @gs.span
    async def agen_fn(n: int) -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            cleaned.append(n)

    agen = agen_fn(1)
    assert await agen.__anext__() == 0
    await agen.aclose()
    agen2 = agen_fn(2)
    async for item in agen2:
        if item == 1:
            break
    await agen2.aclose()
    assert cleaned == [1, 2]
    assert len(gs_capture.traces) == 2
    for trace in gs_capture.traces:
        assert_cancelled(trace["spans"][0])


async def test_async_generator_abandoned_and_collected_ends_span(gs_capture: Capture) -> None:
    cleaned: list[bool] = []

    @gs.span
    async def agen_fn() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            cleaned.append(True)

    agen = agen_fn()
    assert await agen.__anext__() == 0
    del agen
    gc.collect()
    for _ in range(5):  # the loop's async-generator finalizer schedules aclose()
        await asyncio.sleep(0)
    assert cleaned == [True]
    assert_cancelled(only_span(gs_capture))


def test_trace_inside_trace_is_a_workflow_span(gs_capture: Capture) -> None:
    @gs.trace
    def inner() -> int:
        return 1

    @gs.trace
    def outer() -> int:
        with gs.trace("block"):
            return inner()

    assert outer() == 1
    (trace,) = gs_capture.traces
    (block,) = trace["spans"]
    assert (block["type"], block["name"]) == ("workflow", "block")
    assert [(s["type"], s["name"]) for s in block["spans"]] == [("workflow", "inner")]


async def test_async_generator_cancelled_task(gs_capture: Capture) -> None:
    started = asyncio.Event()

    @gs.span
    async def agen_fn() -> AsyncIterator[int]:
        yield 1
        started.set()
        await asyncio.sleep(30)
        yield 2

    async def consume() -> None:
        async for _ in agen_fn():
            pass

    task = asyncio.ensure_future(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_cancelled(only_span(gs_capture))


# -- methods ---------------------------------------------------------------------------------

class Agent:
    prefix = "p"

    def __init__(self) -> None:
        self.calls = 0

    @gs.span(type="tool")
    def method(self, x: int) -> str:
        """Method doc."""
        self.calls += 1
        return f"{self.prefix}{x}"

    @gs.span
    @classmethod
    def cm_above(cls, x: int) -> str:
        return f"{cls.prefix}{x}"

    @classmethod
    @gs.span
    def cm_below(cls, x: int) -> str:
        return f"{cls.prefix}{x}"

    @gs.span
    @staticmethod
    def sm_above(x: int) -> int:
        return x + 1

    @staticmethod
    @gs.span
    def sm_below(x: int) -> int:
        return x + 2

    @gs.span
    async def amethod(self, x: int) -> int:
        return x

    @classmethod
    @gs.span
    def cm_fail(cls, x: int) -> None:
        raise Boom(f"cls {x}")


class Child(Agent):
    prefix = "c"


@pytest.mark.parametrize(("call", "result", "input_"), [
    (lambda: Agent().method(1), "p1", '{"x":1}'),
    (lambda: Agent.cm_above(2), "p2", '{"x":2}'),
    (lambda: Agent.cm_below(3), "p3", '{"x":3}'),
    (lambda: Child.cm_above(4), "c4", '{"x":4}'),
    (lambda: Child().cm_below(5), "c5", '{"x":5}'),
    (lambda: Agent.sm_above(6), 7, '{"x":6}'),
    (lambda: Agent().sm_below(x=6), 8, '{"x":6}'),
])
def test_methods_drop_self_and_cls(gs_capture: Capture, call: Any, result: Any,
                                   input_: str) -> None:
    assert call() == result
    span = only_span(gs_capture)
    assert span["input"] == input_
    assert span["status_code"] == 200


def test_method_instance_state_and_exception(gs_capture: Capture) -> None:
    agent = Agent()
    agent.method(1)
    agent.method(2)
    assert agent.calls == 2
    with pytest.raises(Boom, match="cls 7") as info:
        Agent.cm_fail(7)
    assert "cm_fail" in frames(info.value)
    assert_failed(gs_capture.traces[-1]["spans"][0], 500, "Boom", "cls 7")


async def test_async_method(gs_capture: Capture) -> None:
    assert await Agent().amethod(9) == 9
    assert only_span(gs_capture)["input"] == '{"x":9}'


def test_method_kinds_preserved() -> None:
    assert isinstance(Agent.__dict__["cm_above"], classmethod)
    assert isinstance(Agent.__dict__["cm_below"], classmethod)
    assert isinstance(Agent.__dict__["sm_above"], staticmethod)
    assert isinstance(Agent.__dict__["sm_below"], staticmethod)
    assert Agent.method.__doc__ == "Method doc."
    assert inspect.iscoroutinefunction(Agent.amethod)


# -- context managers ------------------------------------------------------------------------

def test_with_span_success(gs_capture: Capture) -> None:
    with gs.trace("turn", input="hello") as t:
        with gs.span("step", type="tool", input={"q": 1}) as s:
            assert gs.current_span().id == s.id
            s.update(output="step-out")
        t.update(output="done")
    (trace,) = gs_capture.traces
    assert (trace["name"], trace["input"], trace["output"]) == ("turn", "hello", "done")
    assert trace["status_code"] == 200
    (span,) = trace["spans"]
    assert (span["name"], span["type"], span["input"], span["output"]) == \
        ("step", "tool", '{"q":1}', "step-out")
    assert gs.current_span().id is None


def test_with_span_exception(gs_capture: Capture) -> None:
    exc = NotFound("in block")
    with pytest.raises(NotFound) as info, gs.trace("turn"):
        with gs.span("step"):
            raise exc
    assert info.value is exc
    (trace,) = gs_capture.traces
    assert_failed(trace, 404, "NotFound", "in block")
    assert_failed(trace["spans"][0], 404, "NotFound", "in block")


def test_with_span_generator_exit(gs_capture: Capture) -> None:
    def gen() -> Iterator[int]:
        with gs.span("inside-gen"):
            yield 1
            yield 2

    g = gen()
    next(g)
    g.close()
    assert_cancelled(only_span(gs_capture))


def test_with_span_alone_opens_implicit_trace(gs_capture: Capture) -> None:
    with gs.span("solo", type="retriever", input="q") as s:
        s.update(output=["d1"])
    (trace,) = gs_capture.traces
    assert trace["name"] == "solo"
    assert trace["input"] == "q"
    assert trace["spans"][0]["output"] == [{"content": "d1"}]


async def test_async_with_success_exception_cancel(gs_capture: Capture) -> None:
    async with gs.trace("a") as t:
        async with gs.span("b", type="llm", input="hi") as s:
            s.update(output="yo", input_tokens=2, output_tokens=3)
        assert t.type == "trace"
    with pytest.raises(Boom):
        async with gs.span("c"):
            raise Boom("x")

    started = asyncio.Event()

    async def cancelled() -> None:
        async with gs.span("d"):
            started.set()
            await asyncio.sleep(30)

    task = asyncio.ensure_future(cancelled())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ok, failed, cancel = gs_capture.traces
    span = ok["spans"][0]
    assert span["output"] == {"role": "assistant", "content": "yo"}
    assert span["metrics"]["num_total_tokens"] == 5
    assert_failed(failed["spans"][0], 500, "Boom", "x")
    assert_cancelled(cancel["spans"][0])


def test_instrument_reused_as_nested_context_manager(gs_capture: Capture) -> None:
    step = gs.span("step")
    with gs.trace("t"), step:
        with step:
            pass
    (trace,) = gs_capture.traces
    (outer,) = trace["spans"]
    assert outer["name"] == "step"
    assert [s["name"] for s in outer["spans"]] == ["step"]


# -- introspection ---------------------------------------------------------------------------

def plain(a: int, /, b: str = "x", *args: int, c: float, **kw: Any) -> str:
    """Plain doc."""
    return b


async def coro(a: int, *, b: str = "y") -> int:
    """Coro doc."""
    return a


def gen(n: int) -> Iterator[int]:
    """Gen doc."""
    yield n


async def agen(n: int) -> AsyncIterator[int]:
    """Agen doc."""
    yield n


@pytest.mark.parametrize("original", [plain, coro, gen, agen])
@pytest.mark.parametrize("decorator", [
    gs.span, gs.trace, gs.log, gs.span(type="llm"), gs.log(span_type="tool"),
    gs.trace("named"),
])
def test_introspection_preserved(original: Any, decorator: Any) -> None:
    decorated = decorator(original)
    assert decorated is not original
    assert inspect.signature(decorated) == inspect.signature(original)
    assert decorated.__name__ == original.__name__
    assert decorated.__qualname__ == original.__qualname__
    assert decorated.__doc__ == original.__doc__
    assert decorated.__wrapped__ is original
    assert inspect.iscoroutinefunction(decorated) == inspect.iscoroutinefunction(original)
    assert inspect.isgeneratorfunction(decorated) == inspect.isgeneratorfunction(original)
    assert inspect.isasyncgenfunction(decorated) == inspect.isasyncgenfunction(original)


def test_session_decorator_introspection() -> None:
    for original in (plain, coro):
        decorated = gs.session("s")(original)
        assert inspect.signature(decorated) == inspect.signature(original)
        assert decorated.__wrapped__ is original
        assert inspect.iscoroutinefunction(decorated) == inspect.iscoroutinefunction(original)


def test_span_name_option_and_log_name(gs_capture: Capture) -> None:
    @gs.span("custom-name", type="agent")
    def f() -> None: ...

    @gs.log(name="logged", span_type="tool")
    def g() -> None: ...

    f()
    g()
    assert [(t["spans"][0]["name"], t["spans"][0]["type"]) for t in gs_capture.traces] == \
        [("custom-name", "agent"), ("logged", "tool")]


def test_bad_span_type_is_config_error() -> None:
    with pytest.raises(gs.ConfigError, match="type"):
        gs.span(type="banana")  # type: ignore[arg-type]


def test_decorating_non_callable_is_type_error() -> None:
    with pytest.raises(TypeError):
        gs.span()(42)  # type: ignore[arg-type]
