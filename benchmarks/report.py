"""The Markdown report and the PNG plot."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from .model import Row

__all__ = ["machine", "plot", "table", "write_report"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "OS": platform.platform(),
        "Python": sys.version.split()[0] + f" ({platform.python_implementation()})",
        "galileo-sessions": _version("galileo-sessions"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "httpx": _version("httpx"),
        "galileo (peer)": _version("galileo"),
        "langfuse (peer)": _version("langfuse"),
        "langsmith (peer)": _version("langsmith"),
        "load average (1/5/15 min)": load,
    }


def table(rows: Sequence[Row]) -> list[str]:
    """The results as a Markdown table."""
    out = ["| case | variant | per call / value (median) | spread | ratio (median [IQR]) "
           "| target | result | note |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r.case, r.variant, r.value, r.spread, r.ratio, r.target,
                 f"**{r.result}**" if r.result else "", r.note]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out


def write_report(path: Path, rows: Sequence[Row], *, command: str, info: dict[str, str],
                 notes: Sequence[str], elapsed_s: float, plot_name: str | None) -> None:
    checked = [r for r in rows if r.passed is not None]
    passed = sum(1 for r in checked if r.passed)
    lines = [
        "# galileo_sessions benchmark report",
        "",
        f"Command: `{command}` ({elapsed_s:.0f} s).",
        "",
        "Each per-call figure is the median over rounds of the mean time per call in that "
        "round; the spread is the interquartile range across rounds. Overhead ratio = "
        "(ours - plain) / (raw OTel - plain), computed per round from the same round's "
        "measurements, then the median [IQR] across rounds. Functions were interleaved within "
        "each round (rotating order), with `gc.collect()` before each.",
        "",
        f"**Targets: {passed} of {len(checked)} pass.**",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Results",
        "",
        *table(rows),
        "",
    ]
    if plot_name:
        lines += [f"![overhead]({plot_name})", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def plot(path: Path, rows: Sequence[Row]) -> bool:
    """Two panels: overhead vs raw OTel (per-call cases and peers), and ratios to the case's
    own baseline (pending growth, server down/slow). False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    over = [r for r in rows if r.plot is not None and "x of" not in r.ratio]
    own = [r for r in rows if r.plot is not None and "x of" in r.ratio]
    fig, axes = plt.subplots(1, 2, figsize=(15, max(4.0, 0.38 * max(len(over), len(own)) + 2)),
                             gridspec_kw={"width_ratios": [3, 2]})
    _panel(axes[0], over, "overhead ÷ raw OTel span overhead (lower is better)",
           lines=[(1.0, "raw OTel", "tab:gray"), (0.5, "target 0.5x", "tab:green")],
           log=any(r.plot is not None and r.plot.median > 5 for r in over))
    _panel(axes[1], own, "per-call cost ÷ the case's own baseline",
           lines=[(1.0, "baseline", "tab:gray"), (1.2, "target 1.2x", "tab:green")], log=False)
    fig.suptitle("galileo_sessions per-call overhead (median, IQR bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _panel(ax: object, rows: Sequence[Row], title: str, *,
           lines: Sequence[tuple[float, str, str]], log: bool) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    labels = [f"{r.case}: {r.variant}" for r in rows]
    med = [r.plot.median if r.plot else 0.0 for r in rows]
    low = [max(0.0, m - (r.plot.q1 if r.plot else m)) for m, r in zip(med, rows, strict=True)]
    high = [max(0.0, (r.plot.q3 if r.plot else m) - m) for m, r in zip(med, rows, strict=True)]
    colors = ["tab:blue" if "galileo_sessions" in r.variant or r.case in (
        "pending growth", "server down / slow") else "tab:orange" for r in rows]
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, med, xerr=[low, high], color=colors, capsize=3)
    ax.set_yticks(ys, labels, fontsize=8)
    for x, label, color in lines:
        ax.axvline(x, color=color, linestyle="--", linewidth=1, label=label)
    for y, m, h in zip(ys, med, high, strict=True):
        ax.text(m + h, y, f"  {m:.2f}", va="center", fontsize=7)
    if log:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
