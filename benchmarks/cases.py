"""The benchmark cases of issue 6. Each case returns rows for the report table.

Per-call cases deliver fire-and-forget to the dev server running in a separate process
(``galileo-sessions serve``), so the caller pays for exactly what a user pays for: the
decorator, the record building, and the GIL it shares with the background worker.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import galileo_sessions as gs

from .model import Row, Sizes, fmt_ratio, fmt_us
from .servers import DevServer, dead_url
from .timing import Runner, Summary, async_runner, loop_runner, measure, ratios, summarize

__all__ = ["CASES", "Ctx", "rss_mb"]

OVERHEAD_TARGET = 0.5
DISABLED_TARGET = 0.05
GROWTH_TARGET = 1.2
SLOW_TARGET = 1.2
BURST_RSS_MB = 50.0
IMPORT_MS = 60.0
HEAVY = ("httpx", "sqlite3", "opentelemetry.sdk")


# -- context shared by the cases --------------------------------------------------------------

@dataclass
class Ctx:
    """Sizes, a scratch folder, the shared dev server and the raw-OTel baseline."""

    sizes: Sizes
    workdir: Path
    server: DevServer
    otel: OtelBaseline
    seq: int = 0
    notes: list[str] = field(default_factory=list)

    def configure(self, url: str, **options: Any) -> None:
        """Point the library at ``url`` (fire-and-forget), with a fresh spool folder."""
        self.seq += 1
        options.setdefault("shutdown_timeout", self.sizes.shutdown_timeout)
        gs.configure(api_url=url, api_key=None, store=str(self.workdir / "local.db"),
                     spool_dir=str(self.workdir / f"spool-{self.seq}"), **options)

    def settle(self) -> None:
        """Untimed, between rounds: let both background exporters catch up, so every round
        starts from empty queues (the OTel batch processor drops spans past 2048 queued)."""
        gs.flush(60.0)
        self.otel.provider.force_flush(10_000)


class OtelBaseline:
    """A raw OpenTelemetry SDK setup: own ``TracerProvider``, ``BatchSpanProcessor``, an
    exporter that drops everything. Never installed as the global provider."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class DropExporter(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

            def shutdown(self) -> None:
                return None

        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(DropExporter()))
        self.tracer = self.provider.get_tracer("benchmarks")

    def shutdown(self) -> None:
        self.provider.shutdown()


