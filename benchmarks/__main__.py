"""``python -m benchmarks [--quick] [--out DIR] [--rounds N] [--only CASES]``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .cases import CASES, Ctx, OtelBaseline
from .model import Row, Sizes
from .report import machine, plot, write_report
from .servers import DevServer

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="galileo_sessions overhead benchmarks (issue 6)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (the smoke test): checks structure, not speed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="where report.md and overhead.png go (default benchmarks/out/)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds per per-call case (default 15, quick 3)")
    p.add_argument("--only", default="",
                   help="comma-separated cases: " + ",".join(CASES))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds is not None:
        sizes = dataclasses.replace(sizes, rounds=max(1, args.rounds))
    wanted = [c.strip() for c in args.only.split(",") if c.strip()] or list(CASES)
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}",
              file=sys.stderr)
        return 2
    # The library logs what it could not deliver; the benchmark reports it instead.
    logging.getLogger("galileo_sessions").setLevel(logging.CRITICAL)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks" + (" " + " ".join(sys.argv[1:]) if argv is None
                                        else " " + " ".join(argv)).rstrip()
    info = machine()
    started = time.perf_counter()
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="gs-bench-"))
    otel = OtelBaseline()
    try:
        with DevServer(workdir / "shared.db") as server:
            ctx = Ctx(sizes=sizes, workdir=workdir, server=server, otel=otel)
            for name in wanted:
                t0 = time.perf_counter()
                print(f"[bench] {name} …", file=sys.stderr, flush=True)
                try:
                    got = CASES[name](ctx)
                except Exception as exc:
                    traceback.print_exc()
                    got = [Row(name, "case failed", passed=False,
                               note=f"{type(exc).__name__}: {str(exc)[:200]}")]
                rows.extend(got)
                for row in got:
                    print(f"  {row.case:22} {row.variant[:48]:48} {row.value:>16} "
                          f"{row.ratio:>26} {row.result}", file=sys.stderr)
                print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr, flush=True)
                write_report(args.out / "report.md", rows, command=command, info=info,
                             notes=[*ctx.notes, f"partial report: running after {name}"],
                             elapsed_s=time.perf_counter() - started, plot_name=None)
            import galileo_sessions as gs

            gs.shutdown(timeout=2.0)
            notes = list(ctx.notes)
    finally:
        otel.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    load_end = machine()["load average (1/5/15 min)"]
    info["load average (1/5/15 min)"] += f" at start; {load_end} at end"
    if any(r.case == "peers" and r.value == "not installed" for r in rows):
        notes.append("peer SDKs not installed here: install the bench-peers extra "
                     "(pip install -e '.[bench,bench-peers]') for their side-by-side rows")
    png = args.out / "overhead.png"
    has_plot = plot(png, rows)
    if not has_plot:
        notes.append("matplotlib is not installed: no plot (pip install -e '.[bench]')")
    write_report(args.out / "report.md", rows, command=command, info=info, notes=notes,
                 elapsed_s=time.perf_counter() - started,
                 plot_name=png.name if has_plot else None)
    checked = [r for r in rows if r.passed is not None]
    failed = [r for r in checked if not r.passed]
    print(f"[bench] report: {args.out / 'report.md'}; targets {len(checked) - len(failed)}/"
          f"{len(checked)} pass", file=sys.stderr)
    for r in checked:
        print(f"  {r.result}  {r.case}: {r.variant}  {r.value}  {r.ratio}  ({r.target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
