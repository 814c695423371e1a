"""Shared pieces of the delivery suite: a real dev server, a workload that notes what it made,
and a comparison of the server's store with that note.

The workload records every id it produced (sessions by handle, traces, spans with their parent),
so a test can say "everything arrived exactly once, linked right, and nothing else did" by
reading the server's SQLite file directly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import galileo_sessions as gs
from galileo_sessions import _runtime
from galileo_sessions.server import ServerThread

API_KEY = "gs-delivery-test-key-5b1e0c7d9a"
ROOT = Path(__file__).resolve().parents[1]


# --- the server ------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    """A started dev server on 127.0.0.1:<free port> with its own store and an API key."""
    with ServerThread(tmp_path / "server.db", api_key=API_KEY) as srv:  # owns the store
        yield srv


def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def configure_for(srv: ServerThread, tmp_path: Path, **options: Any) -> None:
    """Point the library at ``srv`` with a fast worker and this test's spool."""
    values: dict[str, Any] = {
        "api_url": srv.url, "api_key": API_KEY, "spool_dir": str(spool_dir(tmp_path)),
        "flush_interval": 0.05, "read_timeout": 5.0, "connect_timeout": 2.0,
    }
    values.update(options)
    gs.configure(**values)


def admin(srv: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Galileo-API-Key": API_KEY}, timeout=10)


def set_faults(srv: ServerThread, **config: Any) -> None:
    with admin(srv) as c:
        r = c.put("/_admin/faults", json=config)
        assert r.status_code == 200, r.text


def clear_faults(srv: ServerThread) -> None:
    set_faults(srv)


def server_stats(srv: ServerThread) -> dict[str, Any]:
    with admin(srv) as c:
        r = c.get("/_admin/stats")
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def server_requests(srv: ServerThread, limit: int = 100_000) -> list[dict[str, Any]]:
    with admin(srv) as c:
        r = c.get("/_admin/requests", params={"limit": limit})
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()["requests"]
        return records


def status_count(srv: ServerThread, status: int) -> int:
    return int(server_stats(srv)["requests"].get("by_status", {}).get(str(status), 0))


def write_requests(srv: ServerThread) -> list[dict[str, Any]]:
    """Logging writes (sessions, traces, spans) the server saw, faulted ones included."""
    return [r for r in server_requests(srv)
            if r["method"] == "POST" and "/v2/projects/" in r["path"]]


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll ``condition`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def flush_until_ok(timeout: float = 30.0) -> gs.FlushResult:
    """Flush until everything pending has been delivered (faults may need several rounds)."""
    deadline = time.monotonic() + timeout
    while True:
        result = gs.flush(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        snap = gs.stats()
        if snap["pending"] == 0:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"records still pending after {timeout}s: {snap}, {result}")


# --- what a program produced -------------------------------------------------------------------

@dataclass
class Expected:
    """Everything a workload produced, by client-side ids and live session handles."""

    sessions: list[tuple[gs.SessionHandle, gs.SessionHandle | None]] = field(default_factory=list)
    traces: dict[str, gs.SessionHandle | None] = field(default_factory=dict)
    spans: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (trace, parent)
    #: the newest session per (runtime, chain): chains live in the runtime of a configure()
    last: dict[tuple[int, str], gs.SessionHandle] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def span(self, parent: str | None) -> None:
        """Note the running span, under ``parent``."""
        handle = gs.current_span()
        assert handle.id is not None and handle.trace_id is not None and parent is not None
        with self.lock:
            self.spans[handle.id] = (handle.trace_id, parent)


def run_workload(expected: Expected, *, users: int = 3, turns: int = 3,
                 late_spans: bool = True) -> None:
    """Per-user chained sessions; each turn a trace with nested spans; some late thread spans."""

    @gs.span(type="llm", model="test-model")
    def call_model(prompt: str, parent: str) -> dict[str, str]:
        expected.span(parent)
        return {"role": "assistant", "content": f"answer to {prompt}"}

    @gs.span(type="tool")
    def search(query: str, parent: str) -> str:
        expected.span(parent)
        return f"results for {query}"

    @gs.span(type="retriever")
    def slow_lookup(query: str, parent: str, release: threading.Event) -> str:
        expected.span(parent)
        release.wait(10)
        return f"late {query}"

    @gs.trace
    def turn(user: int, index: int, pool: gs.ContextExecutor,
             releases: list[threading.Event]) -> str:
        trace = gs.current_span()
        assert trace.id is not None
        session = gs.current_session()
        with expected.lock:
            expected.traces[trace.id] = session
        call_model(f"u{user} t{index}", trace.id)
        with gs.span("plan", type="agent") as plan:
            assert plan.id is not None
            expected.span(trace.id)
            search(f"q{index}", plan.id)
            call_model("inner", plan.id)
        if late_spans and index == 0:
            release = threading.Event()
            releases.append(release)
            pool.submit(slow_lookup, f"u{user}", trace.id, release)
        return "done"

    releases: list[threading.Event] = []
    with gs.ContextExecutor(max_workers=4) as pool:
        for index in range(turns):
            for user in range(users):
                with gs.session("chat", external_id=f"user-{user}") as s:
                    key = (id(_runtime.current), f"user-{user}")
                    expected.sessions.append((s, expected.last.get(key)))
                    expected.last[key] = s
                    turn(user, index, pool, releases)
        for release in releases:  # the traces are sent: these spans end late
            release.set()


# --- what the server holds -------------------------------------------------------------------

@dataclass
class Stored:
    sessions: dict[str, dict[str, Any]]
    records: dict[str, dict[str, Any]]
    session_rows: int
    record_rows: int

    @property
    def traces(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.records.items() if v["type"] == "trace"}

    @property
    def spans(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.records.items() if v["type"] != "trace"}


def read_store(path: Path | str) -> Stored:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        sessions = [dict(r) for r in conn.execute(
            "SELECT id, name, external_id, previous_session_id FROM sessions")]
        records = [dict(r) for r in conn.execute(
            "SELECT id, type, trace_id, parent_id, session_id FROM records")]
    finally:
        conn.close()
    return Stored({s["id"]: s for s in sessions}, {r["id"]: r for r in records},
                  len(sessions), len(records))


def assert_store_matches(stored: Stored, expected: Expected) -> None:
    """Every produced record is stored exactly once, linked right; nothing else is stored."""
    assert stored.session_rows == len(stored.sessions)
    assert stored.record_rows == len(stored.records)
    session_ids: dict[int, str] = {}
    for handle, previous in expected.sessions:
        sid = handle.wait(10)
        assert sid is not None, f"session {handle!r} never got a server id ({handle.error})"
        session_ids[id(handle)] = sid
        assert sid in stored.sessions, f"session {sid} missing from the store"
        row = stored.sessions[sid]
        assert row["external_id"] == handle.external_id
        want_previous = previous.wait(10) if previous is not None else None
        assert row["previous_session_id"] == want_previous, (sid, row, want_previous)
        assert handle.previous_session_id == want_previous
    assert len(set(session_ids.values())) == len(expected.sessions)
    assert set(stored.sessions) == set(session_ids.values()), "extra sessions in the store"

    assert set(stored.traces) == set(expected.traces), (
        f"missing traces {set(expected.traces) - set(stored.traces)}, "
        f"extra {set(stored.traces) - set(expected.traces)}")
    for trace_id, session in expected.traces.items():
        want = session_ids[id(session)] if session is not None else None
        assert stored.traces[trace_id]["session_id"] == want, trace_id
    assert set(stored.spans) == set(expected.spans), (
        f"missing spans {set(expected.spans) - set(stored.spans)}, "
        f"extra {set(stored.spans) - set(expected.spans)}")
    for span_id, (trace_id, parent_id) in expected.spans.items():
        row = stored.spans[span_id]
        assert (row["trace_id"], row["parent_id"]) == (trace_id, parent_id), (span_id, row)
        assert row["session_id"] == stored.traces[trace_id]["session_id"], span_id


# --- subprocesses ----------------------------------------------------------------------------

def child_env(tmp_path: Path, srv: ServerThread | None, **extra: str) -> dict[str, str]:
    """Environment of a child Python process using this test's spool and the dev server."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GALILEO_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["GALILEO_SESSIONS_SPOOL_DIR"] = str(spool_dir(tmp_path))
    env["GALILEO_SESSIONS_STORE"] = str(tmp_path / "child-local.db")
    if srv is not None:
        env["GALILEO_API_URL"] = srv.url
        env["GALILEO_API_KEY"] = API_KEY
    env.update(extra)
    return env


def run_child(script: str, env: dict[str, str], timeout: float = 60.0,
              args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", script, *(args or [])], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def spool_files(tmp_path: Path) -> list[Path]:
    directory = spool_dir(tmp_path)
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def spooled_ids(tmp_path: Path) -> set[str]:
    """Trace ids held in the spool files."""
    ids: set[str] = set()
    for path in spool_files(tmp_path):
        for op in json.loads(path.read_bytes())["ops"]:
            if op.get("kind") == "trace":
                ids.add(op["trace"]["id"])
    return ids


REPLAY_SCRIPT = """
import json, sys, time
import galileo_sessions as gs
gs.configure(flush_interval=0.05)   # everything else from the environment
deadline = time.monotonic() + 60
while True:
    result = gs.flush(timeout=10)
    stats = gs.stats()
    if stats["pending"] == 0 or time.monotonic() > deadline:
        break
gs.shutdown(timeout=5)
print(json.dumps({"stats": stats, "ok": result.ok, "failed": result.failed}))
"""


def replay_in_new_process(tmp_path: Path, srv: ServerThread, **env: str) -> dict[str, Any]:
    """Start a fresh process on the same spool dir; it replays what earlier runs left."""
    proc = run_child(REPLAY_SCRIPT, child_env(tmp_path, srv, **env))
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
