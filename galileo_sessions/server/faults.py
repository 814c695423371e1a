"""Fault injection for the dev server: the failures a real Galileo deployment can show.

The library's reliability code (retries, Retry-After, spooling, reconnecting after a restart)
is only worth something if the tests can make the server misbehave on purpose. A
``FaultConfig`` says what to inject; a ``FaultInjector`` holds the current config, a seeded RNG
and the counters, and decides request by request. The decision is taken in one locked step so
that ``count`` and the RNG stay exact when requests arrive on several connections at once.

What a fault does to a request, in order: ``latency_ms`` delays every eligible request;
``drop_rate`` closes the connection of a write request without answering; ``status``/``rate``
answer a write request with that status before the store is touched. ``/_admin/*`` and
``/healthcheck`` are never faulted, so a test can always reconfigure and probe the server.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXEMPT_PREFIXES", "WRITE_METHODS", "FaultConfig", "FaultDecision", "FaultInjector"]

#: Methods that count as "write requests" for ``status`` and ``drop_rate``.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Path prefixes that are never faulted.
EXEMPT_PREFIXES = ("/_admin", "/healthcheck")


@dataclass
class FaultConfig:
    """What to inject. The default injects nothing.

    ``status``/``rate``: answer ``status`` for that fraction of write requests.
    ``latency_ms``: extra delay before every eligible request is handled (reads too).
    ``drop_rate``: fraction of write requests whose connection is closed with no response.
    ``retry_after``: seconds sent in ``Retry-After`` on injected 429/503 answers.
    ``paths``: only paths containing one of these substrings are eligible.
    ``count``: stop injecting status/drop faults after this many (latency is not counted).
    ``seed``: seed of the RNG, for runs that must repeat exactly.
    """

    status: int | None = None
    rate: float = 1.0
    latency_ms: float = 0.0
    drop_rate: float = 0.0
    retry_after: float | None = None
    paths: list[str] | None = None
    count: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        for name in ("rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.paths is not None:
            self.paths = list(self.paths)

    @property
    def active(self) -> bool:
        """True when this config can change any request."""
        return bool(
            self.latency_ms or self.drop_rate or (self.status is not None and self.rate)
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request."""

    delay_s: float = 0.0
    drop: bool = False
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


_NO_FAULT = FaultDecision()
_COUNTER_NAMES = ("eligible", "delayed", "dropped", "status_injected")


class FaultInjector:
    """Thread-safe holder of the current ``FaultConfig``, its RNG and the fault counters."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random()
        self._injected = 0
        self._counters = dict.fromkeys(_COUNTER_NAMES, 0)
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return dataclasses.replace(self._config)

    def configure(self, config: FaultConfig) -> None:
        """Replace the config; the RNG is reseeded and the ``count`` budget starts afresh."""
        with self._lock:
            self._config = dataclasses.replace(config)
            self._rng = random.Random(config.seed)
            self._injected = 0

    def reset(self) -> None:
        """Back to no faults, with zeroed counters."""
        self.configure(FaultConfig())
        with self._lock:
            self._counters = dict.fromkeys(_COUNTER_NAMES, 0)

    def counters(self) -> dict[str, int]:
        with self._lock:
            remaining = (
                None if self._config.count is None
                else max(0, self._config.count - self._injected)
            )
            return {**self._counters, "remaining": -1 if remaining is None else remaining}

    def decide(self, method: str, path: str) -> FaultDecision:
        """Draw the fate of one request."""
        if path.startswith(EXEMPT_PREFIXES):
            return _NO_FAULT
        with self._lock:
            cfg = self._config
            if not cfg.active:
                return _NO_FAULT
            if cfg.paths is not None and not any(p in path for p in cfg.paths):
                return _NO_FAULT
            self._counters["eligible"] += 1
            delay = cfg.latency_ms / 1000.0
            if delay:
                self._counters["delayed"] += 1
            budget_left = cfg.count is None or self._injected < cfg.count
            if method.upper() not in WRITE_METHODS or not budget_left:
                return FaultDecision(delay_s=delay)
            if cfg.drop_rate and self._rng.random() < cfg.drop_rate:
                self._injected += 1
                self._counters["dropped"] += 1
                return FaultDecision(delay_s=delay, drop=True)
            if cfg.status is not None and cfg.rate and self._rng.random() < cfg.rate:
                self._injected += 1
                self._counters["status_injected"] += 1
                headers: dict[str, str] = {}
                if cfg.retry_after is not None and cfg.status in (429, 503):
                    headers["Retry-After"] = _format_seconds(cfg.retry_after)
                return FaultDecision(delay_s=delay, status=cfg.status, headers=headers)
            return FaultDecision(delay_s=delay)


def _format_seconds(seconds: float) -> str:
    # Retry-After is an integer in RFC 9110; keep fractions only when given, for fast tests.
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
