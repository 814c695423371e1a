"""The local store against a real SQLite file: write routes, reads, idempotency, concurrency."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from galileo_sessions._store import DEFAULT_STORE_PATH, Store
from galileo_sessions.exceptions import IngestValidationError, NotFoundError


def uid() -> str:
    return str(uuid.uuid4())


def ts(minute: int, second: int = 0, micro: int = 0) -> str:
    return f"2026-03-04T10:{minute:02d}:{second:02d}.{micro:06d}Z"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "sub" / "store.db")
    yield s
    s.close()


@pytest.fixture
def target(store: Store) -> tuple[str, str]:
    return store.ensure_target("demo", "prod")


def envelope(log_stream_id: str, **extra: Any) -> dict[str, Any]:
    return {"log_stream_id": log_stream_id, "experiment_id": None,
            "logging_method": "python_client", "client_version": "0.1.0", "reliable": True,
            **extra}


def agent_trace(*, minute: int = 0, trace_id: str | None = None,
                workflow_id: str | None = None) -> dict[str, Any]:
    """A trace tree the way the Galileo SDK sends it: nested spans, null parent ids."""
    return {
        "type": "trace", "id": trace_id or uid(), "name": "answer_question",
        "input": '{"question": "What is the capital of France?"}', "output": "Paris",
        "created_at": ts(minute), "user_metadata": {"user": "u-42"}, "tags": ["demo"],
        "status_code": 200, "metrics": {"duration_ns": 2_500_000_000},
        "session_id": None, "trace_id": None, "parent_id": None,
        "spans": [
            {"type": "workflow", "id": workflow_id or uid(), "name": "plan",
             "input": "What is the capital of France?", "output": "Paris",
             "created_at": ts(minute, 1), "metrics": {"duration_ns": 2_000_000_000},
             "spans": [
                 {"type": "retriever", "id": uid(), "name": "search_docs",
                  "input": "capital of France", "created_at": ts(minute, 2),
                  "output": [{"content": "Paris is the capital of France.",
                              "metadata": {"source": "wiki", "score": 0.93}}],
                  "metrics": {"duration_ns": 120_000_000}},
                 {"type": "llm", "id": uid(), "name": "chat", "model": "gpt-4o",
                  "temperature": 0.2, "created_at": ts(minute, 3),
                  "input": [{"role": "system", "content": "Answer briefly."},
                            {"role": "user", "content": "What is the capital of France?"}],
                  "output": {"role": "assistant", "content": "",
                             "tool_calls": [{"id": "call_1", "function": {
                                 "name": "lookup", "arguments": "{\"q\": \"France\"}"}}]},
                  "metrics": {"duration_ns": 800_000_000, "num_input_tokens": 21,
                              "num_output_tokens": 9, "num_total_tokens": 30,
                              "time_to_first_token_ns": 200_000_000}},
                 {"type": "tool", "id": uid(), "name": "lookup", "input": '{"q": "France"}',
                  "output": "Paris", "tool_call_id": "call_1", "created_at": ts(minute, 4),
                  "metrics": {"duration_ns": 5_000_000}},
             ]},
        ],
    }


def count_nodes(node: dict[str, Any]) -> int:
    return 1 + sum(count_nodes(c) for c in node.get("spans", []))


# -- projects and log streams -------------------------------------------------------------------

def test_default_store_path() -> None:
    assert DEFAULT_STORE_PATH == ".galileo_sessions/store.db"


def test_ensure_target_is_get_or_create(store: Store) -> None:
    pid, lsid = store.ensure_target()
    assert store.ensure_target() == (pid, lsid)
    assert store.ensure_target("default", "other")[0] == pid
    project = store.get_project(pid)
    assert project["name"] == "default" and project["type"] == "gen_ai"
    assert set(project) == {"id", "name", "type", "created_at", "updated_at"}
    page = store.list_log_streams(pid)
    assert [s["name"] for s in page["log_streams"]] == ["default", "other"]
    assert page["paginated"] is False and page["next_starting_token"] is None


def test_projects_and_log_streams(store: Store) -> None:
    project = store.create_project({"name": "p1", "type": "gen_ai",
                                    "create_example_templates": False})
    assert store.find_projects("p1") == [project]
    assert store.find_projects("nope") == []
    with pytest.raises(IngestValidationError, match="already exists"):
        store.create_project({"name": "p1"})
    with pytest.raises(NotFoundError):
        store.get_project(uid())
    for i in range(3):
        created = store.create_log_stream(project["id"], {"name": f"ls{i}"})
        assert created["project_id"] == project["id"]
        assert created["has_user_created_sessions"] is False
    first = store.list_log_streams(project["id"], limit=2)
    assert [s["name"] for s in first["log_streams"]] == ["ls0", "ls1"]
    assert first["paginated"] is True and first["next_starting_token"] == 2
    rest = store.list_log_streams(project["id"], starting_token=2, limit=2)
    assert [s["name"] for s in rest["log_streams"]] == ["ls2"]
    assert rest["next_starting_token"] is None
    with pytest.raises(IngestValidationError):
        store.create_log_stream(project["id"], {"name": "ls0"})
    with pytest.raises(NotFoundError):
        store.create_log_stream(uid(), {"name": "x"})


# -- sessions -----------------------------------------------------------------------------------

def test_create_session(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    first = store.create_session(pid, envelope(lsid, name="support-chat", external_id="user-42",
                                               user_metadata={"plan": "pro"}))
    assert first["name"] == "support-chat" and first["external_id"] == "user-42"
    assert first["project_id"] == pid and first["project_name"] == "demo"
    assert first["log_stream_id"] == lsid and first["previous_session_id"] is None
    uuid.UUID(first["id"])
    second = store.create_session(pid, envelope(lsid, previous_session_id=first["id"]))
    assert second["previous_session_id"] == first["id"] and second["name"] is None
    assert store.counts() == {"sessions": 2, "traces": 0, "spans": 0}
    assert store.list_log_streams(pid)["log_streams"][0]["has_user_created_sessions"] is True


def test_session_idempotency_key(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    a = store.create_session(pid, envelope(lsid, name="a"), idempotency_key="key-1")
    again = store.create_session(pid, envelope(lsid, name="a"), idempotency_key="key-1")
    other = store.create_session(pid, envelope(lsid, name="a"), idempotency_key="key-2")
    assert again == a and other["id"] != a["id"]
    assert store.counts()["sessions"] == 2


def test_session_needs_known_project_and_log_stream(store: Store,
                                                    target: tuple[str, str]) -> None:
    pid, lsid = target
    with pytest.raises(NotFoundError):
        store.create_session(uid(), envelope(lsid))
    with pytest.raises(NotFoundError, match="log stream"):
        store.create_session(pid, envelope(uid()))
    experiment = store.create_session(pid, {"experiment_id": uid(), "name": "exp"})
    assert "experiment_id" in experiment and "log_stream_id" not in experiment


# -- traces -------------------------------------------------------------------------------------

def test_ingest_trace_tree_and_read_back(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    session = store.create_session(pid, envelope(lsid, name="chat"))
    trace = agent_trace()
    body = envelope(lsid, reliable=False, traces=[trace], session_id=session["id"],
                    session_external_id=None, is_complete=True, include_trace_ids=True)
    resp = store.ingest_traces(pid, body)
    assert resp == {"project_id": pid, "project_name": "demo", "log_stream_id": lsid,
                    "session_id": session["id"], "records_count": 5, "traces_count": 1,
                    "spans_count": 4, "trace_ids": [trace["id"]]}
    got = store.get_trace(pid, trace["id"])
    assert got["id"] == got["trace_id"] == trace["id"] and got["parent_id"] is None
    assert got["session_id"] == session["id"] and got["is_complete"] is True
    assert got["created_at"] == ts(0) and got["metrics"] == {"duration_ns": 2_500_000_000}
    assert got["user_metadata"] == {"user": "u-42"} and got["tags"] == ["demo"]
    workflow = got["spans"][0]
    assert workflow["parent_id"] == trace["id"] and workflow["trace_id"] == trace["id"]
    assert [c["type"] for c in workflow["spans"]] == ["retriever", "llm", "tool"]
    for child in workflow["spans"]:
        assert child["parent_id"] == workflow["id"]
        assert child["session_id"] == session["id"]
    llm = workflow["spans"][1]
    assert "spans" not in llm and llm["model"] == "gpt-4o"
    assert llm["output"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert store.get_span(pid, llm["id"]) == llm
    assert store.get_span(pid, workflow["id"])["spans"] == workflow["spans"]
    assert store.counts() == {"sessions": 1, "traces": 1, "spans": 4}


def test_children_ordered_by_created_at_then_insertion(store: Store,
                                                       target: tuple[str, str]) -> None:
    pid, lsid = target
    tid = uid()
    spans = [{"type": "tool", "id": uid(), "name": n, "input": "x", "created_at": t}
             for n, t in (("late", ts(5)), ("early", ts(1)), ("same-a", ts(3)),
                          ("same-b", ts(3)))]
    store.ingest_traces(pid, envelope(lsid, traces=[
        {"type": "trace", "id": tid, "created_at": ts(0), "spans": spans}]))
    names = [s["name"] for s in store.get_trace(pid, tid)["spans"]]
    assert names == ["early", "same-a", "same-b", "late"]


def test_same_trace_twice_is_stored_once(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    body = envelope(lsid, traces=[agent_trace(), agent_trace(minute=1)])
    first = store.ingest_traces(pid, body)
    again = store.ingest_traces(pid, json.loads(json.dumps(body)))
    assert again == first  # counts are those of the request, so a retry looks the same
    assert store.counts() == {"sessions": 0, "traces": 2, "spans": 8}


def test_records_without_ids_are_idempotent_when_nested(store: Store,
                                                        target: tuple[str, str]) -> None:
    pid, lsid = target
    trace = agent_trace()
    for span in [trace["spans"][0], *trace["spans"][0]["spans"]]:
        del span["id"]
    body = envelope(lsid, traces=[trace])
    store.ingest_traces(pid, body)
    store.ingest_traces(pid, body)
    assert store.counts()["spans"] == 4
    got = store.get_trace(pid, trace["id"])
    assert count_nodes(got) == 5
    uuid.UUID(got["spans"][0]["id"])


def test_resend_with_new_span_adds_only_the_new_one(store: Store,
                                                    target: tuple[str, str]) -> None:
    pid, lsid = target
    tid, wid = uid(), uid()
    store.ingest_traces(pid, envelope(lsid, traces=[agent_trace(trace_id=tid, workflow_id=wid)]))
    grown = agent_trace(trace_id=tid, workflow_id=wid)
    grown["output"] = "changed"  # stored records keep their first version
    grown["spans"][0]["spans"] = [{"type": "tool", "id": uid(), "name": "extra",
                                   "input": "x", "created_at": ts(9)}]
    store.ingest_traces(pid, envelope(lsid, traces=[grown]))
    got = store.get_trace(pid, tid)
    assert got["output"] == "Paris"
    assert [s["name"] for s in got["spans"][0]["spans"]] == \
        ["search_docs", "chat", "lookup", "extra"]


def test_unknown_session_is_not_found_and_stores_nothing(store: Store,
                                                         target: tuple[str, str]) -> None:
    pid, lsid = target
    with pytest.raises(NotFoundError, match="session"):
        store.ingest_traces(pid, envelope(lsid, traces=[agent_trace()], session_id=uid()))
    trace = agent_trace()
    trace["session_id"] = uid()
    with pytest.raises(NotFoundError, match="session"):
        store.ingest_traces(pid, envelope(lsid, traces=[trace]))
    with pytest.raises(NotFoundError, match="project"):
        store.ingest_traces(uid(), envelope(lsid, traces=[agent_trace()]))
    assert store.counts() == {"sessions": 0, "traces": 0, "spans": 0}


def test_session_external_id_finds_or_creates_the_session(store: Store,
                                                          target: tuple[str, str]) -> None:
    pid, lsid = target
    made = store.ingest_traces(pid, envelope(lsid, traces=[agent_trace()],
                                             session_external_id="otel-1"))
    assert made["session_id"] is not None
    reused = store.ingest_traces(pid, envelope(lsid, traces=[agent_trace(minute=2)],
                                               session_external_id="otel-1"))
    assert reused["session_id"] == made["session_id"]
    session = store.get_session(pid, made["session_id"])
    assert session["external_id"] == "otel-1" and session["num_traces"] == 2


def test_late_spans_and_updates(store: Store, target: tuple[str, str]) -> None:
    """The distributed-mode sequence (wire section 6.4): trace, spans one by one, PATCHes."""
    pid, lsid = target
    session = store.create_session(pid, envelope(lsid))
    tid, wid, llm_id = uid(), uid(), uid()
    store.ingest_traces(pid, envelope(lsid, session_id=session["id"], is_complete=False,
                                      traces=[{"type": "trace", "id": tid, "name": "t",
                                               "input": "q", "created_at": ts(0),
                                               "spans": []}]))
    assert store.get_trace(pid, tid)["is_complete"] is False
    resp = store.ingest_spans(pid, envelope(lsid, trace_id=tid, parent_id=tid, spans=[
        {"type": "workflow", "id": wid, "name": "wf", "input": "q", "created_at": ts(0, 1),
         "spans": []}]))
    assert resp == {"project_id": pid, "project_name": "demo", "log_stream_id": lsid,
                    "records_count": 1, "trace_id": tid, "parent_id": tid,
                    "session_id": session["id"]}
    store.ingest_spans(pid, envelope(lsid, trace_id=tid, parent_id=wid, spans=[
        {"type": "llm", "id": llm_id, "name": "chat", "created_at": ts(0, 2),
         "input": [{"role": "user", "content": "q"}],
         "output": {"role": "assistant", "content": "a"}}]))
    store.ingest_spans(pid, envelope(lsid, trace_id=tid, parent_id=wid, spans=[
        {"type": "tool", "name": "t", "input": "x", "output": "y", "created_at": ts(0, 3)}]))
    upd = store.update_span(pid, wid, envelope(lsid, span_id=wid, output="a", status_code=200,
                                               tags=["x"], duration_ns=42, input=None))
    assert upd["span_id"] == wid and upd["records_count"] == 1
    upd = store.update_trace(pid, tid, envelope(lsid, trace_id=tid, output="done",
                                                status_code=500, tags=["t1", "t2"],
                                                duration_ns=99, is_complete=True))
    assert upd["trace_id"] == tid and upd["session_id"] == session["id"]
    store.update_trace(pid, tid, envelope(lsid, trace_id=tid, tags=["t2", "t3"]))
    got = store.get_trace(pid, tid)
    assert got["is_complete"] is True and got["output"] == "done" and got["input"] == "q"
    assert got["status_code"] == 500 and got["metrics"]["duration_ns"] == 99
    assert got["tags"] == ["t1", "t2", "t3"]
    workflow = got["spans"][0]
    assert workflow["output"] == "a" and workflow["input"] == "q"
    assert workflow["metrics"]["duration_ns"] == 42 and workflow["tags"] == ["x"]
    assert [c["type"] for c in workflow["spans"]] == ["llm", "tool"]
    assert all(c["session_id"] == session["id"] for c in workflow["spans"])
    assert store.get_session(pid, session["id"])["traces"][0] == got


def test_late_span_errors(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    trace = agent_trace()
    store.ingest_traces(pid, envelope(lsid, traces=[trace]))
    span = {"type": "tool", "name": "t", "input": "x"}
    with pytest.raises(NotFoundError, match="trace"):
        store.ingest_spans(pid, envelope(lsid, trace_id=uid(), parent_id=uid(), spans=[span]))
    with pytest.raises(NotFoundError, match="parent"):
        store.ingest_spans(pid, envelope(lsid, trace_id=trace["id"], parent_id=uid(),
                                         spans=[span]))
    with pytest.raises(NotFoundError, match="log stream"):
        store.ingest_spans(pid, envelope(store.ensure_target("demo", "other")[1],
                                         trace_id=trace["id"], parent_id=trace["id"],
                                         spans=[span]))
    llm_id = trace["spans"][0]["spans"][1]["id"]
    with pytest.raises(IngestValidationError) as err:
        store.ingest_spans(pid, envelope(lsid, trace_id=trace["id"], parent_id=llm_id,
                                         spans=[span]))
    assert err.value.detail[0]["loc"] == ["body", "parent_id"]
    missing = uid()
    with pytest.raises(NotFoundError):
        store.update_trace(pid, missing, envelope(lsid, trace_id=missing, output="x"))
    with pytest.raises(NotFoundError):
        store.update_span(pid, missing, envelope(lsid, span_id=missing, output="x"))
    with pytest.raises(NotFoundError):  # a trace id is not a span id
        store.update_span(pid, trace["id"], envelope(lsid, span_id=trace["id"], output="x"))
    with pytest.raises(NotFoundError):
        store.get_trace(pid, uid())
    with pytest.raises(NotFoundError):
        store.get_span(pid, trace["id"])


# -- sessions search and listing ----------------------------------------------------------------

@pytest.fixture
def sessions(store: Store, target: tuple[str, str]) -> list[dict[str, Any]]:
    pid, lsid = target
    made = []
    for i, ext in enumerate(["user-1", "user-2", "User-1", None, "user-3"]):
        made.append(store.create_session(pid, envelope(lsid, name=f"s{i}", external_id=ext)))
    return made


def _search(store: Store, pid: str, lsid: str, **body: Any) -> dict[str, Any]:
    return store.search_sessions(pid, {"log_stream_id": lsid, **body})


def test_search_by_external_id(store: Store, target: tuple[str, str],
                               sessions: list[dict[str, Any]]) -> None:
    pid, lsid = target

    def names(**body: Any) -> list[str]:
        return [r["name"] for r in _search(store, pid, lsid, **body)["records"]]

    eq = {"type": "text", "column_id": "external_id", "operator": "eq", "value": "user-1",
          "case_sensitive": True}
    resp = _search(store, pid, lsid, filters=[eq], limit=1)
    assert resp["records"][0]["id"] == sessions[0]["id"]
    assert resp["records"][0]["type"] == "session" and resp["records"][0]["num_traces"] == 0
    assert resp["last_row_id"] == sessions[0]["id"]
    assert names(filters=[{**eq, "case_sensitive": False}]) == ["s2", "s0"]
    assert names(filters=[{"type": "text", "column_id": "external_id", "operator": "one_of",
                           "value": ["user-2", "user-3"]}]) == ["s4", "s1"]
    assert names(filters=[{"type": "text", "column_id": "external_id", "operator": "not_in",
                           "value": ["user-2", "user-3"]}]) == ["s3", "s2", "s0"]
    assert names(filters=[{"type": "text", "column_id": "external_id", "operator": "ne",
                           "value": "user-1"}]) == ["s4", "s3", "s2", "s1"]
    assert names(filters=[{"type": "text", "column_id": "name", "operator": "contains",
                           "value": "S", "case_sensitive": False}]) == \
        ["s4", "s3", "s2", "s1", "s0"]
    assert names(filters=[{"type": "id", "column_id": "id", "value": sessions[1]["id"]}]) == \
        ["s1"]
    assert names(filters=[eq, {"type": "text", "column_id": "name", "operator": "eq",
                               "value": "nope"}]) == []


def test_search_sort_and_pagination(store: Store, target: tuple[str, str],
                                    sessions: list[dict[str, Any]]) -> None:
    pid, lsid = target
    asc = {"column_id": "created_at", "ascending": True, "sort_type": "column"}
    page1 = _search(store, pid, lsid, sort=asc, limit=2)
    assert [r["name"] for r in page1["records"]] == ["s0", "s1"]
    assert page1["paginated"] is True and page1["next_starting_token"] == 2
    page2 = _search(store, pid, lsid, sort=asc, limit=2, starting_token=2)
    assert [r["name"] for r in page2["records"]] == ["s2", "s3"]
    page3 = _search(store, pid, lsid, sort=asc, limit=2, starting_token=4)
    assert [r["name"] for r in page3["records"]] == ["s4"]
    assert page3["paginated"] is False and page3["next_starting_token"] is None
    newest = _search(store, pid, lsid)
    assert [r["name"] for r in newest["records"]] == ["s4", "s3", "s2", "s1", "s0"]
    other_stream = store.ensure_target("demo", "other")[1]
    assert _search(store, pid, other_stream)["records"] == []
    assert len(store.search_sessions(pid, {})["records"]) == 5
    with pytest.raises(NotFoundError):
        store.search_sessions(uid(), {})


def test_list_sessions_and_get_session(store: Store, target: tuple[str, str]) -> None:
    pid, lsid = target
    s1 = store.create_session(pid, envelope(lsid, name="one"))
    s2 = store.create_session(pid, envelope(lsid, name="two", previous_session_id=s1["id"]))
    late, early = agent_trace(minute=5), agent_trace(minute=1)
    store.ingest_traces(pid, envelope(lsid, session_id=s2["id"], traces=[late, early]))
    listed = store.list_sessions()
    assert [s["name"] for s in listed] == ["two", "one"]
    assert [s["num_traces"] for s in listed] == [2, 0]
    assert store.list_sessions(project_id=pid, limit=1, offset=1)[0]["name"] == "one"
    assert store.list_sessions(project_id=uid()) == []
    got = store.get_session(pid, s2["id"].upper())
    assert got["previous_session_id"] == s1["id"] and got["num_traces"] == 2
    assert [t["id"] for t in got["traces"]] == [early["id"], late["id"]]
    assert all(count_nodes(t) == 5 for t in got["traces"])
    assert store.get_session(pid, s1["id"])["traces"] == []
    with pytest.raises(NotFoundError):
        store.get_session(pid, uid())
    assert [s["id"] for s in store.find_sessions_by_prefix(s2["id"][:6])] == [s2["id"]]


# -- the file -----------------------------------------------------------------------------------

def test_file_is_private_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "store.db"
    first = Store(path)
    pid, lsid = first.ensure_target()
    first.ingest_traces(pid, envelope(lsid, traces=[agent_trace()]))
    first.close()
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = Store(str(path))
    try:
        assert again.path == path
        assert again.counts() == {"sessions": 0, "traces": 1, "spans": 4}
    finally:
        again.close()


def test_unusable_paths_give_clear_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create the local store") as err:
        Store(blocker / "store.db")
    assert str(blocker) in str(err.value)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(sqlite3.DatabaseError, match=r"corrupt\.db") as err2:
        Store(corrupt)
    assert "database" in str(err2.value)


def test_read_only_directory(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="gs-ro-", dir="/tmp" if os.path.isdir("/tmp") else None))
    locked = base / "locked"
    locked.mkdir()
    base.chmod(0o755)
    locked.chmod(0o555)
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        if as_root:  # root ignores permissions: check as nobody (effective ids only)
            os.setegid(65534)
            os.seteuid(65534)
        try:
            with pytest.raises(PermissionError) as err:
                Store(locked / "sub" / "store.db")
        finally:
            if as_root:
                os.seteuid(0)
                os.setegid(0)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)
    message = str(err.value)
    assert "cannot create the local store" in message
    assert str(locked / "sub" / "store.db") in message and "ermission denied" in message


# -- concurrency --------------------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys, uuid
    from galileo_sessions._store import Store
    path, pid, lsid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = Store(path)
    for i in range(n):
        tid = str(uuid.uuid4())
        store.ingest_traces(pid, {"log_stream_id": lsid, "traces": [{
            "type": "trace", "id": tid, "name": f"proc-{i}", "input": "x",
            "created_at": "2026-03-04T10:00:00Z",
            "spans": [{"type": "tool", "id": str(uuid.uuid4()), "input": "y"}]}]})
        store.create_session(pid, {"log_stream_id": lsid, "name": f"proc-{i}"})
    store.close()
""")


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    a, b = Store(path), Store(path)
    try:
        pid, lsid = a.ensure_target()
        assert b.ensure_target() == (pid, lsid)
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), pid, lsid, "40"],
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        errors: list[BaseException] = []

        def write(s: Store, n: int) -> None:
            try:
                for _ in range(n):
                    s.ingest_traces(pid, envelope(lsid, traces=[agent_trace()]))
                    s.create_session(pid, envelope(lsid))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s, 25)) for s in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert errors == []
        assert a.counts() == {"sessions": 140, "traces": 140, "spans": 4 * 100 + 40}
    finally:
        a.close()
        b.close()