def rss_mb() -> float:
    """Resident set size of this process in MB (from /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024.0 * 1024.0)


# -- the measured functions --------------------------------------------------------------------
# Same work in each flavour: take x, return x + 1. ``gs_*`` capture inputs and outputs; the
# OTel baseline records the input and output as two string attributes.

def plain_1(x: int) -> int:
    return x + 1


def plain_3c(x: int) -> int:
    return x + 1


def plain_3b(x: int) -> int:
    return plain_3c(x)


def plain_3(x: int) -> int:
    return plain_3b(x)


async def aplain(x: int) -> int:
    return x + 1


def plain_gen(x: int) -> Iterator[str]:
    for i in range(10):
        yield f"tok{i} "


@gs.trace
def gs_1(x: int) -> int:
    return x + 1


@gs.span(type="tool")
def gs_3c(x: int) -> int:
    return x + 1


@gs.span
def gs_3b(x: int) -> int:
    return gs_3c(x)


@gs.trace
def gs_3(x: int) -> int:
    return gs_3b(x)


@gs.trace
async def gs_async(x: int) -> int:
    return x + 1


@gs.span(type="llm", model="bench-model")
def gs_gen(x: int) -> Iterator[str]:
    for i in range(10):
        yield f"tok{i} "


def otel_functions(tracer: Any) -> dict[str, Callable[..., Any]]:
    """The raw-OTel flavours, bound to ``tracer``."""

    def one(x: int) -> int:
        with tracer.start_as_current_span("f") as span:
            span.set_attribute("input", str(x))
            out = x + 1
            span.set_attribute("output", str(out))
            return out

    def three_c(x: int) -> int:
        with tracer.start_as_current_span("c") as span:
            span.set_attribute("input", str(x))
            out = x + 1
            span.set_attribute("output", str(out))
            return out

    def three_b(x: int) -> int:
        with tracer.start_as_current_span("b") as span:
            span.set_attribute("input", str(x))
            out = three_c(x)
            span.set_attribute("output", str(out))
            return out

    def three(x: int) -> int:
        with tracer.start_as_current_span("a") as span:
            span.set_attribute("input", str(x))
            out = three_b(x)
            span.set_attribute("output", str(out))
            return out

    async def aone(x: int) -> int:
        with tracer.start_as_current_span("f") as span:
            span.set_attribute("input", str(x))
            out = x + 1
            span.set_attribute("output", str(out))
            return out

    def gen(x: int) -> Iterator[str]:
        with tracer.start_as_current_span("stream") as span:
            span.set_attribute("input", str(x))
            parts = []
            for i in range(10):
                parts.append(f"tok{i} ")
                yield parts[-1]
            span.set_attribute("output", "".join(parts))

    return {"one": one, "three": three, "aone": aone, "gen": gen}


def gen_runner(fn: Callable[[int], Iterator[str]]) -> Runner:
    """Exhausts the 10-item stream ``fn(i)`` n times."""

    def run(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            for _ in fn(i):
                pass
        return time.perf_counter() - start

    return run


# -- the per-call comparisons --------------------------------------------------------------

def overhead_rows(case: str, samples: dict[str, list[float]], *, ours: str, plain: str,
                  otel: str, target: float | None, label: str = "galileo_sessions",
                  extra: Sequence[tuple[str, str]] = ()) -> list[Row]:
    """Rows: plain, raw OTel, ours (+ ``extra`` (key, label) runners), as overhead ratios."""
    p, o = samples[plain], samples[otel]
    rows = [
        Row(case, "plain function", fmt_us(summarize(p)), summarize(p).spread() + " µs",
            "baseline"),
        Row(case, "raw OTel SDK span", fmt_us(summarize(o)), summarize(o).spread() + " µs",
            "1.00x (by definition)"),
    ]
    for key, name in ((ours, label), *extra):
        if key not in samples:
            continue
        s = summarize(samples[key])
        r = summarize(ratios(samples[key], p, o))
        passed = None if target is None or key != ours else r.median <= target
        rows.append(Row(case, name, fmt_us(s), s.spread() + " µs", fmt_ratio(r),
                        "" if target is None or key != ours else f"≤ {target}x OTel overhead",
                        passed, plot=r))
    return rows


def case_depth1(ctx: Ctx) -> list[Row]:
    ctx.configure(ctx.server.url)
    o = otel_functions(ctx.otel.tracer)
    samples = measure({"plain": loop_runner(plain_1), "otel": loop_runner(o["one"]),
                       "ours": loop_runner(gs_1)},
                      iterations=ctx.sizes.iterations, rounds=ctx.sizes.rounds,
                      between=ctx.settle)
    return overhead_rows("depth-1 sync", samples, ours="ours", plain="plain", otel="otel",
                         target=OVERHEAD_TARGET)


def case_depth3(ctx: Ctx) -> list[Row]:
    ctx.configure(ctx.server.url)
    o = otel_functions(ctx.otel.tracer)
    samples = measure({"plain": loop_runner(plain_3), "otel": loop_runner(o["three"]),
                       "ours": loop_runner(gs_3)},
                      iterations=ctx.sizes.iterations, rounds=ctx.sizes.rounds,
                      between=ctx.settle)
    return overhead_rows("depth-3 sync", samples, ours="ours", plain="plain", otel="otel",
                         target=OVERHEAD_TARGET)


def case_async(ctx: Ctx) -> list[Row]:
    ctx.configure(ctx.server.url)
    o = otel_functions(ctx.otel.tracer)
    samples = measure({"plain": async_runner(aplain), "otel": async_runner(o["aone"]),
                       "ours": async_runner(gs_async)},
                      iterations=ctx.sizes.iterations, rounds=ctx.sizes.rounds,
                      between=ctx.settle)
    return overhead_rows("async", samples, ours="ours", plain="plain", otel="otel",
                         target=OVERHEAD_TARGET)


def case_generator(ctx: Ctx) -> list[Row]:
    ctx.configure(ctx.server.url)
    o = otel_functions(ctx.otel.tracer)
    samples = measure({"plain": gen_runner(plain_gen), "otel": gen_runner(o["gen"]),
                       "ours": gen_runner(gs_gen)},
                      iterations=ctx.sizes.gen_iterations, rounds=ctx.sizes.rounds,
                      between=ctx.settle)
    rows = overhead_rows("generator (10 items)", samples, ours="ours", plain="plain",
                         otel="otel", target=None, label="galileo_sessions (llm span)")
    rows[-1].note = "no target in the issue; shown for comparison"
    return rows


_DISABLED_SCRIPT = """
import os, statistics, sys, time
import galileo_sessions as gs
@gs.trace
def f(x): return x + 1
def g(x): return x + 1
n, rounds = int(sys.argv[1]), int(sys.argv[2])
out = []
for r in range(rounds):
    t = time.perf_counter()
    for i in range(n): g(i)
    p = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n): f(i)
    d = time.perf_counter() - t
    out.append((d - p) / n * 1e6)
