"""Measured scenarios, shared by the tests (which assert the promises) and ``figures.py``
(which prints the numbers for RELIABILITY.md).

A fault scenario runs the labelled workload (per-user chained sessions, a trace with three
nested spans per turn) against a real dev server for ``run_s`` seconds while a fault is on for
the first ``fault_s`` seconds (or while ``action`` runs: restarts, an outage), then heals the
server, waits for delivery and audits the store.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _delivery_helpers import (
    clear_faults,
    configure_for,
    flush_until_ok,
    server_stats,
    set_faults,
    wait_for,
)

import galileo_sessions as gs
from galileo_sessions.server import ServerThread

from . import _common
from ._common import audit_store, latency_summary, rss_mb, run_turn

_ = _common


@dataclass
class Outcome:
    name: str
    mode: str
    produced: int = 0          # records made by the program (sessions + traces + spans)
    stored: int = 0            # of those, records in the server's store
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    rss_growth_mb: float = 0.0
    delivery_errors: int = 0
    error_after_s: list[float] = field(default_factory=list)
    retried: int = 0
    faults_injected: int = 0
    deliver_s: float = 0.0     # from the end of the run until everything was in the store
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"scenario": self.name, "mode": self.mode, "produced": self.produced,
                "stored": self.stored, "duplicates": self.duplicates, "lost": self.lost,
                "p50_ms": round(self.latency.get("p50_ms", 0.0), 3),
                "p99_ms": round(self.latency.get("p99_ms", 0.0), 3),
                "max_ms": round(self.latency.get("max_ms", 0.0), 2),
                "rss_growth_mb": round(self.rss_growth_mb, 1),
                "delivery_errors": self.delivery_errors, "retried": self.retried,
                "faults": self.faults_injected, "deliver_s": round(self.deliver_s, 2),
                **self.extra}


def fault_run(srv: ServerThread, tmp_path: Path, mode: str, name: str, *,
              faults: dict[str, Any] | None = None, fault_s: float = 1.0, run_s: float = 1.5,
              action: Callable[[ServerThread], None] | None = None, users: int = 4,
              pace_s: float = 0.02, max_turns: int | None = None,
              options: dict[str, Any] | None = None, hold_fault: bool = False) -> Outcome:
    """Run the workload through a fault; deliver; audit. Leaves the library shut down."""
    configure_for(srv, tmp_path, mode=mode, **(options or {}))
    with gs.session("warm-up"):
        pass
    assert gs.flush(timeout=15).ok
    outcome = Outcome(name, mode)
    stop_fault = threading.Event()

    def fault_thread() -> None:
        if action is not None:
            action(srv)
            return
        if faults:
            stop_fault.wait(fault_s)
            clear_faults(srv)

    rss_before = rss_mb()
    latencies: list[float] = []
    done: dict[int, int] = dict.fromkeys(range(users), 0)
    if faults:
        set_faults(srv, **faults)
    helper = threading.Thread(target=fault_thread, daemon=True)
    helper.start()
    started = time.monotonic()
    index = 0
    while time.monotonic() - started < run_s and (max_turns is None or index < max_turns):
        for user in range(users):
            t0 = time.perf_counter()
            try:
                run_turn(user, index)
            except gs.DeliveryError:
                outcome.delivery_errors += 1
                outcome.error_after_s.append(time.perf_counter() - t0)
            else:
                done[user] += 1
            latencies.append(time.perf_counter() - t0)
        index += 1
        if pace_s:
            time.sleep(pace_s)
    if not hold_fault:  # else the fault lasts its fault_s, into the delivery
        stop_fault.set()
    helper.join(120)
    ran_until = time.monotonic()
    if not srv.running:
        srv.start()
    clear_faults(srv)
    outcome.faults_injected = sum(
        server_stats(srv)["faults"].get(k, 0) for k in ("status_injected", "dropped", "delayed"))
    if outcome.delivery_errors == 0:
        flush_until_ok(timeout=120)
        # Late spans are impossible here (no threads), so the store is complete now.
        wait_for(lambda: audit_store(srv.store.path, users=set(done)).records
                 >= sum(done.values()) * 5,
                 timeout=60, what="records in the store")
    else:
        gs.flush(timeout=10)
    outcome.deliver_s = time.monotonic() - ran_until
    outcome.rss_growth_mb = rss_mb() - rss_before
    outcome.retried = gs.stats()["retried"]
    gs.shutdown(timeout=5)
    audit = audit_store(srv.store.path, produced=done if not outcome.delivery_errors else None,
                        users=set(done))
    outcome.produced = sum(done.values()) * _common.RECORDS_PER_TURN
    outcome.stored = audit.records
    outcome.duplicates = audit.duplicates
    outcome.lost = max(0, outcome.produced - audit.records) if not outcome.delivery_errors \
        else 0
    outcome.problems = audit.problems
    outcome.latency = latency_summary(latencies)
    outcome.extra["turns"] = sum(done.values())
    return outcome


# --- actions ---------------------------------------------------------------------------------

def restarts(times: int, down_s: float = 0.3, every_s: float = 0.35) -> Callable[
        [ServerThread], None]:
    def act(srv: ServerThread) -> None:
        for _ in range(times):
            time.sleep(every_s)
            srv.stop()
            time.sleep(down_s)
            srv.start()
    return act


def outage(down_s: float) -> Callable[[ServerThread], None]:
    def act(srv: ServerThread) -> None:
        srv.stop()
        time.sleep(down_s)
        srv.start()
    return act


#: (name, faults, extra options) of the status-fault matrix
STATUS_FAULTS: list[tuple[str, dict[str, Any]]] = [
    (f"{status} at {int(rate * 100)}%",
     {"status": status, "rate": rate, "seed": 7, **({"retry_after": 0.2} if status == 429
                                                   else {})})
    for status in (503, 429) for rate in (0.1, 0.5, 1.0)
]


# --- process life ----------------------------------------------------------------------------

#: A program that makes ``n`` turns (user 0) and leaves by ``how``; records are still queued
#: when it leaves (flush_interval 30 s), so only the atexit shutdown can deliver them.
EXIT_SCRIPT = """
import asyncio, json, sys
import galileo_sessions as gs
from tests.reliability._common import arun_turn, run_turn
how, n = sys.argv[1], int(sys.argv[2])
gs.configure(flush_interval=30.0, shutdown_timeout=10.0)

