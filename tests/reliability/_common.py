"""Shared pieces of the reliability suite: memory, latency statistics, a labelled workload and
a checker that reads a store and proves every chain and every tree intact.

The workload names its user and turn in every span's input (``label="user-3/turn-7"``), so the
checker can verify each stored span against its trace's session (external id and name) without
trusting any id bookkeeping of the library itself.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
if str(TESTS) not in sys.path:  # ``_delivery_helpers`` lives in tests/ (also for figures.py)
    sys.path.insert(0, str(TESTS))

import galileo_sessions as gs  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")
LABEL = re.compile(r"user-(\d+)/turn-(\d+)")


def rss_mb() -> float:
    """Resident set size of this process in MiB, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(values: list[float]) -> dict[str, float]:
    """Per-call latencies (seconds) as p50/p99/max in milliseconds."""
    return {"p50_ms": percentile(values, 50) * 1e3, "p99_ms": percentile(values, 99) * 1e3,
            "max_ms": max(values, default=0.0) * 1e3,
            "mean_ms": (statistics.fmean(values) * 1e3) if values else 0.0}


# --- the labelled workload --------------------------------------------------------------------

@gs.span(type="llm", model="test-model")
def call_model(label: str) -> dict[str, str]:
    return {"role": "assistant", "content": f"answer for {label}"}


@gs.span(type="tool")
def tool(label: str) -> str:
    return f"tool result for {label}"


@gs.span(type="agent")
def plan(label: str) -> str:
    tool(label)
    call_model(label)
    return "planned"


@gs.trace
def turn(label: str) -> str:
    plan(label)
    return "done"


@gs.span(type="llm", model="test-model")
async def acall_model(label: str) -> dict[str, str]:
    return {"role": "assistant", "content": f"answer for {label}"}


@gs.span(type="agent")
async def aplan(label: str) -> str:
    tool(label)
    await acall_model(label)
    return "planned"


@gs.trace
async def aturn(label: str) -> str:
    await aplan(label)
    return "done"


#: records per turn: 1 session + 1 trace + 3 spans (plan, tool, call_model)
RECORDS_PER_TURN = 5
SPANS_PER_TURN = 3


def run_turn(user: int, index: int) -> None:
    label = f"user-{user}/turn-{index}"
    with gs.session(f"turn-{index}", external_id=f"user-{user}"):
        turn(label)


async def arun_turn(user: int, index: int) -> None:
    label = f"user-{user}/turn-{index}"
    async with gs.session(f"turn-{index}", external_id=f"user-{user}"):
        await aturn(label)


# --- the checker ------------------------------------------------------------------------------

@dataclass
class Audit:
    """What a store holds for the labelled workload, and every inconsistency found."""

    sessions: int = 0
    traces: int = 0
    spans: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    turns: dict[tuple[int, int], str] = field(default_factory=dict)  # (user, turn) -> session

    @property
    def records(self) -> int:
        return self.sessions + self.traces + self.spans


def audit_store(path: Path | str, produced: dict[int, int] | None = None,
                users: set[int] | None = None) -> Audit:
    """Check the labelled workload in the store at ``path``.

    ``produced`` maps user -> number of turns the program finished (turns 0..n-1); when given,
    every one of them must be stored completely (session, trace, three spans). Only the users
    in ``users`` (default: those of ``produced``, else all) are looked at.
    """
    if users is None and produced is not None:
        users = set(produced)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        sessions = conn.execute(
            "SELECT id, name, external_id, previous_session_id FROM sessions").fetchall()
        records = conn.execute(
            "SELECT id, type, trace_id, parent_id, session_id, data FROM records").fetchall()
    finally:
        conn.close()
    audit = Audit()
    problems = audit.problems
    by_id: dict[str, tuple[str, str, str | None]] = {}
    seen_turns: dict[tuple[int, int], list[str]] = defaultdict(list)
    for sid, name, external_id, previous in sessions:
        by_id[sid] = (name, external_id, previous)
        m_user = re.fullmatch(r"user-(\d+)", external_id or "")
        m_turn = re.fullmatch(r"turn-(\d+)", name or "")
        if not (m_user and m_turn) or (users is not None and int(m_user[1]) not in users):
            continue  # warm-up or foreign sessions
        seen_turns[(int(m_user[1]), int(m_turn[1]))].append(sid)
    audit.sessions = sum(len(v) for v in seen_turns.values())
    for key, sids in seen_turns.items():
        if len(sids) > 1:
            audit.duplicates += len(sids) - 1
            problems.append(f"session {key} stored {len(sids)} times")
        audit.turns[key] = sids[0]
    # Chains: turn k of a user links to turn k-1 of the same user.
    for (user, index), sid in audit.turns.items():
        previous = by_id[sid][2]
        want = audit.turns.get((user, index - 1)) if index > 0 else None
        if index > 0 and want is None:
            continue  # the previous turn is missing: reported below as a loss
        if previous != want:
            problems.append(f"user-{user} turn-{index}: previous_session_id {previous} != {want}")
    # Trees: every span's label matches its trace's session; parents are in the same trace.
    rows = {r[0]: r for r in records}
    per_turn: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for rid, kind, trace_id, parent_id, session_id, data in records:
        body = json.loads(data)
        match = LABEL.search(str(body.get("input")))
        if match is None:
            if session_id in set(audit.turns.values()):
                problems.append(f"{kind} {rid} has no label")
            continue
        user, index = int(match[1]), int(match[2])
        if users is not None and user not in users:
            continue
        per_turn[(user, index)][kind] += 1
        if audit.turns.get((user, index)) != session_id:
            problems.append(f"{kind} {rid} of user-{user}/turn-{index} is in session "
                            f"{session_id}, not {audit.turns.get((user, index))}")
        if kind == "trace":
            audit.traces += 1
            if parent_id not in (None, ""):
                problems.append(f"trace {rid} has a parent {parent_id}")
            continue
        audit.spans += 1
        parent = rows.get(parent_id)
        if parent is None or parent[2] != trace_id:
            problems.append(f"span {rid} has parent {parent_id} outside its trace")
            continue
        parent_label = LABEL.search(str(json.loads(parent[5]).get("input")))
        if parent_label is None or (int(parent_label[1]), int(parent_label[2])) != (user, index):
            problems.append(f"span {rid} ({user}/{index}) under a parent of another turn")
        want_parent = {"agent": "trace", "tool": "agent", "llm": "agent"}.get(kind)
        if want_parent and parent[1] != want_parent:
            problems.append(f"{kind} span {rid} under a {parent[1]}")
    for key, kinds in per_turn.items():
        if kinds.get("trace", 0) > 1 or sum(v for k, v in kinds.items() if k != "trace") > 3:
            audit.duplicates += 1
            problems.append(f"turn {key} stored too many records: {dict(kinds)}")
    if produced is not None:
        for user, count in produced.items():
            for index in range(count):
                kinds = per_turn.get((user, index), {})
                if (user, index) not in audit.turns:
                    problems.append(f"session user-{user}/turn-{index} missing")
                if kinds.get("trace", 0) != 1 or sum(
                        v for k, v in kinds.items() if k != "trace") != SPANS_PER_TURN:
                    problems.append(f"records of user-{user}/turn-{index} missing: "
                                    f"{dict(kinds)}")
    return audit


def api_key_free(text: str, key: str) -> bool:
    return key not in text


def scan_texts_for(secret: str, texts: list[str]) -> list[str]:
    """The texts that contain ``secret`` (for a helpful failure message)."""
    return [t[:200] for t in texts if secret in t]


def any_json(obj: Any) -> str:
    return json.dumps(obj, default=repr)
