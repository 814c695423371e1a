"""The embedded default: no capture, no credentials, records land in the local SQLite store."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import galileo_sessions as gs
from galileo_sessions import _internal
from galileo_sessions._store import Store


@gs.span(type="tool")
def tool(x: int) -> int:
    return x * 10


@gs.span(type="llm", model="gpt-x")
def llm(prompt: str) -> str:
    return f"answer to {prompt}"


@gs.trace
def agent(q: str) -> str:
    tool(1)
    return llm(q)


def read_sessions(path: Path) -> list[dict[str, Any]]:
    store = Store(path)
    try:
        sessions = store.list_sessions()
        return [store.get_session(s["project_id"], s["id"]) for s in reversed(sessions)]
    finally:
        store.close()


def test_configured_store_receives_sessions_traces_spans(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    gs.configure(store=str(path))
    with gs.session("chat", external_id="u1", metadata={"plan": "pro"}) as first:
        agent("q1")
        agent("q2")
    with gs.session("chat", external_id="u1") as second:
        agent("q3")
    result = gs.flush(5)
    assert result == gs.FlushResult(sent=5, failed=0, dropped=0, pending=0, last_error=None)
    assert result.ok and bool(result)
    s1, s2 = read_sessions(path)
    assert (s1["id"], s2["id"]) == (first.id, second.id)
    assert s1["previous_session_id"] is None
    assert s2["previous_session_id"] == first.id
    assert (s1["name"], s1["external_id"], s1["user_metadata"]) == ("chat", "u1", {"plan": "pro"})
    assert [t["input"] for t in s1["traces"]] == ['{"q":"q1"}', '{"q":"q2"}']
    assert [t["input"] for t in s2["traces"]] == ['{"q":"q3"}']
    trace = s1["traces"][0]
    assert (trace["type"], trace["name"], trace["output"]) == ("trace", "agent", "answer to q1")
    assert trace["session_id"] == first.id
    tool_span, llm_span = trace["spans"]
    assert (tool_span["type"], tool_span["output"], tool_span["parent_id"]) == \
        ("tool", "10", trace["id"])
    assert (llm_span["type"], llm_span["model"]) == ("llm", "gpt-x")
    assert llm_span["trace_id"] == trace["id"]
    assert llm_span["output"]["content"] == "answer to q1"
    assert trace["metrics"]["duration_ns"] >= llm_span["metrics"]["duration_ns"] > 0


def test_env_store_from_conftest_is_used_without_configure(store_path: Path) -> None:
    assert agent("env") == "answer to env"
    assert gs.flush(5).ok
    store = Store(store_path)
    try:
        assert store.counts() == {"sessions": 0, "traces": 1, "spans": 2}
        (session_less,) = _all_traces(store)
        assert session_less["name"] == "agent"
        assert session_less["session_id"] is None
        assert [s["name"] for s in session_less["spans"]] == ["tool", "llm"]
    finally:
        store.close()


def _all_traces(store: Store) -> list[dict[str, Any]]:
    conn = store._connection()
    rows = conn.execute("SELECT id, project_id FROM records WHERE type = 'trace'").fetchall()
    return [store.get_trace(row["project_id"], row["id"]) for row in rows]


def test_late_span_reaches_the_store(tmp_path: Path) -> None:
    path = tmp_path / "late.db"
    gs.configure(store=str(path))
    release = threading.Event()
    pool = gs.ContextExecutor(1)

    @gs.span
    def late() -> str:
        release.wait(5)
        return "late"

    with gs.session("s") as s:
        with gs.trace("t"):
            future = pool.submit(late)
        release.set()
        future.result(5)
    pool.shutdown(wait=True)
    assert gs.flush(5).sent == 3
    (session,) = read_sessions(path)
    assert session["id"] == s.id
    (trace,) = session["traces"]
    assert [c["name"] for c in trace["spans"]] == ["late"]


def test_flush_results_are_deltas_and_stats_are_totals(tmp_path: Path) -> None:
    gs.configure(store=str(tmp_path / "d.db"))
    agent("a")
    assert gs.flush(5).sent == 1
    assert gs.flush(5) == gs.FlushResult()
    agent("b")
    agent("c")
    assert gs.flush(5).sent == 2
    stats = gs.stats()
    assert stats["enqueued"] == 3 and stats["sent"] == 3
    assert stats["failed"] == stats["dropped"] == stats["pending"] == 0
    assert set(stats) >= {"enqueued", "sent", "retried", "failed", "dropped", "spooled",
                          "queue_bytes"}


async def test_aflush(tmp_path: Path) -> None:
    gs.configure(store=str(tmp_path / "a.db"))

    @gs.trace
    async def run() -> int:
        return 1

    await run()
    result = await gs.aflush(5)
    assert result.ok and result.sent == 1


def test_shutdown_flushes_and_next_call_configures_again(tmp_path: Path,
                                                         store_path: Path) -> None:
    gs.configure(store=str(tmp_path / "first.db"))
    agent("x")
    result = gs.shutdown(5)
    assert result.ok and result.sent == 1
    assert gs.shutdown(5) == gs.FlushResult()  # idempotent
    assert gs.flush(1) == gs.FlushResult()
    assert gs.stats()["sent"] == 0
    agent("y")  # configures from the environment: the conftest store
    assert gs.flush(5).sent == 1
    assert store_path.exists()


def test_configure_again_flushes_the_old_pipeline(tmp_path: Path) -> None:
    first = tmp_path / "one.db"
    gs.configure(store=str(first))
    agent("x")
    gs.configure(store=str(tmp_path / "two.db"))
    (session_less,) = _all_traces_path(first)
    assert session_less["name"] == "agent"


def _all_traces_path(path: Path) -> list[dict[str, Any]]:
    store = Store(path)
    try:
        return _all_traces(store)
    finally:
        store.close()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_store_directory(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    monkeypatch.setattr(_internal, "_once_keys", set())
    caplog.set_level(logging.ERROR, logger="galileo_sessions")
    try:
        gs.configure(store=str(readonly / "sub" / "s.db"))
        with gs.session("s"):
            assert agent("still works") == "answer to still works"
            assert agent("again") == "answer to again"
        result = gs.flush(1.0)
        assert not result.ok
        assert result.pending > 0 or result.failed > 0
        assert result.last_error
        errors = [r for r in caplog.records if "local store" in r.getMessage()]
        assert len(errors) == 1
        assert not gs.shutdown(0.2).ok
    finally:
        readonly.chmod(0o700)


def test_read_only_store_directory_as_root_via_file(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores permissions, but nobody can create a database under a regular file."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setattr(_internal, "_once_keys", set())
    caplog.set_level(logging.ERROR, logger="galileo_sessions")
    gs.configure(store=str(blocker / "s.db"))
    with gs.session("s"):
        assert agent("q") == "answer to q"
    agent("q2")
    result = gs.flush(1.0)
    assert not result.ok
    assert result.pending == 3
    assert result.last_error and "local store" in result.last_error
    assert len([r for r in caplog.records if "local store" in r.getMessage()]) == 1
    assert not gs.shutdown(0.2).ok  # bounded: a dead store never hangs shutdown


IMPORT_CHECK = """
import sys
import galileo_sessions as gs
heavy = sorted(m for m in ("httpx", "sqlite3", "_sqlite3", "opentelemetry.sdk")
               if m in sys.modules)
