"""Peer SDKs side by side (the ``bench-peers`` extra): Galileo ``@log``, Langfuse ``@observe``,
LangSmith ``@traceable``, each with its documented decorator, pointed at a loopback server.

Galileo's SDK talks to our dev server (it speaks Galileo's API); Langfuse and LangSmith post
to ``LoopbackSink``, which answers ``200 {}`` to anything. Each peer is measured in the same
interleaved rounds as galileo_sessions, the plain function and the raw OTel span, so the
ratios compare like with like. A peer that is not installed becomes a note in the report.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .model import Row
from .servers import LoopbackSink
from .timing import Runner, async_runner, loop_runner, measure

__all__ = ["PEERS", "Peer", "peer_rows"]

#: Galileo's ``@log`` keeps consecutive top-level calls in one open trace until ``flush()``,
#: and its per-call cost grows with that trace (peers.md section 1), so it makes only this
#: fraction of each round's calls and its time is scaled up to match.
GALILEO_SHARE = 5


@dataclass
class Peer:
    """A peer SDK's decorated flavours of the benchmark functions."""

    name: str
    one: Callable[[int], int]
    three: Callable[[int], int]
    aone: Callable[[int], Awaitable[int]]
    flush: Callable[[], None]
    share: int = 1
    note: str = ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _galileo(dev_url: str, sink_url: str) -> Peer:
    os.environ.update(GALILEO_API_KEY="bench-key", GALILEO_CONSOLE_URL=dev_url,
                      GALILEO_API_URL=dev_url, GALILEO_PROJECT="bench-peers",
                      GALILEO_LOG_STREAM="bench-peers")
    from galileo import galileo_context, log

    @log
    def one(x: int) -> int:
        return x + 1

    @log(span_type="tool")
    def c(x: int) -> int:
        return x + 1

    @log
    def b(x: int) -> int:
        return c(x)

    @log
    def three(x: int) -> int:
        return b(x)

    @log
    async def aone(x: int) -> int:
        return x + 1

    def flush() -> None:
        galileo_context.flush()

    return Peer(f"galileo {_version('galileo')} @log", one, three, aone, flush,
                share=GALILEO_SHARE,
                note=f"flushed between rounds; open trace holds ≤ 1/{GALILEO_SHARE} of a "
                     "round's calls (cost grows with it)")


def _langfuse(dev_url: str, sink_url: str) -> Peer:
    os.environ.update(LANGFUSE_PUBLIC_KEY="pk-bench", LANGFUSE_SECRET_KEY="sk-bench",
                      LANGFUSE_HOST=sink_url, LANGFUSE_BASE_URL=sink_url)
    from langfuse import get_client, observe

    @observe
    def one(x: int) -> int:
        return x + 1

    @observe
    def c(x: int) -> int:
        return x + 1

    @observe
    def b(x: int) -> int:
        return c(x)

    @observe
    def three(x: int) -> int:
        return b(x)

    @observe
    async def aone(x: int) -> int:
        return x + 1

    client = get_client()
    return Peer(f"langfuse {_version('langfuse')} @observe", one, three, aone, client.flush)


def _langsmith(dev_url: str, sink_url: str) -> Peer:
    os.environ.update(LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=sink_url,
                      LANGSMITH_API_KEY="ls-bench", LANGSMITH_PROJECT="bench-peers")
    from langsmith import traceable
    from langsmith.run_trees import get_cached_client

    @traceable
    def one(x: int) -> int:
        return x + 1

    @traceable(run_type="tool")
    def c(x: int) -> int:
        return x + 1

    @traceable
    def b(x: int) -> int:
        return c(x)

    @traceable
    def three(x: int) -> int:
        return b(x)

    @traceable
    async def aone(x: int) -> int:
        return x + 1

    def flush() -> None:
        get_cached_client().flush(timeout=10.0)  # without a timeout it can wait forever

    return Peer(f"langsmith {_version('langsmith')} @traceable", one, three, aone, flush)


PEERS: dict[str, Callable[[str, str], Peer]] = {
    "galileo": _galileo,
    "langfuse": _langfuse,
    "langsmith": _langsmith,
}


def _scaled(runner: Runner, share: int) -> Runner:
    if share == 1:
        return runner

    def run(n: int) -> float:
        return runner(max(1, n // share)) * (n / max(1, n // share))

    return run


def _bounded_flush(peer: Peer, notes: list[str], timeout: float = 15.0) -> None:
    """``peer.flush()`` in a daemon thread, waited for at most ``timeout`` seconds."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            peer.flush()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        notes.append(f"{peer.name}: flush() did not return within {timeout:g} s")
    elif errors:
        notes.append(f"{peer.name}: flush() raised {errors[0]!r}")


def peer_rows(ctx: Any) -> list[Row]:
    """Side-by-side rows for every importable peer (and a note for the others)."""
    from . import cases

    rows: list[Row] = []
    peers: list[Peer] = []
    with LoopbackSink() as sink:
        for key, factory in PEERS.items():
            try:
                peers.append(factory(ctx.server.url, sink.url))
            except ImportError as exc:
                rows.append(Row("peers", key, "not installed",
                                note=f"pip install 'galileo-sessions[bench-peers]' ({exc.name})"))
            except Exception as exc:  # a peer failing to start must not sink the run
                rows.append(Row("peers", key, "could not start",
                                note=f"{type(exc).__name__}: {str(exc)[:120]}"))
        if not peers:
            return rows
        ctx.configure(ctx.server.url)
        otel = cases.otel_functions(ctx.otel.tracer)

        def settle() -> None:
            for peer in peers:
                _bounded_flush(peer, ctx.notes)
            ctx.settle()

        shapes: list[tuple[str, dict[str, Runner], str]] = [
            ("depth-1 sync",
             {"plain": loop_runner(cases.plain_1), "otel": loop_runner(otel["one"]),
              "ours": loop_runner(cases.gs_1),
              **{p.name: _scaled(loop_runner(p.one), p.share) for p in peers}}, ""),
            ("depth-3 sync",
             {"plain": loop_runner(cases.plain_3), "otel": loop_runner(otel["three"]),
              "ours": loop_runner(cases.gs_3),
              **{p.name: _scaled(loop_runner(p.three), p.share) for p in peers}}, ""),
            ("async",
             {"plain": async_runner(cases.aplain), "otel": async_runner(otel["aone"]),
              "ours": async_runner(cases.gs_async),
              **{p.name: _scaled(async_runner(p.aone), p.share) for p in peers}}, ""),
        ]
        for shape, runners, _ in shapes:
            samples = measure(runners, iterations=ctx.sizes.peer_iterations,
                              rounds=ctx.sizes.peer_rounds, warmup=50, between=settle)
            got = cases.overhead_rows(f"peers: {shape}", samples, ours="ours", plain="plain",
                                      otel="otel", target=None,
                                      extra=[(p.name, p.name) for p in peers])
            for row in got:
                for peer in peers:
                    if row.variant == peer.name:
                        row.note = peer.note
            rows.extend(got)
        rows.append(Row("peers", "loopback sink", f"{sink.hits:,} requests answered",
                        note="Langfuse and LangSmith post here; Galileo posts to the dev server"))
    return rows