print(statistics.median(out), min(out), max(out))
"""


def case_disabled(ctx: Ctx) -> list[Row]:
    gs.configure(enabled=False)
    o = otel_functions(ctx.otel.tracer)
    try:
        samples = measure({"plain": loop_runner(plain_1), "otel": loop_runner(o["one"]),
                           "ours": loop_runner(gs_1)},
                          iterations=ctx.sizes.iterations * 5, rounds=ctx.sizes.rounds)
    finally:
        ctx.configure(ctx.server.url)
    rows = overhead_rows("disabled", samples, ours="ours", plain="plain", otel="otel",
                         target=DISABLED_TARGET,
                         label="galileo_sessions, configure(enabled=False)")
    # The environment switch, in a fresh interpreter (no configure() call at all).
    env = {**os.environ, "GALILEO_SESSIONS_DISABLED": "1"}
    proc = subprocess.run([sys.executable, "-c", _DISABLED_SCRIPT,
                           str(ctx.sizes.iterations * 5), str(ctx.sizes.rounds)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    otel_over = statistics.median(samples["otel"]) - statistics.median(samples["plain"])
    if proc.returncode == 0:
        med, low, high = (float(v) for v in proc.stdout.split())
        ratio = med / otel_over if otel_over > 0 else float("inf")
        rows.append(Row("disabled", "galileo_sessions, GALILEO_SESSIONS_DISABLED=1 (subprocess)",
                        f"+{med:.3f} µs over plain", f"{low:.3f}-{high:.3f} µs (min-max)",
                        f"{ratio:.3f}x", f"≤ {DISABLED_TARGET}x OTel overhead",
                        ratio <= DISABLED_TARGET,
                        note="ratio to this run's in-process OTel overhead"))
    else:
        rows.append(Row("disabled", "GALILEO_SESSIONS_DISABLED=1 (subprocess)",
                        note=f"subprocess failed: {proc.stderr.strip()[-200:]}",
                        passed=False))
    return rows


def case_pending(ctx: Ctx) -> list[Row]:
    """Per-call cost with N records not yet sent: the worker is stuck on a server that
    answers after an hour, so everything after the first batch stays pending in memory."""
    sizes = ctx.sizes
    rows: list[Row] = []
    with DevServer(ctx.workdir / "pending.db", latency_ms=3_600_000) as stuck:
        ctx.configure(stuck.url, read_timeout=3600.0, max_queue_bytes=2_000_000_000)
        for i in range(200):  # warm up; starts the worker, which then blocks on the server
            gs_1(i)
        base: Summary | None = None
        for level in sizes.pending_levels:
            have = gs.stats()["pending"]
            for i in range(max(0, level - have)):
                gs_1(i)
            gc.collect()
            start_pending = gs.stats()["pending"]
            samples = measure({"plain": loop_runner(plain_1), "ours": loop_runner(gs_1)},
                              iterations=sizes.pending_calls, rounds=sizes.pending_rounds,
                              warmup=0)
            s = summarize(samples["ours"])
            if base is None:
                base = s
            r = summarize([v / base.median for v in samples["ours"]])
            last = level == sizes.pending_levels[-1]
            rows.append(Row(
                "pending growth", f"{level:,} pending (measured at {start_pending:,})",
                fmt_us(s), s.spread() + " µs", fmt_ratio(r, "x of 0 row"),
                f"≤ {GROWTH_TARGET}x of 0 row" if last else "",
                (r.median <= GROWTH_TARGET) if last else None, plot=r))
        st = gs.stats()
        rows[-1].note = (f"stats: pending {st['pending']:,}, dropped {st['dropped']:,}, "
                         f"spooled {st['spooled']:,}; RSS {rss_mb():.0f} MB")
        stuck.stop()
        ctx.configure(ctx.server.url, shutdown_timeout=0.5)  # drops the stuck pipeline
    return rows


class _PeakRss:
    """Samples RSS every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def case_burst(ctx: Ctx) -> list[Row]:
    n = ctx.sizes.burst_calls
    with DevServer(ctx.workdir / "burst.db") as server:
        ctx.configure(server.url)
        for i in range(100):
            gs_1(i)
        gs.flush(60)
        before_count = server.traces()
        gc.collect()
        rss_before = rss_mb()
        with _PeakRss() as peak:
            start = time.perf_counter()
            for i in range(n):
                gs_1(i)
            calls_s = time.perf_counter() - start
            rss_calls = rss_mb()
            result = gs.flush(600.0)
            total_s = time.perf_counter() - start
        gc.collect()
        rss_after = rss_mb()
        delivered = server.traces() - before_count
        late, waited = delivered, 0.0
        while late < n and waited < 30.0:  # untimed: does the rest arrive after flush()?
            time.sleep(1.0)
            waited += 1.0
            gs.flush(1.0)
            late = server.traces() - before_count
    growth = peak.peak - rss_before
    ok_count = delivered == n
    rows = [
        Row("burst", f"{n:,} calls, fire-and-forget to the dev server",
            f"{delivered:,}/{n:,} delivered", f"{n / calls_s:,.0f} calls/s",
            f"{delivered / n:.1%}", "100% delivered", ok_count,
            note=f"flush(600) returned after {total_s:.1f} s (from the first call): "
                 f"sent {result.sent}, pending {result.pending}, dropped {result.dropped}"
                 + ("" if late == delivered else
                    f"; {late:,} delivered {waited:.0f} s later")),
        Row("burst", "RSS", f"+{growth:.1f} MB peak", f"before {rss_before:.0f} MB, after calls "
            f"{rss_calls:.0f} MB, peak {peak.peak:.0f} MB, after flush {rss_after:.0f} MB",
            "", f"< {BURST_RSS_MB:.0f} MB growth", growth < BURST_RSS_MB),
    ]
    ctx.configure(ctx.server.url)
    return rows


