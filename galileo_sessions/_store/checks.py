"""Typed checks that collect every problem in a request body instead of stopping at the first.

Why this exists: the dev server must answer ``422 {"detail": [...]}`` listing *all* problems
with their full paths, the way FastAPI/pydantic does, and the embedded exporter must refuse
exactly what the real API refuses. Pydantic is not a core dependency, so this is a small
hand-rolled equivalent: each check records a problem at a ``Loc`` and returns the cleaned
value (or ``None`` when the value was bad), so the caller can keep going and find more.

Messages name the field relative to the record being checked (``metrics.duration_ns must be
an integer, got str``) while ``loc`` carries the full path from ``body``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from galileo_sessions.exceptions import IngestValidationError

__all__ = ["MISSING", "Loc", "Problems", "canonical_time", "normalize_id", "now_iso"]

MISSING: Any = object()
"""Marks an absent key, so that ``null`` and "not given" stay distinct."""

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def now_iso() -> str:
    """The current UTC time in the store's canonical form (microseconds, ``Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_time(text: str) -> str | None:
    """Parse an ISO-8601 datetime; return it as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Naive times are taken as UTC (as the Galileo SDK means them). The canonical form sorts
    correctly as text, which is what the indexed ``created_at`` columns rely on.
    """
    m = _DATETIME.match(text)
    if m is None:
        return None
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError:
        return None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        moment -= offset if m.group(9) == "+" else -offset
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_id(value: str) -> str:
    """The canonical (lowercase, hyphenated) form of a UUID string; other text unchanged.

    Lookups use it so that an id sent in upper case or without hyphens still matches, while a
    non-UUID simply finds nothing.
    """
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return value


def type_name(value: Any) -> str:
    """The JSON-ish name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Loc:
    """A path into the body. ``base`` marks where the current record starts (for messages)."""

    parts: tuple[str | int, ...] = ("body",)
    base: int = 1

    def __truediv__(self, key: str | int) -> Loc:
        return Loc((*self.parts, key), self.base)

    def record(self) -> Loc:
        """The same path, now the root of a record: messages name fields relative to it."""
        return Loc(self.parts, len(self.parts))

    @property
    def name(self) -> str:
        rel = self.parts[self.base:] or self.parts[1:]
        return ".".join(str(p) for p in rel) or "body"


class Problems:
    """Collects problems; each ``check_*`` returns the cleaned value or ``None`` when bad."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, loc: Loc, msg: str, kind: str) -> None:
        self.items.append({"loc": list(loc.parts), "msg": msg, "type": kind})

    def raise_if_any(self) -> None:
        if self.items:
            raise IngestValidationError(list(self.items))

    # -- structure ---------------------------------------------------------------------------

    def obj(self, loc: Loc, value: Any) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return value
        self.add(loc, f"{loc.name} must be an object, got {type_name(value)}", "dict_type")
        return None

    def extra(self, loc: Loc, obj: Mapping[str, Any], allowed: Iterable[str]) -> None:
        allowed_set = set(allowed)
        for key in obj:
            if key not in allowed_set:
                where = loc / key
                self.add(where, f"{where.name}: extra fields not permitted", "extra_forbidden")

    def missing(self, loc: Loc) -> None:
        self.add(loc, f"{loc.name} is required", "missing")

    def lst(self, loc: Loc, value: Any, *, min_items: int = 0) -> list[Any] | None:
        if not isinstance(value, list):
            self.add(loc, f"{loc.name} must be a list, got {type_name(value)}", "list_type")
            return None
        if len(value) < min_items:
            self.add(loc, f"{loc.name} must have at least {min_items} item(s)", "too_short")
            return None
        return value

    # -- scalars -----------------------------------------------------------------------------

    def string(self, loc: Loc, value: Any, *, nullable: bool = False) -> str | None:
        if isinstance(value, str) or (nullable and value is None):
            return value
        self.add(loc, f"{loc.name} must be a string, got {type_name(value)}", "string_type")
        return None

    def integer(self, loc: Loc, value: Any, *, nullable: bool = True) -> int | None:
        if (isinstance(value, int) and not isinstance(value, bool)) or (
            nullable and value is None
        ):
            return value
        self.add(loc, f"{loc.name} must be an integer, got {type_name(value)}", "int_type")
        return None

    def number(self, loc: Loc, value: Any, *, nullable: bool = True) -> float | int | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # NaN and infinity are not JSON; the Galileo SDK sends them as null.
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value
        if nullable and value is None:
            return None
        self.add(loc, f"{loc.name} must be a number, got {type_name(value)}", "float_type")
        return None

    def boolean(self, loc: Loc, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        self.add(loc, f"{loc.name} must be true or false, got {type_name(value)}", "bool_type")
        return None

    def uuid(self, loc: Loc, value: Any, *, nullable: bool = True) -> str | None:
        if value is None and nullable:
            return None
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                self.add(loc, f"{loc.name} must be a UUID, got {_show(value)}", "uuid_parsing")
                return None
        self.add(loc, f"{loc.name} must be a UUID string, got {type_name(value)}", "uuid_type")
        return None

    def datetime(self, loc: Loc, value: Any) -> str | None:
        if not isinstance(value, str):
            self.add(loc, f"{loc.name} must be an ISO-8601 datetime string, got "
                          f"{type_name(value)}", "datetime_type")
            return None
        parsed = canonical_time(value)
        if parsed is None:
            self.add(loc, f"{loc.name} must be an ISO-8601 datetime such as "
                          f"2026-01-31T12:00:00.000000Z, got {_show(value)}", "datetime_parsing")
        return parsed

    def choice(self, loc: Loc, value: Any, choices: Iterable[str]) -> str | None:
        options = list(choices)
        if isinstance(value, str) and value in options:
            return value
        self.add(loc, f"{loc.name} must be one of {', '.join(options)}; got {_show(value)}",
                 "literal_error")
        return None

    # -- containers of scalars -----------------------------------------------------------------

    def str_map(self, loc: Loc, value: Any, *, nullable: bool = False) -> dict[str, str] | None:
        if value is None and nullable:
            return None
        obj = self.obj(loc, value)
        if obj is None:
            return None
        ok = True
        for key, item in obj.items():
            if not isinstance(item, str):
                where = loc / key
                self.add(where, f"{where.name} must be a string (metadata values are strings), "
                                f"got {type_name(item)}", "string_type")
                ok = False
        return dict(obj) if ok else None

    def str_list(self, loc: Loc, value: Any) -> list[str] | None:
        items = self.lst(loc, value)
        if items is None:
            return None
        ok = True
        for i, item in enumerate(items):
            ok = self.string(loc / i, item) is not None and ok
        return list(items) if ok else None
