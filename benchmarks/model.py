"""What a case produces: rows of the report table."""

from __future__ import annotations

from dataclasses import dataclass, field

from .timing import Summary

__all__ = ["Row", "Sizes", "fmt_ratio", "fmt_us"]


@dataclass(frozen=True)
class Sizes:
    """How much work each case does; ``--quick`` shrinks everything for the smoke test."""

    rounds: int = 12
    iterations: int = 3000
    gen_iterations: int = 1500
    pending_levels: tuple[int, ...] = (0, 1_000, 10_000, 100_000)
    pending_calls: int = 300
    pending_rounds: int = 7
    burst_calls: int = 100_000
    block_calls: int = 2000
    block_rounds: int = 5
    import_runs: int = 15
    ingest_traces: int = 5000
    peer_iterations: int = 500
    peer_rounds: int = 5
    shutdown_timeout: float = 2.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(rounds=3, iterations=300, gen_iterations=100,
                   pending_levels=(0, 100, 1_000), pending_calls=50, pending_rounds=3,
                   burst_calls=1000, block_calls=100, block_rounds=2, import_runs=3,
                   ingest_traces=200, peer_iterations=100, peer_rounds=3,
                   shutdown_timeout=0.5)


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is the case's figure of merit against its baseline (an overhead ratio, or a
    ratio to the case's first row); ``plot`` is what the overhead chart shows, if anything.
    """

    case: str
    variant: str
    value: str = ""
    spread: str = ""
    ratio: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""
    plot: Summary | None = field(default=None, repr=False)

    @property
    def result(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def fmt_us(s: Summary) -> str:
    return f"{s.median:.2f} µs"


def fmt_ratio(s: Summary, suffix: str = "x") -> str:
    return f"{s.median:.2f}{suffix} [{s.q1:.2f}-{s.q3:.2f}]"