print(",".join(heavy))
"""


def test_import_is_light() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALILEO")}
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True,
                         timeout=60, check=True, env=env)
    assert out.stdout.strip() == ""


def test_first_decorated_call_imports_sqlite_not_httpx(tmp_path: Path) -> None:
    script = IMPORT_CHECK.replace("import sys", "import json, sys", 1) + f"""
gs.configure(store={str(tmp_path / "i.db")!r})

@gs.trace
def f() -> int:
    return 1

f()
assert gs.flush(5).ok
print(json.dumps(sorted(m for m in ("httpx", "sqlite3") if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == ""
    assert json.loads(lines[-1]) == ["sqlite3"]


def test_public_api_is_exactly_all() -> None:
    """``__all__`` is sorted and names every public attribute, and nothing else."""
    public = {name for name in vars(gs) if not name.startswith("_")} - {
        "annotations", "TYPE_CHECKING", "Any", "exceptions"}
    public |= {"testing"}  # loaded on first use (keeps pytest out of `import galileo_sessions`)
    assert list(gs.__all__) == sorted(gs.__all__)
    assert set(gs.__all__) - {"__version__"} == public - {"__version__"} - _submodules()


def _submodules() -> set[str]:
    import types

    return {name for name, value in vars(gs).items() if isinstance(value, types.ModuleType)
            and name != "testing"}