def report():
    print(json.dumps({"pending": gs.stats()["pending"]}), flush=True)

if how == "asyncio":
    async def main():
        for i in range(n):
            await arun_turn(0, i)
        report()
    asyncio.run(main())
else:
    for i in range(n):
        run_turn(0, i)
    report()
    if how == "sys_exit":
        sys.exit(3)
    if how == "exception":
        raise RuntimeError("unhandled, on purpose")
"""

EXIT_CODES = {"normal": 0, "sys_exit": 3, "exception": 1, "asyncio": 0}

#: Turns in a loop, printing each finished one, until a signal ends the process.
LOOP_SCRIPT = """
import signal, sys
import galileo_sessions as gs
from tests.reliability._common import run_turn
mode, handler = sys.argv[1], sys.argv[2]
gs.configure(mode=mode, flush_interval=0.05, reliable_timeout=30, shutdown_timeout=10.0)
if handler == "exit":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
i = 0
while True:
    run_turn(0, i)
    print("done", i, flush=True)
    i += 1
"""


def exit_run(srv: ServerThread, tmp_path: Path, how: str, n: int = 20) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    from _delivery_helpers import child_env

    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, how, str(n)],
                          env=child_env(tmp_path, srv), capture_output=True, text=True,
                          timeout=60, check=False)
    elapsed = time.monotonic() - started
    audit = audit_store(srv.store.path, produced={0: n})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), "{}")
    return {"scenario": f"exit: {how}", "returncode": proc.returncode,
            "want_returncode": EXIT_CODES[how], "pending_at_exit": json.loads(line).get(
                "pending"), "produced": n * _common.RECORDS_PER_TURN, "stored": audit.records,
            "duplicates": audit.duplicates, "problems": audit.problems, "exit_s": elapsed,
            "stderr": proc.stderr}


def kill_run(srv: ServerThread, tmp_path: Path, mode: str, sig: int, handler: str,
             turns: int = 15) -> dict[str, Any]:
    """Run LOOP_SCRIPT against a 150 ms/request server, signal it after ``turns`` turns,
    then replay the spool in a new process. Counts what the store had before and after."""
    import subprocess
    import sys

    from _delivery_helpers import child_env, replay_in_new_process, spool_files

    set_faults(srv, latency_ms=150, paths=["/sessions", "/traces", "/spans"])
    proc = subprocess.Popen([sys.executable, "-c", LOOP_SCRIPT, mode, handler],
                            env=child_env(tmp_path, srv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    finished = -1
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if re.fullmatch(r"done \d+\n?", line):
                finished = int(line.split()[1])
                if finished + 1 >= turns:
                    break
            assert time.monotonic() < deadline, "child too slow"
        proc.send_signal(sig)
        rest, child_err = proc.communicate(timeout=30)
        del child_err
        finished = max([finished, *(int(x.split()[1]) for x in rest.splitlines()
                                   if re.fullmatch(r"done \d+", x))])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    clear_faults(srv)
    produced = (finished + 1) * _common.RECORDS_PER_TURN
    before = audit_store(srv.store.path, users={0}).records
    spooled_files = len(spool_files(tmp_path))
    replay_in_new_process(tmp_path, srv)
    audit = audit_store(srv.store.path, produced={0: finished + 1})
    # Turn ``finished + 1`` may have been under way: count only what the program finished.
    complete = audit_store(srv.store.path, users={0})
    stored = min(produced, complete.records)
    return {"scenario": f"{'SIGKILL' if sig == 9 else 'SIGTERM'}"
                        f"{' + handler calling sys.exit' if handler == 'exit' else ''}",
            "mode": mode, "returncode": proc.returncode, "produced": produced,
            "stored_before_replay": min(before, produced), "spool_files": spooled_files,
            "stored": stored, "lost": produced - stored, "duplicates": audit.duplicates,
            "problems": [p for p in audit.problems if "missing" not in p],
            "missing": [p for p in audit.problems if "missing" in p]}
