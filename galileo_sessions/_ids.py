"""Record ids: UUID4 strings that are cheap to make, or sequential ones under the test kit.

Galileo wants client-generated UUID4 ids on every trace and span (galileo-wire.md section 7),
and retries re-send them unchanged, which is what makes ingest idempotent. Ids must be unique,
not secret. Measured on the development machine, per id:

==========================  =======
``str(uuid.uuid4())``       2.5 µs
128 bits from getrandbits   0.66 µs
random prefix + counter     0.27 µs  (this module)
==========================  =======

Each process draws a random 74-bit prefix (the version and variant bits are fixed, so every
id is a valid version-4 UUID) and appends a 48-bit counter starting at a random offset. Two
processes collide only if their random prefixes do. The prefix is drawn again after ``fork``
and whenever the counter wraps, so parent and child never share ids.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable

__all__ = ["new_id", "sequential_ids", "set_id_factory"]

_COUNTER_MASK = (1 << 48) - 1
_lock = threading.Lock()
_prefix = ""
_next: Callable[[], int] = itertools.count().__next__
_limit = 0


def _draw_prefix() -> None:
    """A new random prefix and counter (at import, after fork, on wrap-around)."""
    global _prefix, _next, _limit
    bits = int.from_bytes(os.urandom(16), "big")
    bits = (bits & ~((0xF << 76) | (0x3 << 62))) | (0x4 << 76) | (0x2 << 62)
    text = f"{bits:032x}"
    start = int.from_bytes(os.urandom(5), "big")
    _next = itertools.count(start).__next__  # itertools.count is atomic under the GIL
    _limit = start + _COUNTER_MASK
    _prefix = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-"


def _counter_uuid4() -> str:
    value = _next()
    if value >= _limit:
        with _lock:
            if value >= _limit:
                _draw_prefix()
        return _counter_uuid4()
    return f"{_prefix}{value & _COUNTER_MASK:012x}"


_draw_prefix()
os.register_at_fork(after_in_child=_draw_prefix)

new_id: Callable[[], str] = _counter_uuid4
"""The current id factory; the test kit swaps it for ``sequential_ids()``."""


def set_id_factory(factory: Callable[[], str] | None) -> None:
    """Install ``factory`` as the id source (``None`` restores the default)."""
    global new_id
    new_id = factory or _counter_uuid4


def sequential_ids() -> Callable[[], str]:
    """A factory of valid UUID4 strings 00000000-0000-4000-8000-000000000001, ...002, ..."""
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"00000000-0000-4000-8000-{counter:012d}"

    return next_id
