"""Fixtures for the OpenTelemetry tests: a real SDK provider, global only inside the fixture.

OTel lets the global provider be set once per process; the fixture clears that flag on the
way in and out, so each test gets a fresh provider and tests outside these files run with
none (as users without OpenTelemetry do).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class OtelKit:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test-instrumentation")

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def by_name(self, name: str) -> Any:
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, [s.name for s in self.spans()]
        return matches[0]


def _reset_global() -> None:
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE._done = False


@pytest.fixture
def otel() -> Iterator[OtelKit]:
    """A fresh SDK provider with an in-memory exporter, installed as the global provider."""
    kit = OtelKit()
    _reset_global()
    trace.set_tracer_provider(kit.provider)
    try:
        yield kit
    finally:
        kit.provider.shutdown()
        _reset_global()


def strip_timing(record: Any) -> Any:
    """A record tree without the fields that depend on the clock."""
    if isinstance(record, list):
        return [strip_timing(r) for r in record]
    if not isinstance(record, dict):
        return record
    out = {k: strip_timing(v) for k, v in record.items() if k not in ("created_at", "_session_id")}
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = {k: v for k, v in out["metrics"].items() if k != "duration_ns"}
    return out
