"""Record ids: random UUID4 strings, or sequential ones under the test kit.

Galileo wants client-generated UUID4 ids on every trace and span (galileo-wire.md section 7), and
retries re-send them unchanged, which is what makes ingest idempotent. ``random.getrandbits``
from a private ``SystemRandom``-seeded generator is several times cheaper than ``uuid.uuid4()``
(which builds a ``UUID`` object from ``os.urandom``) and still gives 122 random bits in valid
version-4 form. The generator is re-seeded after ``fork`` so parent and child never collide.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

__all__ = ["new_id", "sequential_ids", "set_id_factory"]

_rng = random.Random(int.from_bytes(os.urandom(16), "big"))
_getrandbits = _rng.getrandbits

# Bits of a UUID4: version nibble 4 at bits 76-79, variant 0b10 at bits 62-63.
_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_SET = (0x4 << 76) | (0x2 << 62)


def _random_uuid4() -> str:
    h = "%032x" % ((_getrandbits(128) & _CLEAR) | _SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reseed() -> None:
    _rng.seed(int.from_bytes(os.urandom(16), "big"))


os.register_at_fork(after_in_child=_reseed)

new_id: Callable[[], str] = _random_uuid4
"""The current id factory; the test kit swaps it for ``sequential_ids()``."""


def set_id_factory(factory: Callable[[], str] | None) -> None:
    """Install ``factory`` as the id source (``None`` restores random UUID4s)."""
    global new_id
    new_id = factory or _random_uuid4


def sequential_ids() -> Callable[[], str]:
    """A factory of valid UUID4 strings 00000000-0000-4000-8000-000000000001, ...002, ..."""
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"00000000-0000-4000-8000-{counter:012d}"

    return next_id
