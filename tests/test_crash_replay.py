"""The disk spool across processes: a dead backend costs the caller nothing, and what could
not be sent (at shutdown, or in flight when the process was SIGKILLed) is replayed by the next
process on the same spool, exactly once. Also the memory bound: overflow goes to disk, and only
past the disk bound are records dropped (counted, logged once).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _delivery_helpers import (  # noqa: F401 - ``server`` is a fixture
    child_env,
    configure_for,
    flush_until_ok,
    read_store,
    replay_in_new_process,
    run_child,
    server,
    set_faults,
    spool_dir,
    spool_files,
    spooled_ids,
    status_count,
    wait_for,
)

import galileo_sessions as gs
from galileo_sessions import _internal
from galileo_sessions.server import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fresh_log_once() -> Iterator[None]:
    _internal._once_keys.clear()
    yield
    _internal._once_keys.clear()


# A program making N decorated calls (a trace with a nested span each, in chained sessions),
# timing them and its shutdown; it writes the ids of its traces to IDS_FILE.
CALLS_SCRIPT = """
import json, os, sys, time
import galileo_sessions as gs
n, ids_file = int(sys.argv[1]), sys.argv[2]
gs.configure(flush_interval=0.05, connect_timeout=1.0, read_timeout=2.0)

@gs.span(type="tool")
def tool(i):
    return i * 2

@gs.trace
def call(i):
    tool(i)
    return gs.current_span().id

