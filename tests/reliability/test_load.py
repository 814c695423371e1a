"""Concurrency and load: 32 threads and 1,000 asyncio tasks running per-user chained sessions
with nested spans for a bounded time; then every chain and every tree is checked record by
record (each span's input names its user and turn). A soak run checks that memory stays flat.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import galileo_sessions as gs

from ._common import arun_turn, audit_store, rss_mb, run_turn

pytestmark = pytest.mark.reliability


def _local(tmp_path: Path, **options: object) -> Path:
    store = tmp_path / "load.db"
    gs.configure(store=str(store), spool_dir=str(tmp_path / "spool"), flush_interval=0.05,
                 **options)  # type: ignore[arg-type]
    return store


def threads_run(tmp_path: Path) -> tuple[dict[int, int], Any]:
    """32 threads of chained turns for up to 3 s; returns turns per user and the audit."""
    store = _local(tmp_path)
    done = dict.fromkeys(range(32), 0)
    errors: list[BaseException] = []
    stop = time.monotonic() + 3.0

    def user(u: int) -> None:
        try:
            while time.monotonic() < stop and done[u] < 10:
                run_turn(u, done[u])
                done[u] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(u,)) for u in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert gs.flush(timeout=120).ok
    gs.shutdown(timeout=10)
    return done, audit_store(store, produced=done)


def test_32_threads_chained_sessions_intact(tmp_path: Path) -> None:
    done, audit = threads_run(tmp_path)
    print(f"32 threads: {sum(done.values())} turns, {audit.records} records")
    assert audit.problems == [], audit.problems[:10]
    assert audit.duplicates == 0
    assert audit.records == sum(done.values()) * 5 > 32 * 5


async def tasks_run(tmp_path: Path) -> tuple[dict[int, int], Any]:
    """1,000 asyncio tasks of chained turns; returns turns per user and the audit."""
    store = _local(tmp_path)
    done = dict.fromkeys(range(1000), 0)
    stop = time.monotonic() + 3.0

    async def user(u: int) -> None:
        while (time.monotonic() < stop and done[u] < 2) or done[u] == 0:
            await arun_turn(u, done[u])
            done[u] += 1
            await asyncio.sleep(0)

    await asyncio.gather(*(user(u) for u in range(1000)))
    result = await gs.aflush(timeout=120)
    assert result.ok, result
    gs.shutdown(timeout=10)
    return done, audit_store(store, produced=done)


async def test_1000_asyncio_tasks_chained_sessions_intact(tmp_path: Path) -> None:
    done, audit = await tasks_run(tmp_path)
    print(f"1000 tasks: {sum(done.values())} turns, {audit.records} records")
    assert audit.problems == [], audit.problems[:10]
    assert audit.duplicates == 0
    assert audit.records == sum(done.values()) * 5


def soak(tmp_path: Path, seconds: float) -> dict[str, float]:
    """Turns in a loop for ``seconds`` (4 threads); RSS sampled every 0.5 s."""
    store = _local(tmp_path)
    samples: list[float] = []
    done = dict.fromkeys(range(2), 0)
    stop = time.monotonic() + seconds

    def user(u: int) -> None:
        while time.monotonic() < stop:
            run_turn(u, done[u])
            done[u] += 1
            time.sleep(0.05)  # ~40 turns/s in all: what the local store ingests, sustained

    threads = [threading.Thread(target=user, args=(u,)) for u in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        samples.append(rss_mb())
        time.sleep(0.5)
    assert gs.flush(timeout=120).ok
    gs.shutdown(timeout=10)
    warm = samples[len(samples) // 4:]  # after warm-up (first quarter)
    audit = audit_store(store, produced=done)
    assert audit.problems == [], audit.problems[:5]
    return {"seconds": seconds, "turns": sum(done.values()), "records": audit.records,
            "rss_start_mb": samples[0], "rss_after_warmup_mb": warm[0],
            "rss_end_mb": warm[-1], "rss_max_mb": max(warm),
            "growth_after_warmup_mb": max(warm) - warm[0]}


@pytest.mark.slow
def test_soak_memory_stays_flat(tmp_path: Path) -> None:
    seconds = float(os.environ.get("GS_SOAK_SECONDS", "60"))
    result = soak(tmp_path, seconds)
    print(result)
    assert result["turns"] > 10 * seconds
    # Flat: after warm-up the RSS may wobble (allocator, SQLite page cache) but not grow with
    # the number of records (hundreds of thousands here).
    assert result["growth_after_warmup_mb"] < 40, result
