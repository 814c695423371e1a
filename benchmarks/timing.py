"""Interleaved, GC-neutral timing: each round runs every runner once, in a rotating order."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Runner", "Summary", "loop_runner", "measure", "ratios", "summarize"]

#: A runner makes ``n`` calls and returns the elapsed seconds.
Runner = Callable[[int], float]


@dataclass(frozen=True)
class Summary:
    """Median and spread of a list of samples."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    n: int

    def spread(self, digits: int = 2) -> str:
        """``IQR q1-q3`` as text."""
        return f"{self.q1:.{digits}f}-{self.q3:.{digits}f}"


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles and min-max of ``samples`` (at least one)."""
    values = sorted(samples)
    if len(values) == 1:
        v = values[0]
        return Summary(v, v, v, v, v, 1)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(statistics.median(values), q1, q3, values[0], values[-1], len(values))


def loop_runner(fn: Callable[[int], object]) -> Runner:
    """A runner calling ``fn(i)`` for ``i`` in ``range(n)``."""

    def run(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        return time.perf_counter() - start

    return run


def async_runner(fn: Callable[[int], Awaitable[object]]) -> Runner:
    """Awaits ``fn(i)`` n times inside one event loop; only the loop body is timed."""

    def run(n: int) -> float:
        async def body() -> float:
            start = time.perf_counter()
            for i in range(n):
                await fn(i)
            return time.perf_counter() - start

        return asyncio.run(body())

    return run


def measure(runners: Mapping[str, Runner], *, iterations: int, rounds: int,
            warmup: int = 200, between: Callable[[], None] | None = None,
            ) -> dict[str, list[float]]:
    """Per-call microseconds of each runner, one sample per round.

    Each round runs every runner for ``iterations`` calls; the order rotates from round to
    round so no runner always goes first. ``gc.collect()`` runs before each runner, and GC is
    left enabled (the libraries' garbage is part of their cost). ``between`` runs after each
    round, untimed (a flush, for instance).
    """
    names = list(runners)
    for name in names:
        runners[name](warmup)
    if between is not None:
        between()
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            gc.collect()
            elapsed = runners[name](iterations)
            out[name].append(elapsed / iterations * 1e6)
        if between is not None:
            between()
    return out


def ratios(ours: Sequence[float], plain: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-round overhead ratio ``(ours - plain) / (base - plain)``."""
    out: list[float] = []
    for o, p, b in zip(ours, plain, base, strict=True):
        denom = b - p
        out.append((o - p) / denom if denom > 0 else float("inf"))
    return out