def case_server_state(ctx: Ctx) -> list[Row]:
    """Per-call cost with the server up, down (nothing listening) and slow (200 ms)."""
    sizes = ctx.sizes
    with DevServer(ctx.workdir / "slow.db", latency_ms=200) as slow:
        urls = {"up": ctx.server.url, "down": dead_url(), "slow (200 ms)": slow.url}
        names = list(urls)
        per_call: dict[str, list[float]] = {k: [] for k in names}
        for r in range(sizes.block_rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                ctx.configure(urls[name], shutdown_timeout=0.5)
                loop_runner(gs_1)(100)  # warm up: the worker starts and meets the server
                time.sleep(0.05)
                gc.collect()
                per_call[name].append(loop_runner(gs_1)(sizes.block_calls)
                                      / sizes.block_calls * 1e6)
        rows: list[Row] = []
        for name in names:
            s = summarize(per_call[name])
            rel = summarize([a / b for a, b in zip(per_call[name], per_call["up"], strict=True)])
            up = name == "up"
            rows.append(Row("server down / slow", f"server {name}", fmt_us(s),
                            s.spread() + " µs", "baseline" if up else fmt_ratio(rel, "x of up"),
                            "" if up else f"≤ {SLOW_TARGET}x of up",
                            None if up else rel.median <= SLOW_TARGET,
                            plot=None if up else rel))
        # shutdown() with records still queued, bounded by its timeout.
        timeout = sizes.shutdown_timeout
        for name in names:
            ctx.configure(urls[name], shutdown_timeout=timeout)
            for i in range(sizes.block_calls):
                gs_1(i)
            start = time.perf_counter()
            result = gs.shutdown(timeout=timeout)
            took = time.perf_counter() - start
            limit = timeout * 1.05 + 0.05
            rows.append(Row("shutdown", f"shutdown({timeout:g}) after "
                            f"{sizes.block_calls:,} calls, server {name}", f"{took:.3f} s", "",
                            f"{took / timeout:.2f}x of timeout",
                            f"≤ timeout ({limit:.2f} s with scheduling slack)", took <= limit,
                            note=f"sent {result.sent}, pending {result.pending}, "
                                 f"failed {result.failed}, dropped {result.dropped}"))
    ctx.configure(ctx.server.url)
    return rows


def _bytecode_env() -> dict[str, str]:
    """The environment of an installed package: bytecode cached (``pip install`` compiles it;
    some sandboxes set ``PYTHONDONTWRITEBYTECODE``, which would time the compiler instead)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _precompile() -> None:
    import compileall

    import galileo_sessions

    compileall.compile_dir(os.path.dirname(galileo_sessions.__file__), quiet=1)


def _time_python(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_bytecode_env())
    return (time.perf_counter() - start) * 1000.0


def case_import(ctx: Ctx) -> list[Row]:
    codes = {"bare": "pass", "ours": "import galileo_sessions",
             "otel": "import opentelemetry.sdk.trace"}
    runs: dict[str, list[float]] = {k: [] for k in codes}
    names = list(codes)
    _precompile()
    for name in names:
        _time_python(codes[name])  # warm the file cache (and write any missing bytecode)
    for r in range(ctx.sizes.import_runs):
        for name in names[r % 3:] + names[:r % 3]:
            runs[name].append(_time_python(codes[name]))
    bare = summarize(runs["bare"])
    added = summarize([a - b for a, b in zip(runs["ours"], runs["bare"], strict=True)])
    otel_added = summarize([a - b for a, b in zip(runs["otel"], runs["bare"], strict=True)])
    check = subprocess.run(
        [sys.executable, "-c", "import json, sys, galileo_sessions; print(json.dumps("
         f"[m for m in {HEAVY!r} if m in sys.modules]))"],
        capture_output=True, text=True, check=True)
    loaded = json.loads(check.stdout)
    top = _import_offenders()
    return [
        Row("import", "bare interpreter (python -c pass)", f"{bare.median:.1f} ms",
            bare.spread(1) + " ms", "baseline"),
        Row("import", "import opentelemetry.sdk.trace", f"+{otel_added.median:.1f} ms",
            otel_added.spread(1) + " ms", f"{otel_added.median / bare.median:.2f}x of bare"),
        Row("import", "import galileo_sessions", f"+{added.median:.1f} ms",
            added.spread(1) + " ms", f"{added.median / bare.median:.2f}x of bare",
            f"< {IMPORT_MS:.0f} ms added", added.median < IMPORT_MS,
            note="slowest imports (-X importtime, cumulative): " + top),
        Row("import", "httpx / sqlite3 / opentelemetry.sdk after import",
            ", ".join(loaded) if loaded else "none loaded", "", "", "none loaded",
            not loaded),
    ]


def _import_offenders(limit: int = 5) -> str:
    """The modules with the largest cumulative import time under ``import galileo_sessions``
    (``-X importtime``; the profiler itself inflates the figures)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import galileo_sessions"],
                          capture_output=True, text=True, check=False, env=_bytecode_env())
    entries: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name != "galileo_sessions":
            entries.append((int(parts[1]), name))
    entries.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.1f} ms" for us, name in entries[:limit])


