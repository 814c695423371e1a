"""Strict validation of request bodies: 422-shaped details naming the full field path."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from galileo_sessions._store import Store
from galileo_sessions.exceptions import IngestValidationError


def uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store.db")
    yield s
    s.close()


@pytest.fixture
def target(store: Store) -> tuple[str, str]:
    return store.ensure_target()


TRACE_ID, WORKFLOW_ID = uid(), uid()


def good_traces_body(lsid: str) -> dict[str, Any]:
    return {
        "log_stream_id": lsid, "experiment_id": None, "logging_method": "api_direct",
        "client_version": None, "reliable": False, "session_id": None,
        "session_external_id": None, "is_complete": True,
        "traces": [{
            "type": "trace", "id": TRACE_ID, "name": "t", "input": "hi", "output": "yo",
            "created_at": "2026-03-04T10:00:00.000000Z", "metrics": {"duration_ns": 10},
            "user_metadata": {}, "tags": [],
            "spans": [
                {"type": "llm", "id": uid(), "input": [{"role": "user", "content": "hi"}],
                 "output": {"role": "assistant", "content": "yo"}, "model": "m",
                 "metrics": {"num_input_tokens": 1}},
                {"type": "workflow", "id": WORKFLOW_ID, "input": "x",
                 "spans": [{"type": "tool", "input": "x", "output": "y"}]},
            ],
        }],
    }


def detail_of(call: Callable[[], Any]) -> list[dict[str, Any]]:
    with pytest.raises(IngestValidationError) as err:
        call()
    detail = err.value.detail
    for item in detail:
        assert set(item) == {"loc", "msg", "type"} and item["loc"][0] == "body"
    return detail


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


LLM = ["traces", 0, "spans", 0]
WF = ["traces", 0, "spans", 1]
TOOL = [*WF, "spans", 0]

TRACE_CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[Any], str]] = [
    ("duration as str", _set(["traces", 0, "metrics", "duration_ns"], "5"),
     ["traces", 0, "metrics", "duration_ns"], "metrics.duration_ns must be an integer, got str"),
    ("duration as bool", _set(["traces", 0, "metrics", "duration_ns"], True),
     ["traces", 0, "metrics", "duration_ns"], "must be an integer, got bool"),
    ("duration as float", _set([*LLM, "metrics", "duration_ns"], 1.5),
     [*LLM, "metrics", "duration_ns"], "must be an integer, got float"),
    ("other metric not a number", _set([*LLM, "metrics", "cost"], "cheap"),
     [*LLM, "metrics", "cost"], "must be a number"),
    ("bad span type", _set([*LLM, "type"], "chain"), [*LLM, "type"], "must be one of llm"),
    ("missing span type", _delete([*LLM, "type"]), [*LLM, "type"], "type is required"),
    ("span at trace level", _set(["traces", 0, "type"], "llm"), ["traces", 0, "type"],
     "must be one of trace"),
    ("unknown trace field", _set(["traces", 0, "colour"], "red"), ["traces", 0, "colour"],
     "extra fields not permitted"),
    ("unknown top-level field", _set(["mode"], "batch"), ["mode"],
     "extra fields not permitted"),
    ("llm with children", _set([*LLM, "spans"], []), [*LLM, "spans"],
     "extra fields not permitted"),
    ("llm input a string", _set([*LLM, "input"], "hi"), [*LLM, "input"], "must be a list"),
    ("bad message role", _set([*LLM, "input", 0, "role"], "robot"),
     [*LLM, "input", 0, "role"], "input.0.role must be one of agent"),
    ("message without content", _delete([*LLM, "input", 0, "content"]),
     [*LLM, "input", 0, "content"], "input.0.content is required"),
    ("message extra key", _set([*LLM, "output", "name"], "bob"), [*LLM, "output", "name"],
     "extra fields not permitted"),
    ("tool call without function", _set([*LLM, "output", "tool_calls"], [{"id": "c"}]),
     [*LLM, "output", "tool_calls", 0, "function"], "must be an object"),
    ("temperature as str", _set([*LLM, "temperature"], "hot"), [*LLM, "temperature"],
     "temperature must be a number, got str"),
    ("bad event type", _set([*LLM, "events"], [{"type": "nope"}]),
     [*LLM, "events", 0, "type"], "must be one of message"),
    ("bad created_at", _set(["traces", 0, "created_at"], "yesterday"),
     ["traces", 0, "created_at"], "ISO-8601"),
    ("impossible date", _set([*WF, "created_at"], "2026-02-30T10:00:00Z"),
     [*WF, "created_at"], "ISO-8601"),
    ("created_at as number", _set(["traces", 0, "created_at"], 1700000000),
     ["traces", 0, "created_at"], "must be an ISO-8601 datetime string, got int"),
    ("metadata value int", _set(["traces", 0, "user_metadata"], {"n": 1}),
     ["traces", 0, "user_metadata", "n"], "user_metadata.n must be a string"),
    ("tags not strings", _set(["traces", 0, "tags"], ["a", 2]), ["traces", 0, "tags", 1],
     "tags.1 must be a string"),
    ("status code str", _set(["traces", 0, "status_code"], "500"),
     ["traces", 0, "status_code"], "status_code must be an integer"),
    ("bad record id", _set([*WF, "id"], "not-a-uuid"), [*WF, "id"], "id must be a UUID"),
    ("trace output an object", _set(["traces", 0, "output"], {"a": 1}),
     ["traces", 0, "output"], "must be a string or a list of content parts"),
    ("bad content part", _set(["traces", 0, "input"], [{"type": "video"}]),
     ["traces", 0, "input", 0, "type"], "must be one of text"),
    ("tool output a list", _set([*TOOL, "output"], ["y"]), [*TOOL, "output"],
     "must be a string, got list"),
    ("tool input missing means default ok, but null is not", _set([*TOOL, "input"], None),
     [*TOOL, "input"], "must be a string, got null"),
    ("retriever output strings", _set([*TOOL], {"type": "retriever", "input": "q",
                                               "output": ["doc"]}),
     [*TOOL, "output", 0], "must be an object"),
    ("document extra key", _set([*TOOL], {"type": "retriever", "input": "q",
                                         "output": [{"content": "d", "score": 1}]}),
     [*TOOL, "output", 0, "score"], "extra fields not permitted"),
    ("workflow output a dict", _set([*WF, "output"], {"answer": 1}), [*WF, "output"],
     "must be a string, a message"),
    ("agent type unknown", _set([*WF], {"type": "agent", "input": "x", "agent_type": "boss"}),
     [*WF, "agent_type"], "must be one of default"),
    ("control with children", _set([*WF], {"type": "control", "input": "x", "spans": []}),
     [*WF, "spans"], "extra fields not permitted"),
    ("control result bad action", _set([*WF], {"type": "control", "output": {
        "action": "allow", "matched": True}}), [*WF, "output", "action"], "must be one of deny"),
    ("spans not a list", _set([*WF, "spans"], {"type": "tool"}), [*WF, "spans"],
     "must be a list"),
    ("trace not an object", _set(["traces", 0], "trace"), ["traces", 0],
     "traces.0 must be an object, got str"),
    ("empty traces", _set(["traces"], []), ["traces"], "at least 1"),
    ("missing traces", _delete(["traces"]), ["traces"], "traces is required"),
    ("session_id not uuid", _set(["session_id"], "abc"), ["session_id"], "must be a UUID"),
    ("is_complete as str", _set(["is_complete"], "yes"), ["is_complete"],
     "must be true or false"),
    ("bad logging method", _set(["logging_method"], "curl"), ["logging_method"],
     "must be one of playground"),
    ("reliable as int", _set(["reliable"], 1), ["reliable"], "must be true or false"),
    ("client_version as int", _set(["client_version"], 2), ["client_version"],
     "must be a string"),
    ("bad log stream id", _set(["log_stream_id"], "stream-1"), ["log_stream_id"],
     "must be a UUID"),
    ("both run ids", _set(["experiment_id"], str(uuid.uuid4())), [],
     "exactly one of log_stream_id or experiment_id"),
    ("no run id", _set(["log_stream_id"], None), [],
     "exactly one of log_stream_id or experiment_id"),
]


@pytest.mark.parametrize(("mutate", "loc", "fragment"),
                         [c[1:] for c in TRACE_CASES], ids=[c[0] for c in TRACE_CASES])
def test_trace_ingest_rejects(store: Store, target: tuple[str, str],
                              mutate: Callable[[dict[str, Any]], None], loc: list[Any],
                              fragment: str) -> None:
    pid, lsid = target
    body = good_traces_body(lsid)
    mutate(body)
    detail = detail_of(lambda: store.ingest_traces(pid, body))
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail
    assert store.counts()["traces"] == 0


def test_good_body_passes_and_all_problems_are_collected(store: Store,
                                                         target: tuple[str, str]) -> None:
    pid, lsid = target
    body = good_traces_body(lsid)
    bad = copy.deepcopy(body)
    bad["traces"][0]["metrics"]["duration_ns"] = "1"
    bad["traces"][0]["spans"][0]["type"] = "chain"
    bad["traces"][0]["spans"][1]["spans"][0]["output"] = 3
    bad["extra"] = True
    detail = detail_of(lambda: store.ingest_traces(pid, bad))
    assert {tuple(d["loc"]) for d in detail} == {
        ("body", "extra"), ("body", "traces", 0, "metrics", "duration_ns"),
        ("body", "traces", 0, "spans", 0, "type"),
        ("body", "traces", 0, "spans", 1, "spans", 0, "output")}
    with pytest.raises(IngestValidationError, match=r"^body\.extra: .*\(and 3 more\)$"):
        store.ingest_traces(pid, bad)
    assert store.ingest_traces(pid, body)["records_count"] == 4


def test_accepted_variants(store: Store, target: tuple[str, str]) -> None:
    """Shapes the spec allows that a naive validator would refuse."""
    pid, lsid = target
    tid = uid()
    body = {"log_stream_id": lsid.upper(), "traces": [{
        "type": "trace", "id": tid.replace("-", ""), "created_at": "2026-03-04T12:00:00+02:00",
        "input": [{"type": "text", "text": "look"},
                  {"type": "data", "modality": "image", "url": "https://x/y.png"}],
        "spans": [
            {"type": "agent", "agent_type": "react", "input": [{"role": "user", "content": "q"}],
             "output": [{"content": "doc", "metadata": {"score": 0.5, "ok": True}}],
             "created_at": "2026-03-04T10:00:01",
             "spans": [
                 {"type": "llm", "input": [{"role": "assistant", "content": None,
                                            "tool_calls": [{"id": "1", "type": "function",
                                                            "function": {"name": "f",
                                                                         "arguments": "{}"}}]}],
                  "output": None, "temperature": float("nan"),
                  "metrics": {"num_total_tokens": None, "cost_usd": 0.01}},
                 {"type": "control", "input": "x", "control_id": 3, "check_stage": "pre",
                  "output": {"action": "deny", "matched": True, "confidence": 0.9}},
             ]},
            {"type": "workflow", "output": {"role": "assistant", "content": [
                {"type": "text", "text": "a"}]}},
            {"type": "retriever", "input": "q", "output": None},
        ]}]}
    store.ingest_traces(pid, body)
    got = store.get_trace(pid, tid)
    assert got["id"] == tid and got["created_at"] == "2026-03-04T10:00:00.000000Z"
    agent = got["spans"][0]
    assert agent["created_at"] == "2026-03-04T10:00:01.000000Z"
    assert agent["spans"][0]["temperature"] is None
    assert [s["type"] for s in got["spans"]] == ["agent", "workflow", "retriever"]


SESSION_CASES = [
    ({"name": 3}, ["name"], "name must be a string, got int"),
    ({"previous_session_id": "prev"}, ["previous_session_id"], "must be a UUID"),
    ({"external_id": ["a"]}, ["external_id"], "must be a string"),
    ({"user_metadata": {"n": 1}}, ["user_metadata", "n"], "must be a string"),
    ({"user_metadata": ["a"]}, ["user_metadata"], "must be an object"),
    ({"metadata": {}}, ["metadata"], "extra fields not permitted"),
    ({"log_stream_id": None}, [], "exactly one of"),
]


@pytest.mark.parametrize(("patch", "loc", "fragment"), SESSION_CASES)
def test_session_body_rejects(store: Store, target: tuple[str, str], patch: dict[str, Any],
                              loc: list[Any], fragment: str) -> None:
    pid, lsid = target
    detail = detail_of(lambda: store.create_session(pid, {"log_stream_id": lsid, **patch}))
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail


def test_non_object_body(store: Store, target: tuple[str, str]) -> None:
    pid, _ = target
    detail = detail_of(lambda: store.create_session(pid, ["x"]))  # type: ignore[arg-type]
    assert detail == [{"loc": ["body"], "msg": "body must be an object, got list",
                       "type": "dict_type"}]


@pytest.fixture
def stored_trace(store: Store, target: tuple[str, str]) -> tuple[str, str]:
    store.ingest_traces(target[0], good_traces_body(target[1]))
    return TRACE_ID, WORKFLOW_ID


SPAN_CASES: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"trace_id": None}, ["trace_id"], "must be a UUID"),
    ({"parent_id": "p"}, ["parent_id"], "must be a UUID"),
    ({"spans": []}, ["spans"], "at least 1"),
    ({"spans": [{"type": "trace"}]}, ["spans", 0, "type"], "must be one of llm"),
    ({"spans": [{"type": "tool", "input": 1}]}, ["spans", 0, "input"], "must be a string"),
    ({"session_id": None}, ["session_id"], "extra fields not permitted"),
]


@pytest.mark.parametrize(("patch", "loc", "fragment"), SPAN_CASES)
def test_span_ingest_rejects(store: Store, target: tuple[str, str],
                             stored_trace: tuple[str, str], patch: dict[str, Any],
                             loc: list[Any], fragment: str) -> None:
    pid, lsid = target
    body = {"log_stream_id": lsid, "trace_id": stored_trace[0], "parent_id": stored_trace[1],
            "spans": [{"type": "tool", "input": "x"}], **patch}
    detail = detail_of(lambda: store.ingest_spans(pid, body))
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail


def test_span_ingest_requires_trace_and_parent(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    detail = detail_of(lambda: store.ingest_spans(pid, {"log_stream_id": lsid}))
    assert {tuple(d["loc"]) for d in detail} == {("body", "trace_id"), ("body", "parent_id"),
                                                 ("body", "spans")}
    assert all(d["type"] == "missing" for d in detail)


UPDATE_CASES: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("trace", {"duration_ns": "1"}, ["duration_ns"], "duration_ns must be an integer"),
    ("trace", {"output": ["a"]}, ["output"], "must be a string"),
    ("trace", {"is_complete": "true"}, ["is_complete"], "must be true or false"),
    ("trace", {"tags": "a"}, ["tags"], "must be a list"),
    ("trace", {"span_id": None}, ["span_id"], "extra fields not permitted"),
    ("trace", {"trace_id": "other"}, ["trace_id"], "must be a UUID"),
    ("span", {"is_complete": True}, ["is_complete"], "extra fields not permitted"),
    ("span", {"output": {"x": 1}}, ["output"], "must be a string, a message"),
    ("span", {"status_code": 2.5}, ["status_code"], "must be an integer"),
]


@pytest.mark.parametrize(("kind", "patch", "loc", "fragment"), UPDATE_CASES)
def test_update_rejects(store: Store, target: tuple[str, str], stored_trace: tuple[str, str],
                        kind: str, patch: dict[str, Any], loc: list[Any],
                        fragment: str) -> None:
    pid, lsid = target
    tid, wid = stored_trace
    if kind == "trace":
        body = {"log_stream_id": lsid, "trace_id": tid, **patch}
        call: Callable[[], Any] = lambda: store.update_trace(pid, tid, body)  # noqa: E731
    else:
        body = {"log_stream_id": lsid, "span_id": wid, **patch}
        call = lambda: store.update_span(pid, wid, body)  # noqa: E731
    detail = detail_of(call)
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail


def test_update_id_must_match_path(store: Store, target: tuple[str, str],
                                   stored_trace: tuple[str, str]) -> None:
    pid, lsid = target
    detail = detail_of(lambda: store.update_trace(pid, stored_trace[0], {
        "log_stream_id": lsid, "trace_id": uid()}))
    assert detail[0]["loc"] == ["body", "trace_id"] and "does not match" in detail[0]["msg"]
    detail = detail_of(lambda: store.update_span(pid, stored_trace[1], {"log_stream_id": lsid}))
    assert detail[0] == {"loc": ["body", "span_id"], "msg": "span_id is required",
                         "type": "missing"}


def test_official_sdk_search_filter_bug_is_422(store: Store, target: tuple[str, str]) -> None:
    """The Python SDK sends ``name`` instead of ``column_id`` (wire section 4.3)."""
    pid, lsid = target
    body = {"log_stream_id": lsid, "limit": 1, "filters": [
        {"type": "text", "name": "external_id", "value": "u", "operator": "eq"}]}
    detail = detail_of(lambda: store.search_sessions(pid, body))
    assert {(tuple(d["loc"]), d["type"]) for d in detail} == {
        (("body", "filters", 0, "column_id"), "missing"),
        (("body", "filters", 0, "name"), "extra_forbidden")}


SEARCH_CASES: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"filters": [{"type": "text", "column_id": "colour", "operator": "eq", "value": "x"}]},
     ["filters", 0, "column_id"], "must be one of external_id"),
    ({"filters": [{"type": "text", "column_id": "name", "operator": "like", "value": "x"}]},
     ["filters", 0, "operator"], "must be one of eq"),
    ({"filters": [{"type": "text", "column_id": "name", "operator": "one_of", "value": "x"}]},
     ["filters", 0, "value"], "must be a list"),
    ({"filters": [{"type": "text", "column_id": "name", "operator": "eq", "value": 3}]},
     ["filters", 0, "value"], "must be a string"),
    ({"filters": [{"type": "id", "column_id": "id", "value": "nope"}]},
     ["filters", 0, "value"], "must be a UUID"),
    ({"filters": [{"type": "date", "column_id": "created_at", "value": "x"}]},
     ["filters", 0, "type"], "filter type must be text or id"),
    ({"filters": [{"type": "text", "column_id": "name", "value": "x"}]},
     ["filters", 0, "operator"], "operator is required"),
    ({"sort": {"column_id": "colour"}}, ["sort", "column_id"], "must be one of created_at"),
    ({"sort": {"column_id": "created_at", "ascending": "yes"}}, ["sort", "ascending"],
     "must be true or false"),
    ({"limit": "10"}, ["limit"], "must be an integer"),
    ({"starting_token": -1}, ["starting_token"], ">= 0"),
    ({"filter_tree": {"and": []}}, ["filter_tree"], "not supported"),
    ({"page": 2}, ["page"], "extra fields not permitted"),
]


@pytest.mark.parametrize(("patch", "loc", "fragment"), SEARCH_CASES)
def test_search_rejects(store: Store, target: tuple[str, str], patch: dict[str, Any],
                        loc: list[Any], fragment: str) -> None:
    pid, lsid = target
    detail = detail_of(lambda: store.search_sessions(pid, {"log_stream_id": lsid, **patch}))
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail


@pytest.mark.parametrize(("body", "loc", "fragment"), [
    ({}, ["name"], "name is required"),
    ({"name": ""}, ["name"], "must not be empty"),
    ({"name": "p", "type": "weird"}, ["type"], "must be one of gen_ai"),
    ({"name": "p", "owner": "me"}, ["owner"], "extra fields not permitted"),
])
def test_project_body_rejects(store: Store, body: dict[str, Any], loc: list[Any],
                              fragment: str) -> None:
    detail = detail_of(lambda: store.create_project(body))
    assert any(d["loc"] == ["body", *loc] and fragment in d["msg"] for d in detail), detail
