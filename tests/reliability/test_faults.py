"""Faults against the dev server, in both modes, measured: 503 and 429 at 10/50/100 % for a
while, read timeouts, connection refused, the server restarted several times, a 2 s server.

Promises checked per scenario: nothing lost, nothing duplicated, chains and trees intact; in
fire-and-forget mode the caller's per-call latency stays that of a fault-free run (it never
waits on the network); in reliable mode the caller waits through the fault and gets
``DeliveryError`` only after ``reliable_timeout``. Numbers go to RELIABILITY.md (figures.py).
Scenarios already covered without figures live in tests/test_delivery_faults.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _delivery_helpers import (  # noqa: F401 - ``server`` is a fixture
    configure_for,
    read_store,
    replay_in_new_process,
    server,
    set_faults,
    spool_files,
)

import galileo_sessions as gs
from galileo_sessions.server import ServerThread

from ._common import latency_summary, run_turn
from ._scenarios import STATUS_FAULTS, Outcome, fault_run, outage, restarts

pytestmark = pytest.mark.reliability

MODES = ["fire_and_forget", "reliable"]
_baselines: dict[str, dict[str, float]] = {}


def baseline(srv: ServerThread, tmp_path: Path, mode: str) -> dict[str, float]:
    """Per-call latency of the same workload with no faults (measured once per mode)."""
    if mode not in _baselines:
        configure_for(srv, tmp_path, mode=mode)
        with gs.session("warm-up"):
            pass
        gs.flush(timeout=10)
        latencies = []
        for index in range(60):
            for user in range(4):
                t0 = time.perf_counter()
                run_turn(user + 100, index)
                latencies.append(time.perf_counter() - t0)
        gs.shutdown(timeout=10)
        _baselines[mode] = latency_summary(latencies)
    return _baselines[mode]


def check(outcome: Outcome, base: dict[str, float]) -> None:
    assert outcome.problems == [], outcome.problems[:10]
    assert outcome.lost == 0 and outcome.duplicates == 0, outcome.row()
    assert outcome.stored == outcome.produced > 0, outcome.row()
    assert outcome.rss_growth_mb < 100, outcome.row()
    if outcome.mode == "fire_and_forget":
        assert outcome.delivery_errors == 0
        # The caller never waits on the network: a typical call costs what it costs with a
        # healthy server (generous bounds for a loaded 2-core machine; the server runs in this
        # process and competes for the GIL), and no call waits anything like a request.
        assert outcome.latency["p50_ms"] < base["p50_ms"] * 3 + 1.0, (outcome.row(), base)
        assert outcome.latency["max_ms"] < 250, (outcome.row(), base)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "faults"), STATUS_FAULTS, ids=[n for n, _ in STATUS_FAULTS])
def test_status_bursts(server: ServerThread, tmp_path: Path, mode: str, name: str,
                       faults: dict[str, Any]) -> None:
    base = baseline(server, tmp_path / "base", mode)
    outcome = fault_run(server, tmp_path, mode, name, faults=faults, fault_s=1.0, run_s=1.5)
    print(outcome.row())
    check(outcome, base)
    assert outcome.faults_injected > 0
    if mode == "reliable" and faults["rate"] == 1.0:
        # Callers waited through the burst (no error: the burst is shorter than the timeout).
        assert outcome.latency["max_ms"] >= 500, outcome.row()


@pytest.mark.parametrize("mode", MODES)
def test_read_timeouts(server: ServerThread, tmp_path: Path, mode: str) -> None:
    base = baseline(server, tmp_path / "base", mode)
    outcome = fault_run(server, tmp_path, mode, "read timeouts",
                        faults={"latency_ms": 500, "paths": ["/sessions", "/traces", "/spans"]},
                        fault_s=1.0, run_s=1.5, options={"read_timeout": 0.25},
                        pace_s=0.02 if mode == "fire_and_forget" else 0)
    print(outcome.row())
    check(outcome, base)


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(server: ServerThread, tmp_path: Path, mode: str) -> None:
    base = baseline(server, tmp_path / "base", mode)
    outcome = fault_run(server, tmp_path, mode, "connection refused (1 s outage)",
                        action=outage(1.0), run_s=1.5)
    print(outcome.row())
    check(outcome, base)


@pytest.mark.parametrize("mode", MODES)
def test_server_restarted_several_times(server: ServerThread, tmp_path: Path,
                                        mode: str) -> None:
    base = baseline(server, tmp_path / "base", mode)
    outcome = fault_run(server, tmp_path, mode, "server restarted 3 times",
                        action=restarts(3), run_s=2.2)
    print(outcome.row())
    check(outcome, base)


@pytest.mark.parametrize("mode", MODES)
def test_slow_server_two_seconds_per_request(server: ServerThread, tmp_path: Path,
                                             mode: str) -> None:
    base = baseline(server, tmp_path / "base", mode)
    reliable = mode == "reliable"
    outcome = fault_run(server, tmp_path, mode, "slow server (2 s/request)",
                        faults={"latency_ms": 2000, "paths": ["/sessions", "/traces"]},
                        fault_s=3.0, hold_fault=True, run_s=1.0, users=1 if reliable else 2,
                        max_turns=1 if reliable else 200,
                        options={"read_timeout": 10.0})
    print(outcome.row())
    check(outcome, base)
    if reliable:  # session creation and the trace each wait ~2 s, well under the timeout
        assert 3.5 < outcome.latency["max_ms"] / 1000 < 15, outcome.row()


def test_reliable_delivery_error_only_after_reliable_timeout(server: ServerThread,
                                                             tmp_path: Path) -> None:
    """A 100 % 503 fault longer than reliable_timeout: DeliveryError, never before the timeout,
    and the records stay in the spool; the next process delivers them all."""
    timeout = 0.8
    outcome = fault_run(server, tmp_path, "reliable", "503 at 100% past reliable_timeout",
                        faults={"status": 503, "rate": 1.0}, fault_s=60, run_s=0.1,
                        users=2, max_turns=1, options={"reliable_timeout": timeout})
    print(outcome.row(), outcome.error_after_s)
    assert outcome.delivery_errors == 2
    assert all(timeout <= t < timeout + 3 for t in outcome.error_after_s), outcome.error_after_s
    assert len(spool_files(tmp_path)) == 2  # the two session creations
    set_faults(server)
    # The files belong to this (live) process, so no other process takes them; "the next
    # start" is simulated by handing them to a pid that has ended.
    dead = subprocess.Popen(["true"])
    dead.wait()
    for path in spool_files(tmp_path):
        path.rename(path.with_name(f"{dead.pid}-{path.name.split('-', 1)[1]}"))
    replayed = replay_in_new_process(tmp_path, server)
    assert replayed["stats"]["pending"] == 0 and replayed["failed"] == 0, replayed
    assert spool_files(tmp_path) == []
    assert {"user-0", "user-1"} <= {
        s["external_id"] for s in read_store(server.store.path).sessions.values()}
