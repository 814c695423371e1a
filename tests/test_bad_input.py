"""Odd values, capture switches, the redact hook, bad configuration, the kill switch."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import galileo_sessions as gs
from galileo_sessions import _internal
from galileo_sessions._serialize import TRUNCATION_MARKER
from galileo_sessions._store import validate
from galileo_sessions.testing import Capture


@dataclasses.dataclass
class Point:
    x: int
    label: str


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


@gs.span(type="tool")
def echo(*args: Any, **kwargs: Any) -> Any:
    return args[0] if len(args) == 1 and not kwargs else (args, kwargs)


def span_of(cap: Capture, index: int = -1) -> dict[str, Any]:
    return dict(cap.traces[index]["spans"][0])


def body_bytes(cap: Capture) -> int:
    return max(len(json.dumps(r["body"], allow_nan=False)) for r in cap.requests)


ODD_VALUES: list[tuple[str, Any, str]] = [
    ("dataclass", Point(1, "a"), '{"x":1,"label":"a"}'),
    ("bad repr", BadRepr(), '"<BadRepr object>"'),
    ("bytes", b"\x00\xffab", '"<bytes len=4 b64=AP9hYg==>"'),
    ("set", {3}, "[3]"),
    ("frozenset", frozenset(), "[]"),
    ("nan", math.nan, '"NaN"'),
    ("inf", -math.inf, '"-Infinity"'),
    ("surrogate", "a\ud800b", "a\ufffdb"),
]


@pytest.mark.parametrize(("label", "value", "output"), ODD_VALUES, ids=[v[0] for v in ODD_VALUES])
def test_odd_values_as_argument_and_return(gs_capture: Capture, label: str, value: Any,
                                           output: str) -> None:
    assert echo(value) is value
    span = span_of(gs_capture)
    assert span["output"] == output
    argument = json.loads(output) if output.startswith(("{", "[", '"')) else output
    assert json.loads(span["input"]) == {"args": [argument]}
    json.dumps(gs_capture.requests, allow_nan=False).encode("utf-8")


def test_cycles_in_arguments_and_return(gs_capture: Capture) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    mapping: dict[str, Any] = {"k": 1}
    mapping["me"] = mapping
    assert echo(cyclic, m=mapping)[0][0] is cyclic
    span = span_of(gs_capture)
    assert json.loads(span["input"]) == {"args": [[1, "<cycle>"]],
                                         "m": {"k": 1, "me": "<cycle>"}}


def test_exception_whose_str_raises(gs_capture: Capture) -> None:
    @gs.span
    def fail() -> None:
        raise BadStrError

    with pytest.raises(BadStrError):
        fail()
    meta = span_of(gs_capture)["user_metadata"]
    assert meta["error.type"] == "BadStrError"
    assert "str() failed" in meta["error.message"]


def test_huge_strings_truncated_with_marker_and_body_valid() -> None:
    limit = 1000
    with gs.testing.capture(max_field_bytes=limit) as cap:
        @gs.span(type="llm")
        def llm(prompt: str) -> str:
            return "o" * 50_000

        @gs.span(type="retriever")
        def retrieve(q: str) -> list[str]:
            return ["d" * 50_000]

        @gs.trace
        def run(text: str) -> str:
            llm(text)
            retrieve(text)
            echo(text, big={"k": "v" * 50_000})
            return text

        run("i" * 200_000)
    (trace,) = cap.traces
    assert TRUNCATION_MARKER in trace["input"] and len(trace["input"].encode()) <= limit
    assert TRUNCATION_MARKER in trace["output"] and len(trace["output"].encode()) <= limit
    llm_span, retriever_span, tool_span = trace["spans"]
    assert TRUNCATION_MARKER in llm_span["input"][0]["content"]
    assert TRUNCATION_MARKER in llm_span["output"]["content"]
    assert len(llm_span["output"]["content"].encode()) <= limit
    assert TRUNCATION_MARKER in retriever_span["output"][0]["content"]
    assert TRUNCATION_MARKER in tool_span["input"]
    assert len(tool_span["input"].encode()) <= limit
    assert body_bytes(cap) < 10 * limit


def test_many_messages_and_documents_stay_within_the_field_bound() -> None:
    limit = 2000
    with gs.testing.capture(max_field_bytes=limit) as cap:
        @gs.span(type="llm")
        def llm(messages: list[dict[str, str]]) -> str:
            return "ok"

        @gs.span(type="retriever")
        def retrieve(q: str) -> list[str]:
            return [f"doc {i} " + "d" * 500 for i in range(500)]

        llm([{"role": "system", "content": "be nice"}] +
            [{"role": "user", "content": f"m{i} " + "x" * 500} for i in range(500)])
        retrieve("q")
    llm_span = span_of(cap, 0)
    retriever_span = span_of(cap, 1)
    assert len(json.dumps(llm_span["input"]).encode()) <= 2 * limit
    assert TRUNCATION_MARKER in json.dumps(llm_span["input"], ensure_ascii=False)
    assert llm_span["input"][-1]["content"].startswith("m499 ")  # the newest is kept
    assert all(m["role"] in ("system", "user") for m in llm_span["input"])
    assert len(json.dumps(retriever_span["output"]).encode()) <= 2 * limit
    assert TRUNCATION_MARKER in json.dumps(retriever_span["output"], ensure_ascii=False)
    assert retriever_span["output"][0]["content"].startswith("doc 0 ")


def test_function_returning_a_generator_object(gs_capture: Capture) -> None:
    def make() -> Iterator[int]:
        yield from (1, 2)

    @gs.span
    def returns_gen() -> Iterator[int]:
        return make()

    gen = returns_gen()
    assert list(gen) == [1, 2]  # not consumed by the wrapper
    span = span_of(gs_capture)
    assert "generator" in span["output"]
    assert span["status_code"] == 200


def test_unbindable_call_still_runs_user_function(gs_capture: Capture) -> None:
    @gs.span
    def strict(a: int) -> int:
        return a

    with pytest.raises(TypeError):
        strict(1, 2, 3)  # type: ignore[call-arg]
    assert span_of(gs_capture)["user_metadata"]["error.type"] == "TypeError"


@pytest.mark.parametrize("options", [{"capture_input": False}, {"capture_output": False},
                                     {"capture_input": False, "capture_output": False}])
def test_capture_switches_global(options: dict[str, Any]) -> None:
    with gs.testing.capture(**options) as cap:
        @gs.span(type="llm")
        def llm(prompt: str, model: str = "m1") -> dict[str, Any]:
            return {"choices": [{"message": {"content": "secret-out"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 2}}

        @gs.trace
        def run(question: str) -> str:
            llm("secret-in")
            return "secret-out"

        run("secret-in")
    (trace,) = cap.traces
    (span,) = trace["spans"]
    text = json.dumps(cap.requests)
    if not options.get("capture_input", True):
        assert "secret-in" not in text
        assert (trace["input"], span["input"]) == ("", [])
    else:
        assert span["input"] == [{"role": "user", "content": "secret-in"}]
    if not options.get("capture_output", True):
        assert "secret-out" not in text
        assert span["output"] == {"role": "assistant", "content": ""}
    else:
        assert trace["output"] == "secret-out"
    assert span["model"] == "m1"  # read from the arguments even when they are not captured


def test_capture_switches_per_span(gs_capture: Capture) -> None:
    @gs.span(capture_input=False, capture_output=False)
    def hidden(password: str) -> str:
        return "token-123"

    @gs.trace(capture_input=False)
    def outer(password: str) -> str:
        return hidden(password)

    outer("hunter2")
    text = json.dumps(gs_capture.requests)
    assert "hunter2" not in text
    assert "token-123" in text  # only the trace's output was kept
    assert gs_capture.traces[0]["spans"][0]["output"] in ("", None)


def test_capture_env_var_turns_both_off(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    from galileo_sessions._config import Settings

    monkeypatch.setenv("GALILEO_SESSIONS_CAPTURE", "0")
    settings = Settings.from_options({})
    assert (settings.capture_input, settings.capture_output) == (False, False)


# -- redact ----------------------------------------------------------------------------------

def test_redact_sees_every_record_and_can_mask() -> None:
    seen: list[tuple[str, str | None]] = []

    def redact(record: dict[str, Any]) -> dict[str, Any]:
        seen.append((record["type"], record.get("name")))
        assert "spans" not in record
        out = json.loads(json.dumps(record).replace("4111-1111", "****"))
        assert isinstance(out, dict)
        return out

    with gs.testing.capture(redact=redact) as cap:
        @gs.span(type="tool")
        def pay(card: str) -> str:
            return f"charged {card}"

        with gs.session("s", external_id="4111-1111", metadata={"card": "4111-1111"}):
            @gs.trace
            def run(card: str) -> str:
                return pay(card)

            run("4111-1111")
    assert sorted(seen) == [("session", "s"), ("tool", "pay"), ("trace", "run")]
    text = json.dumps(cap.requests)
    assert "4111" not in text
    assert cap.traces[0]["spans"][0]["output"] == "charged ****"
    assert cap.sessions[0]["external_id"] == "****"


def test_redact_applies_to_late_spans() -> None:
    import threading

    release = threading.Event()
    with gs.testing.capture(redact=lambda r: {**r, "output": "masked"}) as cap:
        pool = gs.ContextExecutor(1)

        @gs.span
        def late() -> str:
            release.wait(5)
            return "secret"

        with gs.trace("t"):
            future = pool.submit(late)
        release.set()
        future.result(5)
        pool.shutdown(wait=True)
    assert cap.spans[0]["spans"][0]["output"] == "masked"
    assert "secret" not in json.dumps(cap.requests)


@pytest.mark.parametrize("behaviour", ["raise", "none", "string"])
def test_failing_redact_hook_never_ships_unredacted_data(
        behaviour: str, caplog: pytest.LogCaptureFixture) -> None:
    def redact(record: dict[str, Any]) -> Any:
        if behaviour == "raise":
            raise RuntimeError("redactor bug")
        return None if behaviour == "none" else "oops"

    caplog.set_level(logging.WARNING, logger="galileo_sessions")
    with gs.testing.capture(redact=redact) as cap:
        @gs.span(type="llm")
        def llm(prompt: str) -> str:
            return "SECRET-OUT"

        @gs.span(type="tool")
        def tool(q: str) -> str:
            raise ValueError("SECRET-ERR")

        @gs.trace
        def run(q: str) -> str:
            llm(q)
            with contextlib.suppress(ValueError):
                tool(q)
            return "SECRET-OUT"

        with gs.session("SECRET-NAME", external_id="SECRET-EXT",
                        metadata={"k": "SECRET-META"}):
            assert run("SECRET-IN") == "SECRET-OUT"  # the user's call is unaffected
    text = json.dumps(cap.requests)
    assert "SECRET" not in text
    assert len(cap.traces) == 1 and len(cap.sessions) == 1
    llm_span, tool_span = cap.traces[0]["spans"]
    assert llm_span["output"] == {"role": "assistant", "content": "<redact hook failed>"}
    assert tool_span["status_code"] == 500  # the skeleton is still useful
    if behaviour == "raise":
        assert any("redact" in r.getMessage() for r in caplog.records)


# -- configuration -------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"mode": "sometimes"}, "mode"),
    ({"max_field_bytes": 10}, "max_field_bytes"),
    ({"max_field_bytes": "lots"}, "max_field_bytes"),
    ({"max_field_bytes": True}, "max_field_bytes"),
    ({"redact": "not callable"}, "redact"),
    ({"project_id": "not-a-uuid"}, "project_id"),
    ({"log_stream_id": 42}, "log_stream_id"),
    ({"api_url": "ftp://example.com"}, "api_url"),
    ({"api_key": "   "}, "api_key"),
    ({"store": ""}, "store"),
    ({"project": 3}, "project"),
    ({"capture_input": "maybe"}, "capture_input"),
    ({"enabled": 2}, "enabled"),
    ({"transport": object()}, "transport"),
    ({"chain_store": object()}, "chain_store"),
    ({"bogus_option": 1}, "bogus_option"),
    ({"experiment_id": "12345678-1234-4234-8234-123456789abc",
      "log_stream": "x"}, "experiment_id"),
    ({"flush_interval": 0}, "flush_interval"),
    ({"reliable_timeout": -1}, "reliable_timeout"),
    ({"extra_headers": {"X-A": 1}}, "extra_headers"),
]


@pytest.mark.parametrize(("options", "option"), BAD_OPTIONS,
                         ids=[f"{o}-{i}" for i, (_, o) in enumerate(BAD_OPTIONS)])
def test_configure_bad_values_raise_config_error(options: dict[str, Any], option: str) -> None:
    before = gs._runtime.current
    with pytest.raises(gs.ConfigError) as info:
        gs.configure(**options)
    assert info.value.option == option
    assert str(info.value).startswith(option)
    assert isinstance(info.value, gs.GalileoSessionsError)
    assert gs._runtime.current is before  # the old runtime is untouched


def test_bad_environment_disables_tracing_instead_of_raising(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GALILEO_SESSIONS_MODE", "nonsense")
    caplog.set_level(logging.ERROR, logger="galileo_sessions")
    assert echo(5) == 5
    assert any("GALILEO_SESSIONS_MODE" in r.getMessage() or "mode" in r.getMessage()
               for r in caplog.records)
    assert gs.stats()["enqueued"] == 0


# -- the kill switch ----------------------------------------------------------------------

def test_disabled_env_calls_straight_through(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("GALILEO_SESSIONS_DISABLED", "1")
    store = Path(os.environ["GALILEO_SESSIONS_STORE"])

    @gs.span
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    @gs.span
    async def coro() -> int:
        return 3

    @gs.session("s")
    @gs.trace
    def run(x: int) -> int:
        assert not gs.current_span()
        assert gs.current_session() is None
        gs.current_span().update(output="ignored")
        return x + sum(gen())

    import asyncio

    assert run(1) == 4
    assert asyncio.run(coro()) == 3
    with gs.session("cm") as s, gs.trace("t") as t:
        assert not t
        assert s is not None
    assert gs.flush(1).sent == 0
    assert all(v == 0 for v in gs.stats().values())
    assert not store.exists()


def test_configure_enabled_false_is_the_same_switch() -> None:
    gs.configure(enabled=False)
    assert echo(1) == 1
    assert gs.stats()["enqueued"] == 0


def test_every_request_body_passes_the_store_validator(gs_capture: Capture) -> None:
    with gs.session("v", metadata={"a": 1}):
        echo(Point(1, "x"), BadRepr(), b"b", {1}, math.nan)
    for request in gs_capture.requests:
        if request["route"] == "traces":
            validate.traces_body(request["body"])
        elif request["route"] == "sessions":
            validate.session_body(request["body"])


@pytest.fixture(autouse=True)
def _strict_stays_on() -> Iterator[None]:
    """These run in strict mode: a failing redact hook is a user error, logged, not raised."""
    assert _internal.strict is True
    yield


async def test_capture_output_false_on_generators(gs_capture: Capture) -> None:
    @gs.span(type="llm", capture_output=False)
    def stream() -> Iterator[str]:
        yield "SECRET-1"

    @gs.span(capture_output=False)
    async def astream() -> Any:
        yield "SECRET-2"

    assert list(stream()) == ["SECRET-1"]
    assert [x async for x in astream()] == ["SECRET-2"]
    assert "SECRET" not in json.dumps(gs_capture.requests)
    assert gs_capture.traces[0]["spans"][0]["metrics"]["time_to_first_token_ns"] > 0
