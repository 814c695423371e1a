"""Benchmark of the web view on a big local store: page render times, p50 and p95.

    python benchmarks/ui_bench.py            # 10,000 sessions, 1,000,000 spans
    python benchmarks/ui_bench.py --small    # 1,000 sessions, 100,000 spans
    python benchmarks/ui_bench.py --sessions 20 --spans 400 --repeat 3   # smoke test

How the store is filled: through the Store's own write methods, the same validated code path
the library and the dev server use: ``create_session`` once per session (chained per user
through ``previous_session_id``), then ``ingest_traces`` in big batches (a few hundred traces,
tens of thousands of records, per call and per SQLite transaction; each trace names its own
session). Nothing is written with hand-made SQL, so the store looks exactly like one filled by
real programs. A store already built with the same sizes is reused (``--store``, ``--rebuild``).

Then the web view runs on 127.0.0.1 (uvicorn in a thread) and each page is fetched over HTTP
``--repeat`` times: the session list (first and a deep page), filtered lists (name, external
id, metadata), session pages (random sessions with ~100 spans each) and search (a word in
many traces, and one in only a few). The output is a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from galileo_sessions._store import Store
from galileo_sessions.ui import UiServer

WORDS = ["order", "refund", "shipping", "warranty", "invoice", "account", "password",
         "delivery", "discount", "subscription", "upgrade", "cancel", "address", "payment",
         "tracking", "battery", "screen", "headphones", "charger", "laptop"]
ENV = {"logging_method": "python_client", "client_version": "bench", "reliable": False}
BATCH_RECORDS = 20_000


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _span(kind: str, name: str, t: datetime, dur_us: int, rng: random.Random, *,
          children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"type": kind, "name": name, "created_at": _ts(t),
                           "metrics": {"duration_ns": dur_us * 1000}, "status_code": 200}
    if kind == "llm":
        rec["input"] = [{"role": "system", "content": "You are a support agent."},
                        {"role": "user", "content": _text(rng, 20)}]
        rec["output"] = {"role": "assistant", "content": _text(rng, 30)}
        rec["model"] = "bench-model"
        rec["metrics"].update(num_input_tokens=rng.randint(50, 900),
                              num_output_tokens=rng.randint(10, 300))
    elif kind == "retriever":
        rec["input"] = _text(rng, 6)
        rec["output"] = [{"content": _text(rng, 25), "metadata": {"doc": str(i)}}
                         for i in range(3)]
    elif kind == "tool":
        rec["input"] = json.dumps({"query": _text(rng, 4)})
        rec["output"] = _text(rng, 12)
        if rng.random() < 0.03:
            rec["status_code"] = 500
            rec["user_metadata"] = {"error.type": "ToolError", "error.message": "timeout"}
    else:
        rec["input"] = _text(rng, 8)
        rec["output"] = _text(rng, 10)
    if children is not None:
        rec["spans"] = children
    return rec


def _trace(rng: random.Random, session_id: str, t: datetime, spans: int,
           marker: str | None) -> dict[str, Any]:
    """A trace holding exactly ``spans`` spans: agent steps of plan/retrieve/llm/tool."""
    kids: list[dict[str, Any]] = []
    left = spans - 1  # the agent span
    clock = t
    while left > 0:
        step: list[dict[str, Any]] = []
        for kind in ("retriever", "llm", "tool"):
            if left - 1 - len(step) <= 0:
                break
            dur = rng.randint(200, 900_000)
            step.append(_span(kind, f"{kind}_step", clock, dur, rng))
            clock += timedelta(microseconds=dur)
        total = int((clock - t).total_seconds() * 1e6) or 1
        kids.append(_span("workflow", "plan", t, total, rng, children=step))
        left -= 1 + len(step)
    agent_dur = int((clock - t).total_seconds() * 1e6) + 50
    agent = _span("agent", "support_agent", t, agent_dur, rng, children=kids)
    question = _text(rng, 12) + (f" {marker}" if marker else "")
    return {"type": "trace", "id": str(uuid.uuid4()), "name": "handle_turn",
            "session_id": session_id, "created_at": _ts(t), "input": question,
            "output": _text(rng, 40), "metrics": {"duration_ns": agent_dur * 1000 + 80_000},
            "status_code": 200, "spans": [agent]}


def build_store(path: Path, sessions: int, spans: int, *, seed: int = 7) -> dict[str, float]:
    """Fill ``path`` with ``sessions`` chained sessions holding ``spans`` spans in total."""
    rng = random.Random(seed)
    store = Store(path)
    started = time.perf_counter()
    try:
        pid, lsid = store.ensure_target("bench", "default")
        env = {**ENV, "log_stream_id": lsid}
        users = max(1, sessions // 10)
        last: dict[int, str] = {}
        ids: list[str] = []
        for i in range(sessions):
            user = i % users
            body = {**env, "name": f"support-turn-{i % 7}", "external_id": f"user-{user}",
                    "user_metadata": {"user": f"user-{user}",
                                      "plan": "pro" if user % 3 == 0 else "free",
                                      "channel": "chat"}}
            if user in last:
                body["previous_session_id"] = last[user]
            last[user] = store.create_session(pid, body)["id"]
            ids.append(last[user])
        t_sessions = time.perf_counter() - started

        per_session = max(1, spans // sessions)
        traces_per_session = max(1, min(4, per_session // 5))
        base = datetime(2026, 1, 1, tzinfo=timezone.utc)
        batch: list[dict[str, Any]] = []
        batch_records = 0
        written = 0
        for i, sid in enumerate(ids):
            budget = per_session if i < len(ids) - 1 else spans - written
            for k in range(traces_per_session):
                n = budget // traces_per_session + (1 if k < budget % traces_per_session else 0)
                if n < 2:
                    continue
                t = base + timedelta(minutes=i, seconds=k * 10)
                marker = "zebracorn" if i % max(1, sessions // 5) == 0 and k == 0 else None
                batch.append(_trace(rng, sid, t, n, marker))
                batch_records += n + 1
                written += n
                if batch_records >= BATCH_RECORDS:
                    store.ingest_traces(pid, {**env, "traces": batch})
                    batch, batch_records = [], 0
        if batch:
            store.ingest_traces(pid, {**env, "traces": batch})
        store.ensure_read_indexes()
        counts = store.counts()
    finally:
        store.close()
    total = time.perf_counter() - started
    return {"seconds": total, "sessions_seconds": t_sessions, **counts}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(url: str, pages: list[tuple[str, list[str]]], repeat: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for label, paths in pages:
            times: list[float] = []
            size = 0
            for i in range(max(repeat, 1)):
                path = paths[i % len(paths)]
                t0 = time.perf_counter()
                resp = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                if resp.status_code not in (200, 204):
                    raise SystemExit(f"{path}: HTTP {resp.status_code}")
                size = max(size, len(resp.content))
            rows.append((label, f"{statistics.median(times):.1f}",
                         f"{_percentile(times, 0.95):.1f}", f"{max(times):.1f}",
                         f"{size / 1024:.0f} KiB"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="1,000 sessions / 100,000 spans")
    p.add_argument("--sessions", type=int, default=None)
    p.add_argument("--spans", type=int, default=None)
    p.add_argument("--repeat", type=int, default=30, help="requests per page kind")
    p.add_argument("--store", default=None, help="store file (default: a temporary file)")
    p.add_argument("--rebuild", action="store_true", help="rebuild an existing --store")
    args = p.parse_args(argv)
    sessions = args.sessions or (1_000 if args.small else 10_000)
    spans = args.spans or (100_000 if args.small else 1_000_000)

    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        path = Path(args.store) if args.store else Path(tmp) / "store.db"
        if args.rebuild and path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        reuse = path.exists()
        if reuse:
            with _Opened(path) as store:
                counts = store.counts()
            print(f"reusing {path}: {counts}", file=sys.stderr)
        else:
            built = build_store(path, sessions, spans)
            print(f"built {path} in {built['seconds']:.1f} s (sessions "
                  f"{built['sessions_seconds']:.1f} s): {built['sessions']:,} sessions, "
                  f"{built['traces']:,} traces, {built['spans']:,} spans", file=sys.stderr)
            counts = {k: int(built[k]) for k in ("sessions", "traces", "spans")}

        with UiServer(path) as server:
            store = server.store
            store.ensure_read_indexes()
            page, _ = store.page_sessions(limit=200)
            rng = random.Random(1)
            sample = [s["id"] for s in page]
            deep = max(1, counts["sessions"] // 50 // 2)
            ext = page[0]["external_id"] or "user-1"
            session_paths = [f"/ui/sessions/{rng.choice(sample)}" for _ in range(10)]
            live = httpx.get(f"{server.url}{session_paths[0]}/live", timeout=60).json()
            pages = [
                ("session list, page 1", ["/"]),
                (f"session list, page {deep}", [f"/?page={deep}"]),
                ("list filtered by name", ["/?name=turn-3"]),
                ("list filtered by external id", [f"/?external_id={ext}"]),
                ("list filtered by metadata", ["/?meta=plan%3Dpro"]),
                ("session page (~100 spans)", session_paths),
                ("live poll (no change)", [f"{session_paths[0]}/live?v={live['version']}"]),
                ("search, common word", ["/ui/search?q=refund"]),
                ("search, rare word", ["/ui/search?q=zebracorn"]),
            ]
            # warm the caches (and the view's index check) once
            httpx.get(server.url + "/", timeout=60)
            rows = measure(server.url, pages, args.repeat)

    print(f"\nWeb view render times over HTTP on 127.0.0.1: {counts['sessions']:,} sessions, "
          f"{counts['traces']:,} traces, {counts['spans']:,} spans; {args.repeat} requests "
          "per page\n")
    print("| page | p50 ms | p95 ms | max ms | size |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


class _Opened:
    """``with _Opened(path) as store`` closes the store afterwards."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


if __name__ == "__main__":
    sys.exit(main())
