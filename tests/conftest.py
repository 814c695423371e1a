"""Shared fixtures. Every test gets its own store path and a clean runtime.

Internal errors are re-raised here (strict mode), so a library bug cannot hide behind the
production safety net that logs and carries on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import galileo_sessions as gs
from galileo_sessions import _internal, _runtime

_internal.strict = True

_ENV_VARS = [
    "GALILEO_API_KEY", "GALILEO_API_URL", "GALILEO_CONSOLE_URL", "GALILEO_PROJECT",
    "GALILEO_PROJECT_ID", "GALILEO_LOG_STREAM", "GALILEO_LOG_STREAM_ID", "GALILEO_EXPERIMENT_ID",
    "GALILEO_SESSIONS_MODE", "GALILEO_SESSIONS_CAPTURE", "GALILEO_SESSIONS_DISABLED",
    "GALILEO_SESSIONS_STORE", "GALILEO_SESSIONS_SPOOL_DIR", "GALILEO_EXTRA_HEADERS",
    "GALILEO_SESSIONS_OTEL",
]


@pytest.fixture(autouse=True)
def _isolated_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GALILEO_SESSIONS_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("GALILEO_SESSIONS_SPOOL_DIR", str(tmp_path / "spool"))
    _runtime.current = None
    yield
    gs.shutdown(timeout=5.0)
    _runtime.current = None


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return Path(os.environ["GALILEO_SESSIONS_STORE"])