def case_ingest(ctx: Ctx) -> list[Row]:
    n = ctx.sizes.ingest_traces
    rows: list[Row] = []
    # The dev server, fed over HTTP by the library (depth-3 traces: 3 records each).
    with DevServer(ctx.workdir / "ingest.db") as server:
        ctx.configure(server.url)
        gs_3(0)
        gs.flush(60)
        before = server.traces()
        start = time.perf_counter()
        for i in range(n):
            gs_3(i)
        result = gs.flush(600.0)
        took = time.perf_counter() - start
        got = server.traces() - before
    rows.append(Row("ingest", "dev server, HTTP from the library", f"{got / took:,.0f} traces/s",
                    f"{got:,} depth-3 traces in {took:.2f} s", "", "",
                    note=f"flush: sent {result.sent}, pending {result.pending}"))
    # The local store, direct Store.ingest_traces of pre-built bodies.
    bodies = _captured_bodies(n)
    from galileo_sessions._store import Store

    for batch in (1, 100):
        store = Store(str(ctx.workdir / f"ingest-local-{batch}.db"))
        try:
            project_id, stream_id = store.ensure_target()
            grouped = _regroup(bodies, batch, stream_id)
            gc.collect()
            start = time.perf_counter()
            for body in grouped:
                store.ingest_traces(project_id, body)
            took = time.perf_counter() - start
            counted = store.counts()["traces"]
        finally:
            store.close()
        rows.append(Row("ingest", f"local store, Store.ingest_traces, {batch} trace(s)/body",
                        f"{counted / took:,.0f} traces/s",
                        f"{counted:,} depth-3 traces in {took:.2f} s", ""))
    ctx.configure(ctx.server.url)
    return rows


