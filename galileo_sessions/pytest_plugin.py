"""The pytest plugin of galileo_sessions: the ``gs_capture`` fixture.

Registered through the ``pytest11`` entry point, so it is loaded only by pytest and keeps
pytest out of ``galileo_sessions.testing`` (which users may import outside tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import Capture, capture

__all__ = ["gs_capture"]


@pytest.fixture
def gs_capture() -> Iterator[Capture]:
    """A ``Capture`` of everything the test sends, with deterministic ids and clock."""
    with capture() as cap:
        yield cap