ids = []
start = time.perf_counter()
for turn in range(n // 100):
    with gs.session("load", external_id="user-%d" % (turn % 4)):
        ids.extend(call(i) for i in range(100))
elapsed = time.perf_counter() - start
with open(ids_file, "w") as f:
    f.write("\\n".join(ids))
stats = gs.stats()
t0 = time.perf_counter()
result = gs.shutdown(timeout=1)
shutdown_s = time.perf_counter() - t0
print(json.dumps({"calls_s": elapsed, "shutdown_s": shutdown_s, "stats": stats,
                  "pending": result.pending, "ok": result.ok}))
"""


def test_server_down_costs_nothing_and_next_process_replays(server: ServerThread,
                                                            tmp_path: Path) -> None:
    n = 2000
    up_dir = tmp_path / "up"
    up_dir.mkdir()
    up = json.loads(run_child(CALLS_SCRIPT, child_env(up_dir, server),
                              args=[str(n), str(up_dir / "ids")]).stdout.splitlines()[-1])
    assert up["ok"], up
    assert len(read_store(server.store.path).traces) == n

    server.stop()  # down from the start of the next program
    ids_file = tmp_path / "ids"
    down = json.loads(run_child(CALLS_SCRIPT, child_env(tmp_path, server),
                                args=[str(n), str(ids_file)]).stdout.splitlines()[-1])
    print(f"{n} calls: server up {up['calls_s']:.3f}s, down {down['calls_s']:.3f}s; "
          f"shutdown with the server down {down['shutdown_s']:.3f}s")
    # No network cost on the caller: generous bound for a loaded machine.
    assert down["calls_s"] < max(3 * up["calls_s"], up["calls_s"] + 1.5), (up, down)
    assert down["shutdown_s"] < 2.0, down
    assert not down["ok"] and down["pending"] > 0
    assert down["stats"]["dropped"] == 0

    files = spool_files(tmp_path)
    assert files, "nothing was spooled"
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert spool_dir(tmp_path).stat().st_mode & 0o777 == 0o700
    produced = ids_file.read_text().split()
    assert len(produced) == n
    assert spooled_ids(tmp_path) == set(produced)

    server.start()
    replayed = replay_in_new_process(tmp_path, server)
    assert replayed["stats"]["pending"] == 0 and replayed["failed"] == 0, replayed
    assert spool_files(tmp_path) == []
    stored = read_store(server.store.path)
    assert set(produced) <= set(stored.traces)
    assert len(stored.traces) == 2 * n  # both programs' traces, each exactly once
    assert len(stored.spans) == 2 * n
    # 20 sessions per program, chained per user; the replayed ones still link up.
    assert len(stored.sessions) == 2 * (n // 100)
    linked = [s for s in stored.sessions.values() if s["previous_session_id"]]
    assert len(linked) == 2 * (n // 100 - 4)
    assert all(s["previous_session_id"] in stored.sessions for s in linked)
    assert status_count(server, 422) == 0


def test_queue_overflow_spills_to_disk_not_dropped(server: ServerThread,
                                                   tmp_path: Path) -> None:
    configure_for(server, tmp_path, max_queue_bytes=200_000)
    server.stop()

    @gs.trace
    def call(i: int) -> str:
        return "x" * 500

    with gs.session("overflow"):
        for i in range(1500):
            call(i)
    wait_for(lambda: gs.stats()["spooled"] > 0, what="overflow spooled")
    stats = gs.stats()
    assert stats["dropped"] == 0, stats
    assert stats["queue_bytes"] <= 2 * 200_000 + 10_000, stats
    assert spool_files(tmp_path)
    # Back up: this process replays its own overflow; everything arrives once.
    server.start()
    flush_until_ok(timeout=60)
    stored = read_store(server.store.path)
    assert len(stored.traces) == 1500 and len(stored.sessions) == 1
    assert gs.stats()["dropped"] == 0
    wait_for(lambda: spool_files(tmp_path) == [], what="spool emptied")


def test_full_spool_drops_are_counted_and_logged_once(server: ServerThread, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")
    configure_for(server, tmp_path, max_queue_bytes=100_000, spool_max_bytes=60_000)
    server.stop()

    @gs.trace
    def call(i: int) -> str:
        return "y" * 500

    for i in range(2000):
        call(i)
    wait_for(lambda: gs.stats()["dropped"] > 0, what="drops")
    result = gs.shutdown(timeout=1)
    stats_dropped = result.dropped
    assert stats_dropped > 0
    drops = [r for r in caplog.records if "dropping" in r.getMessage()]
    assert len(drops) == 1, [r.getMessage() for r in caplog.records]
    total = sum(f.stat().st_size for f in spool_files(tmp_path))
    assert total <= 60_000


# A reliable-mode program: each turn is a session with one trace; it notes every trace id in
# IDS_FILE (fsynced) before the trace is sent, then says which turn finished.
CRASH_SCRIPT = """
import os, sys
import galileo_sessions as gs
ids_file = sys.argv[1]
gs.configure(mode="reliable", reliable_timeout=30, flush_interval=0.05)
out = open(ids_file, "a")

@gs.span(type="llm", model="m")
def model(q):
    return {"role": "assistant", "content": "a " + q}

@gs.trace
def turn(i):
    tid = gs.current_span().id
    out.write(tid + "\\n"); out.flush(); os.fsync(out.fileno())
    print("sending", i, flush=True)
    model("q%d" % i)
    return "ok"

for i in range(1000):
    with gs.session("crash", external_id="turn-%d" % i, chain="crash"):
        turn(i)
    print("done", i, flush=True)
"""


def test_sigkill_mid_send_loses_nothing(server: ServerThread, tmp_path: Path) -> None:
    set_faults(server, latency_ms=300)
    ids_file = tmp_path / "ids"
    env = child_env(tmp_path, server)
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(ids_file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if line.startswith("sending 3"):  # three turns done, the fourth trace in flight
                break
            assert time.monotonic() < deadline, "child too slow"
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    started = ids_file.read_text().split()
    assert len(started) == 4
    files = spool_files(tmp_path)
    assert files, "the in-flight record was not in the spool"
    assert spooled_ids(tmp_path) <= set(started)
    assert started[-1] in spooled_ids(tmp_path)

    set_faults(server)  # the next start: a new process on the same spool
    replayed = replay_in_new_process(tmp_path, server)
    assert replayed["stats"]["pending"] == 0 and replayed["failed"] == 0, replayed
    assert spool_files(tmp_path) == []
    stored = read_store(server.store.path)
    assert set(stored.traces) == set(started)  # nothing missing, nothing extra
    assert len(stored.spans) == len(started)
    by_external = sorted(s["external_id"] for s in stored.sessions.values())
    assert by_external == [f"turn-{i}" for i in range(4)]  # no duplicate sessions
    ids = {s["external_id"]: s["id"] for s in stored.sessions.values()}
    for i in range(1, 4):
        prev = next(s for s in stored.sessions.values() if s["external_id"] == f"turn-{i}")
        assert prev["previous_session_id"] == ids[f"turn-{i - 1}"]
    assert {t["session_id"] for t in stored.traces.values()} == set(ids.values())
    assert os.environ.get("GALILEO_API_KEY") is None  # the children did not leak env here