def _captured_bodies(n: int) -> list[dict[str, Any]]:
    with gs.testing.capture() as cap:
        for i in range(n):
            gs_3(i)
    return [r["body"] for r in cap.requests if r["route"] == "traces"]


def _regroup(bodies: list[dict[str, Any]], batch: int, stream_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(0, len(bodies), batch):
        chunk = bodies[k:k + batch]
        body = {**chunk[0], "log_stream_id": stream_id,
                "traces": [t for b in chunk for t in b["traces"]]}
        out.append(body)
    return out


def case_peers(ctx: Ctx) -> list[Row]:
    from .peers import peer_rows

    return peer_rows(ctx)


#: name -> case; the order of the report.
OTEL_BRIDGE_TARGET = 1.3  # issue 5: otel=True adds at most 1.3x one hand-made OTel span


def _configured_runner(ctx: Ctx, fn: Callable[[int], object], **options: Any) -> Runner:
    """A loop runner that first (untimed) configures the library with ``options``."""
    loop = loop_runner(fn)

    def run(n: int) -> float:
        ctx.configure(ctx.server.url, **options)
        return loop(n)

    return run


def case_otel(ctx: Ctx) -> list[Row]:
    """``configure(otel=True)``: the added cost with no SDK provider (must be ~0), then with
    the OTel baseline's provider installed as the global one (at most 1.3x a raw span)."""
    from opentelemetry import trace

    o = otel_functions(ctx.otel.tracer)
    plain, raw = loop_runner(plain_1), loop_runner(o["one"])
    no_provider = measure({"plain": plain, "otel": raw,
                           "ours": _configured_runner(ctx, gs_1, otel=False),
                           "bridged": _configured_runner(ctx, gs_1, otel=True)},
                          iterations=ctx.sizes.iterations, rounds=ctx.sizes.rounds,
                          between=ctx.settle)
    # From here on the baseline's provider is the process's global one (this runs last of
    # the per-call cases, before the peers, which may install providers of their own).
    if not isinstance(trace.get_tracer_provider(), type(ctx.otel.provider)):
        trace.set_tracer_provider(ctx.otel.provider)
    with_provider = measure({"plain": plain, "otel": raw,
                             "ours": _configured_runner(ctx, gs_1, otel=False),
                             "bridged": _configured_runner(ctx, gs_1, otel=True)},
                            iterations=ctx.sizes.iterations, rounds=ctx.sizes.rounds,
                            between=ctx.settle)
    ctx.configure(ctx.server.url)
    rows: list[Row] = []
    for label, samples, target in (("no SDK provider", no_provider, None),
                                   ("SDK provider", with_provider, OTEL_BRIDGE_TARGET)):
        # Per round: (bridged - otel=False) / (raw span - plain): the bridge's added cost in
        # units of one hand-made span's overhead.
        added = summarize([(b - o) / (r - p) for b, o, r, p in zip(
            samples["bridged"], samples["ours"], samples["otel"], samples["plain"], strict=True)])
        bridged = summarize(samples["bridged"])
        ok = None if target is None else added.median <= target
        for key, what in (("otel", "raw OTel SDK span"), ("ours", "galileo_sessions, otel=False")):
            s = summarize(samples[key])
            rows.append(Row("otel=True", f"{what}, {label}", fmt_us(s), s.spread() + " µs",
                            "baseline"))
        rows.append(Row("otel=True", f"added by the bridge, {label}", fmt_us(bridged),
                        bridged.spread() + " µs", fmt_ratio(added) + " of a raw span",
                        "" if target is None else f"≤ {target}x a raw OTel span", ok,
                        note="(bridged - otel=False) / (raw OTel span - plain)"))
    return rows


CASES: dict[str, Callable[[Ctx], list[Row]]] = {
    "depth1": case_depth1,
    "depth3": case_depth3,
    "async": case_async,
    "generator": case_generator,
    "disabled": case_disabled,
    "pending": case_pending,
    "burst": case_burst,
    "server": case_server_state,
    "import": case_import,
    "ingest": case_ingest,
    "otel": case_otel,
    "peers": case_peers,
}
