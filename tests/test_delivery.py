"""Delivery to the real dev server over loopback: what the program made is what the server has.

Each test runs a workload that notes every id it produced, delivers it through the library's
HTTP path to a ``ServerThread`` (strict validation, API key required), and compares the
server's store with the note: every session, trace and span exactly once, linked to the right
session and previous session (server ids), and nothing extra. No mock transports.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest
from _delivery_helpers import (  # noqa: F401 - ``server`` is a fixture
    Expected,
    assert_store_matches,
    configure_for,
    read_store,
    run_workload,
    server,
    server_requests,
    wait_for,
    write_requests,
)

import galileo_sessions as gs
from galileo_sessions.server import ServerThread

MODES = ["fire_and_forget", "reliable"]


@pytest.mark.parametrize("mode", MODES)
def test_happy_path_every_record_exactly_once(server: ServerThread, tmp_path: Path,
                                              mode: str) -> None:
    configure_for(server, tmp_path, mode=mode)
    expected = Expected()
    run_workload(expected, users=3, turns=3)

    result = gs.flush(timeout=30)
    assert result.ok, result
    assert gs.stats()["pending"] == 0
    # Late thread spans may end after the flush above started: flush until they are in.
    wait_for(lambda: len(read_store(server.store.path).spans) >= len(expected.spans),
             what="late spans")
    assert gs.flush(timeout=30).ok

    stored = read_store(server.store.path)
    assert len(expected.sessions) == 9 and len(expected.traces) == 9
    assert len(stored.spans) == len(expected.spans) > 9 * 4
    assert_store_matches(stored, expected)

    writes = write_requests(server)
    assert writes, "nothing was sent over HTTP"
    assert all(r["status"] == 200 for r in writes), [
        (r["path"], r["status"]) for r in writes if r["status"] != 200]
    reliable = mode == "reliable"
    assert all(r["body"]["reliable"] is reliable for r in writes)
    # The API key travels only in its header (which the server log redacts).
    for r in server_requests(server):
        assert r["headers"].get("galileo-api-key") in (None, "***")
    # Late spans went as span ingests against their (already stored) traces.
    assert any(r["path"].endswith("/spans") for r in writes)
    stats = gs.stats()
    assert stats["failed"] == stats["dropped"] == 0
    assert stats["sent"] == stats["enqueued"]


@pytest.mark.parametrize("mode", MODES)
def test_session_ids_known_and_resume_over_http(server: ServerThread, tmp_path: Path,
                                                mode: str) -> None:
    configure_for(server, tmp_path, mode=mode)

    @gs.trace
    def step(x: int) -> int:
        return x + 1

    with gs.session("conv", external_id="ext-1") as first:
        step(1)
    first_id = first.id
    assert first_id is not None
    # resume=True continues the existing session (found through the search endpoint when the
    # process does not know it: a fresh configure forgets the chain store).
    configure_for(server, tmp_path, mode=mode)
    with gs.session("conv", external_id="ext-1", resume=True) as again:
        step(2)
    assert again.id == first_id
    assert gs.flush(timeout=30).ok
    stored = read_store(server.store.path)
    assert list(stored.sessions) == [first_id]
    assert {t["session_id"] for t in stored.traces.values()} == {first_id}
    assert len(stored.traces) == 2


def test_two_processes_worth_of_configure_cycles(server: ServerThread, tmp_path: Path) -> None:
    """Reconfiguring flushes the old pipeline: nothing is lost across configure() calls."""
    expected = Expected()
    for mode in MODES:
        configure_for(server, tmp_path, mode=mode)
        run_workload(expected, users=2, turns=1, late_spans=False)
    assert gs.flush(timeout=30).ok
    assert_store_matches(read_store(server.store.path), expected)


@pytest.mark.slow
def test_fork_child_and_parent_records_arrive(server: ServerThread, tmp_path: Path) -> None:
    configure_for(server, tmp_path)

    @gs.trace
    def work(who: str) -> str:
        with gs.span("inner", type="tool"):
            pass
        span_id = gs.current_span().id
        assert span_id is not None
        return span_id

    ids_file = tmp_path / "child-ids.txt"
    parent_ids = [work("parent-before")]
    assert gs.flush(timeout=30).ok
    with warnings.catch_warnings():
        # 3.12+ warns about fork() with threads running (the server and worker threads).
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
        pid = os.fork()
    if pid == 0:  # the child: no configure(), just decorated calls, a flush and _exit
        code = 1
        try:
            with gs.session("forked", external_id="child"):
                ids = [work("child") for _ in range(5)]
            result = gs.flush(timeout=30)
            ids_file.write_text("\n".join(ids))
            code = 0 if result.ok else 2
        finally:
            os._exit(code)
    parent_ids += [work("parent-after") for _ in range(5)]
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "forked child hung"
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gs.flush(timeout=30).ok
    child_ids = ids_file.read_text().split()
    assert len(child_ids) == 5
    stored = read_store(server.store.path)
    assert set(stored.traces) == set(parent_ids) | set(child_ids)
    child_sessions = [s for s in stored.sessions.values() if s["external_id"] == "child"]
    assert len(child_sessions) == 1
    assert {stored.traces[t]["session_id"] for t in child_ids} == {child_sessions[0]["id"]}
    assert len(stored.spans) == len(stored.traces)  # one tool span each
