"""Measure the reliability scenarios and print the RELIABILITY.md table.

    python -m tests.reliability.figures [--out FILE]      # GS_SOAK_SECONDS=60 by default

The tests in this folder assert the promises; this script reports the numbers. Each scenario
runs against its own dev server (in this process) and its own temporary spool and store.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _delivery_helpers import API_KEY

import galileo_sessions as gs
from galileo_sessions._store import Store
from galileo_sessions.server import ServerThread

from . import _common  # noqa: F401 - puts tests/ on sys.path
from ._scenarios import STATUS_FAULTS, exit_run, fault_run, kill_run, outage, restarts


def _with_server(fn: Callable[[ServerThread, Path], Any]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["GALILEO_SESSIONS_SPOOL_DIR"] = str(tmp_path / "spool")
        os.environ["GALILEO_SESSIONS_STORE"] = str(tmp_path / "local.db")
        store = Store(tmp_path / "server.db")
        srv = ServerThread(store, api_key=API_KEY).start()
        try:
            return fn(srv, tmp_path)
        finally:
            gs.shutdown(timeout=5)
            srv.stop()
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", help="also write the Markdown to this file")
    parser.add_argument("--soak-seconds", type=float, default=30.0,
                        help="length of the soak run (default 30)")
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("GALILEO_")]:
        del os.environ[name]
    rows: list[str] = []
    faults: list[tuple[str, dict[str, Any]]] = [
        *((n, {"faults": f}) for n, f in STATUS_FAULTS),
        ("read timeouts (0.5 s server, 0.25 s timeout)",
         {"faults": {"latency_ms": 500, "paths": ["/sessions", "/traces", "/spans"]},
          "options": {"read_timeout": 0.25}}),
        ("connection refused (1 s outage)", {"action": outage(1.0)}),
        ("server restarted 3 times", {"action": restarts(3), "run_s": 2.2}),
    ]
    for mode in ("fire_and_forget", "reliable"):
        base = _with_server(lambda s, t, m=mode: fault_run(s, t, m, "no fault"))
        rows.append(_fault_row(base, base))
        for name, kw in faults:
            out = _with_server(lambda s, t, m=mode, n=name, k=kw: fault_run(s, t, m, n, **k))
            rows.append(_fault_row(out, base))
        slow = _with_server(lambda s, t, m=mode: fault_run(
            s, t, m, "slow server (2 s/request)", faults={
                "latency_ms": 2000, "paths": ["/sessions", "/traces"]}, fault_s=3.0,
            hold_fault=True, run_s=1.0, users=1 if m == "reliable" else 2,
            max_turns=1 if m == "reliable" else 200, options={"read_timeout": 10.0}))
        rows.append(_fault_row(slow, base))
    err = _with_server(lambda s, t: fault_run(
        s, t, "reliable", "503 at 100% longer than reliable_timeout=0.8 s",
        faults={"status": 503, "rate": 1.0}, fault_s=60, run_s=0.1, users=2, max_turns=1,
        options={"reliable_timeout": 0.8}))
    rows.append(f"| {err.name} | reliable | DeliveryError only after reliable_timeout; record "
                f"kept in the spool | {err.delivery_errors} DeliveryError after "
                f"{', '.join(f'{x:.2f} s' for x in err.error_after_s)} |")
    life: list[str] = []
    for how in ("normal", "sys_exit", "exception", "asyncio"):
        r = _with_server(lambda s, t, h=how: exit_run(s, t, h))
        life.append(f"| exit with records pending: {how} | fire_and_forget | all records "
                    f"arrive; exit code is the program's | {r['stored']}/{r['produced']} "
                    f"stored ({r['pending_at_exit']} ops pending at exit), exit code "
                    f"{r['returncode']} (want {r['want_returncode']}), {r['exit_s']:.2f} s |")
    for mode, sig, handler in [("fire_and_forget", signal.SIGTERM, "exit"),
                               ("reliable", signal.SIGTERM, "exit"),
                               ("reliable", signal.SIGTERM, "default"),
                               ("fire_and_forget", signal.SIGTERM, "default"),
                               ("fire_and_forget", signal.SIGKILL, "default")]:
        r = _with_server(lambda s, t, m=mode, g=sig, h=handler: kill_run(s, t, m, g, h))
        promise = ("nothing lost" if handler == "exit" or mode == "reliable"
                   else "loses at most the unspooled queue (measured)")
        life.append(f"| {r['scenario']} (150 ms/request server) | {mode} | {promise} | "
                    f"{r['stored']}/{r['produced']} stored after replay "
                    f"({r['stored_before_replay']} before), lost {r['lost']}, "
                    f"duplicates {r['duplicates']}, exit code {r['returncode']} |")
    life.extend(_load_rows(args.soak_seconds))
    print(_table(rows, life))
    if args.out:
        Path(args.out).write_text(_table(rows, life) + "\n")


def _load_rows(soak_seconds: float) -> list[str]:
    """The concurrency, load and soak scenarios of ``test_load.py``, with their numbers."""
    import asyncio
    import tempfile

    from .test_load import soak, tasks_run, threads_run

    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        done, audit = threads_run(Path(tmp) / "threads")
        rows.append(f"| 32 threads, chained sessions, nested spans | local store | every chain and "
                    f"tree intact, nothing lost | {sum(done.values())} turns, {audit.records} "
                    f"records, {len(audit.problems)} problems, {audit.duplicates} duplicates |")
    with tempfile.TemporaryDirectory() as tmp:
        done, audit = asyncio.run(tasks_run(Path(tmp) / "tasks"))
        rows.append(f"| 1,000 asyncio tasks, chained sessions, nested async spans | local store "
                    f"| same | {sum(done.values())} turns, {audit.records} records, "
                    f"{len(audit.problems)} problems, {audit.duplicates} duplicates |")
    with tempfile.TemporaryDirectory() as tmp:
        r = soak(Path(tmp), soak_seconds)
        rows.append(f"| soak, {r['seconds']:.0f} s | local store | RSS flat after warm-up "
                    f"(< 40 MB growth) | {r['turns']:.0f} turns, {r['records']:.0f} records; "
                    f"RSS {r['rss_after_warmup_mb']:.1f} -> {r['rss_end_mb']:.1f} MB (max "
                    f"{r['rss_max_mb']:.1f}), growth after warm-up "
                    f"{r['growth_after_warmup_mb']:.1f} MB |")
    return rows


def _fault_row(o: Any, base: Any) -> str:
    if o.mode == "fire_and_forget":
        promise = "no loss, no duplicates, caller latency unaffected"
    else:
        promise = "no loss, no duplicates, caller waits through the fault"
    lat = o.latency
    return (f"| {o.name} | {o.mode} | {promise} | {o.stored}/{o.produced} stored, "
            f"dup {o.duplicates}, lost {o.lost}; p50 {lat['p50_ms']:.3f} ms "
            f"(base {base.latency['p50_ms']:.3f}), p99 {lat['p99_ms']:.2f} ms, max "
            f"{lat['max_ms']:.1f} ms; RSS +{o.rss_growth_mb:.1f} MB; {o.faults_injected} "
            f"faults, {o.retried} retried; delivered {o.deliver_s:.1f} s after the run |")


def _table(rows: list[str], life: list[str]) -> str:
    head = "| scenario | mode | promise | measured |\n|---|---|---|---|"
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, {platform.system()} {platform.release()}")
    return "\n".join([f"Machine: {machine}", "", "### Faults", "", head, *rows, "",
                      "### Process life", "", head, *life])


if __name__ == "__main__":
    sys.exit(main())
