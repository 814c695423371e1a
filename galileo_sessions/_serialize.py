"""Safe, size-bounded JSON for arbitrary Python values.

Why this module exists: the decorators record the arguments and the return value of every
decorated call, and those are whatever the user's agent passes around: dataclasses, pydantic
models, bytes, sets, numpy arrays, generators, objects whose ``repr`` raises, self-referencing
graphs, multi-megabyte strings. Recording them must never fail, change or noticeably slow the
user's call, and what we send must be something Galileo accepts. So every public function here:

* never raises: an odd object becomes a best-effort JSON form or a placeholder such as
  ``"<Foo object>"``, ``"<cycle>"`` or ``"<generator make_tokens>"``; nothing is consumed
  (iterators and generators are never iterated) and nothing is pickled or deep-copied;
* returns text that is valid *strict* JSON (``NaN`` and infinities become the strings ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``), encodable as UTF-8 (lone surrogates become U+FFFD) and at
  most ``max_bytes`` UTF-8 bytes long;
* is fast in the common case: one C-level ``json`` encode plus a size check. The careful
  recursive walk runs only when that fails (cycles, NaN, surrogates, odd dict keys, a failing
  conversion) or the text is too big, and its work is then bounded by ``max_bytes`` rather than
  by the size of the value.

Truncation. What is cut carries ``TRUNCATION_MARKER`` (``"\u2026[truncated]"``) verbatim, so
``TRUNCATION_MARKER in text`` tells whether something was left out (only a piece cut to less
than about 25 bytes may get a bare ``"\u2026"`` instead):

* a long string keeps its start: ``"abc\u2026[truncated] 99000 more chars"`` (``bytes``
  values count ``bytes``); when space is short the count goes, then the marker is just
  ``"\u2026"``, and below 5 bytes the string is ``""``;
* a list keeps its first items, then ``"\u2026[truncated] 12 more items"`` (or just
  ``"\u2026[truncated]"`` when that lets an item more be shown where none would be);
* a dict keeps its first keys, then the key ``"\u2026[truncated]"`` with the value
  ``"12 more keys"`` (or the number ``12``, in the same tight case);
* nesting deeper than ``MAX_DEPTH`` becomes ``"\u2026[truncated] deeper than 32 levels"``;
* when even a container's marker does not fit (under about 20 bytes), the result is a JSON
  *string* holding the start of the full JSON text plus the marker; under 2 bytes, where no
  truncated JSON value exists, the result is ``""`` (empty text: the one case that is not valid
  JSON; a value whose full JSON fits, like ``5``, is still returned).

The space is shared fairly: values that fit in an equal share are kept whole, bigger ones are
cut to the share (water-filling), and entries are dropped from the end only when each kept one
could not get a minimal useful share (1/16 of the space, between 24 and 256 bytes).

Plain JSON data that the C encoder accepts is returned exactly (no depth limit is applied to it);
the depth cut, key stringification and placeholders apply to everything else. A cycle is cut
where it is detected: through plain containers on the fast path that can be one level later than
in :func:`jsonable`, which sees every ancestor (tracking them there would cost every call).

Timings (CPython 3.11.7, this container, ``timeit`` best of 5, per call):

    to_text("hello", 100_000)                                0.14 us
    arguments_text({"q": "hi", "k": 3}, 100_000)             1.3 us
    to_json_text({"q": "hi", "k": 3}, 100_000)               1.3 us
    to_text({"answer": "hi", "n": 1}, 100_000)               1.4 us
    arguments_text({"when": datetime, "id": UUID}, 100_000)  5.0 us  (conversion hook)
    to_json_text(["x" * 1000] * 20, 100_000)                 42 us   (as fast as json.dumps)
    to_text(1 MB str, 100_000)                               0.12-0.24 ms  (cut)
    to_json_text(1 MB str, 100_000)                          1.0-1.2 ms    (slow path, cut)
    to_json_text(list of 1M ints, 100_000)                   23 ms   (slow path, cut)
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import json
import json.encoder
import math
import re
import types
import uuid
from collections import deque
from collections.abc import (
    AsyncIterator,
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    Set,
    ValuesView,
)
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Final, cast

__all__ = [
    "MAX_DEPTH",
    "TRUNCATION_MARKER",
    "arguments_text",
    "jsonable",
    "metadata_text",
    "to_json_text",
    "to_text",
]

TRUNCATION_MARKER: Final = "\u2026[truncated]"
"""Verbatim in every value that was cut (see the module docstring for the forms)."""

MAX_DEPTH: Final = 32
"""Containers and objects nested deeper than this are replaced by a placeholder."""

_ELLIPSIS: Final = "\u2026"
_CYCLE: Final = "<cycle>"
_TOO_DEEP: Final = f"{TRUNCATION_MARKER} deeper than {MAX_DEPTH} levels"
_MIN_SHARE: Final = 24  # smallest share of space given to a string or container that is cut
_USEFUL_SHARE: Final = 256  # see _fit_container
_CHUNK: Final = 512  # see _escaped_sizes
_MIN_KEEP: Final = 8  # prefer a shorter marker to showing fewer than this many characters
_KEY_CAP: Final = 256  # dict keys longer than this (in bytes) are cut when a dict is shrunk
_SHORT_CUT: Final = 256  # string length kept once the walk's byte budget is used up
_SET_SORT_LIMIT: Final = 10_000  # sets up to this size are sorted (stable output) when possible
_B64_BYTES: Final = 48  # bytes shown (base64) in the placeholder of non-UTF-8 bytes
_HOOK_NODES: Final = 100_000  # node budget for converting one odd object on the fast path
_JSONABLE_NODES: Final = 2_000_000  # node budget of jsonable(): guards against DAG "bombs"
_UNBOUNDED: Final = 1 << 62
_SMALL_INT: Final = 1 << 60
_INF: Final = float("inf")
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_MARKER_KEY: Final = json.encoder.encode_basestring(TRUNCATION_MARKER)

_encode_str: Callable[[str], str] = json.encoder.encode_basestring
_plain_dumps: Callable[[object], str] = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode

_FUNCTION_TYPES: Final = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
)


# --------------------------------------------------------------------------------------------
# Public API


def jsonable(value: object) -> object:
    """Best-effort conversion of ``value`` to plain JSON data; never raises.

    The result is built from ``dict`` (``str`` keys), ``list``, ``str``, ``int``, finite
    ``float``, ``bool`` and ``None``, and ``json.dumps(result, allow_nan=False)`` succeeds.
    """
    try:
        walker = _Walker(_UNBOUNDED, _UNBOUNDED, _JSONABLE_NODES)
        out = walker.convert(value, 0)
        return _materialize(out) if walker.cuts else out
    except Exception:
        return _placeholder(type(value))


def to_json_text(value: object, max_bytes: int) -> str:
    """Compact JSON text for ``value``: valid JSON, UTF-8 encodable, at most ``max_bytes``.

    Larger forms are cut as described in the module docstring. Never raises.
    """
    try:
        if not _obviously_too_big(value, max_bytes):
            try:
                text = _fast_encode(value)
            except Exception:  # cycles, NaN, odd keys, depth, a hook that gave up
                pass
            else:
                if text.isascii():
                    if len(text) <= max_bytes:
                        return text
                elif _fits(text, max_bytes):  # also rejects lone surrogates
                    return text
        text = _slow_json(value, max_bytes)
        if _fits(text, max_bytes):
            return text
    except Exception:
        pass
    return _emergency(max_bytes)


def to_text(value: object, max_bytes: int) -> str:
    """Text for an output: a ``str`` as is, ``None`` as ``""``, anything else as JSON.

    A string longer than ``max_bytes`` UTF-8 bytes keeps its start (cut at a character
    boundary) followed by the marker; lone surrogates are replaced. Never raises.
    """
    try:
        t = type(value)
        if t is str or (value is not None and issubclass(t, str)):  # not isinstance: no __class__
            text = cast(str, value) if t is str else str.__str__(cast(str, value))
            if text.isascii() and len(text) <= max_bytes:
                return text
            return _cut_text(text, max_bytes)
        if value is None:
            return ""
        if t is int and max_bytes >= 20 and -_SMALL_INT < cast(int, value) < _SMALL_INT:
            return int.__repr__(cast(int, value))  # its JSON text, without the encoder's setup
        return to_json_text(value, max_bytes)
    except Exception:
        return ""


def metadata_text(value: object, max_bytes: int) -> str:
    """A metadata key or value: ``str(value)`` (a ``str`` as is), UTF-8 encodable (lone
    surrogates replaced) and cut to ``max_bytes`` like :func:`to_text`. Never raises: a
    ``__str__`` that raises gives a placeholder such as ``"<Foo object>"``."""
    if type(value) is str and value.isascii() and len(value) <= max_bytes:
        return value
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = _placeholder(type(value))
    return to_text(text, max_bytes)


def arguments_text(arguments: dict[str, object], max_bytes: int) -> str:
    """The bound arguments of a call as a JSON object string, e.g. ``{"q":"first","k":3}``.

    Same guarantees as :func:`to_json_text`; the result is a JSON object whenever
    ``max_bytes`` leaves room for one (about 21 bytes).
    """
    return to_json_text(arguments, max_bytes)


# --------------------------------------------------------------------------------------------
# Fast path


def _hook(obj: object) -> object:
    """``default`` hook of the fast path: convert one odd object, or give up (raise)."""
    walker = _Walker(_UNBOUNDED, _UNBOUNDED, _HOOK_NODES)
    out = walker.convert(obj, 0)
    if walker.cuts:
        raise ValueError("too large for the fast path")
    return out


_fallback_encode: Callable[[object], str] = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_hook
).encode


def _c_encode(value: object) -> str:
    """``json.dumps`` with our options and hook, minus the per-call Python overhead."""
    if type(value) is str:
        return _encode_str(value)
    # A fresh encoder per call: its `markers` dict (cycle detection) is not thread-safe.
    encoder = _c_factory({}, _hook, _encode_str, None, ":", ",", False, False, False)
    return "".join(encoder(value, 0))


_fast_encode: Callable[[object], str] = _fallback_encode
try:  # the C encoder's constructor is private API: check it once, else use the public one
    _c_factory: Callable[..., Callable[[object, int], Iterable[str]]]
    _c_factory = vars(json.encoder)["c_make_encoder"]  # None without the C accelerator
    if _c_encode({"a": [1, 2.5, None, "\u00e9"]}) == '{"a":[1,2.5,null,"\u00e9"]}':
        _fast_encode = _c_encode
except Exception:
    pass


def _obviously_too_big(value: object, max_bytes: int) -> bool:
    """True when the full JSON of ``value`` cannot fit: skip the fast path's wasted encode."""
    t = type(value)
    if t is str:
        return len(value) > max_bytes  # type: ignore[arg-type]
    if t is list or t is tuple:
        return 2 * len(value) > max_bytes + 1  # type: ignore[arg-type]  # "1," per item
    if t is dict:
        return 6 * len(value) > max_bytes + 1  # type: ignore[arg-type]  # '"":0,' per key
    return False


def _fits(text: str, max_bytes: int) -> bool:
    if text.isascii():
        return len(text) <= max_bytes
    if len(text) > max_bytes:
        return False
    try:
        return len(text.encode("utf-8")) <= max_bytes
    except UnicodeEncodeError:  # lone surrogates
        return False


def _emergency(max_bytes: int) -> str:
    for candidate in (_MARKER_KEY, f'"{_ELLIPSIS}"', '""'):
        if _blen(candidate) <= max_bytes:
            return candidate
    return ""


# --------------------------------------------------------------------------------------------
# Careful walk


class _CutStr(str):
    """A string kept only in part: ``omitted`` more ``unit`` (chars or bytes) followed."""

    omitted: int
    unit: str


class _CutList(list[object]):
    """A list that lost ``omitted`` trailing items, or has a cut somewhere inside."""

    __slots__ = ("omitted",)
    omitted: int


class _CutDict(dict[str, object]):
    """A dict that lost ``omitted`` trailing keys, or has a cut somewhere inside."""

    __slots__ = ("omitted",)
    omitted: int


_SHRINKABLE: Final = frozenset({str, _CutStr, list, _CutList, dict, _CutDict})


def _cut_str(text: str, omitted: int, unit: str) -> _CutStr:
    out = _CutStr(text)
    out.omitted = omitted
    out.unit = unit
    return out


def _clean(text: str) -> str:
    """``text`` made encodable as UTF-8: valid surrogate pairs joined, lone ones -> U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _name_of(obj: object) -> str:
    try:
        name = getattr(obj, "__qualname__", None)
        if not isinstance(name, str):
            name = getattr(obj, "__name__", None)
        if isinstance(name, str):
            return _clean(str.__str__(name))
    except Exception:
        pass
    return "?"


def _placeholder(cls: type) -> str:
    return f"<{_name_of(cls)} object>"


def _float(value: float) -> object:
    if math.isnan(value):
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return value


def _min_cost(value: object) -> int:
    """Fewest bytes the shrinking step may need to show ``value`` (for the walk's budget)."""
    t = type(value)
    if t is str or t is _CutStr:
        return min(len(value), _MIN_SHARE) + 2  # type: ignore[arg-type]
    if t is int:
        return len(int.__repr__(value))
    if t is float:
        return len(float.__repr__(value))
    if value is None or t is bool:
        return 4
    return _MIN_SHARE if value else 2


class _Walker:
    """One conversion: cycle tracking plus the budgets that bound its work.

    ``limit`` caps each string (characters) and each container's items (by the sum of their
    minimal costs); ``bytes_left`` caps the characters copied overall (past it strings are cut
    to ``_SHORT_CUT``); ``nodes_left`` caps the values visited. ``cuts`` counts cuts made.
    """

    __slots__ = ("active", "bytes_left", "cuts", "limit", "nodes_left")

    def __init__(self, limit: int, bytes_left: int, nodes_left: int) -> None:
        self.limit = limit
        self.bytes_left = bytes_left
        self.nodes_left = nodes_left
        self.cuts = 0
        self.active: set[int] = set()

    def convert(self, value: object, depth: int) -> object:
        self.nodes_left -= 1
        t = type(value)
        if t is str:
            return self._str(value)  # type: ignore[arg-type]
        if t is int:
            return self._int(value)  # type: ignore[arg-type]
        if t is float:
            return _float(value)  # type: ignore[arg-type]
        if value is None or t is bool:
            return value
        try:
            return self._other(value, t, depth)
        except Exception:
            return _placeholder(t)

    # -- leaves -------------------------------------------------------------------------

    def _str(self, text: str) -> str:
        n = len(text)
        cap = self.limit if self.bytes_left > 0 else min(self.limit, _SHORT_CUT)
        if n <= cap:
            self.bytes_left -= n
            return _clean(text)
        self.bytes_left -= cap
        self.cuts += 1
        return _cut_str(_clean(text[:cap]), n - cap, "chars")

    def _int(self, value: int) -> object:
        if -_SMALL_INT < value < _SMALL_INT:
            return value
        try:
            int.__repr__(value)
        except ValueError:  # more digits than int <-> str conversion allows
            return f"<int with {value.bit_length()} bits>"
        return value

    def _bytes(self, value: bytes | bytearray | memoryview) -> object:
        kind = _name_of(type(value))
        cap = self.limit if self.bytes_left > 0 else min(self.limit, _SHORT_CUT)
        if isinstance(value, memoryview):
            n = value.nbytes
            if n > cap + 4:
                try:
                    data = value.cast("B")[: cap + 4].tobytes()
                except Exception:
                    return f"<memoryview nbytes={n}>"
            else:
                data = value.tobytes()
        else:
            n = len(value)
            data = bytes(value[: cap + 4]) if n > cap + 4 else bytes(value)
        self.bytes_left -= len(data)
        partial = len(data) < n
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            cut_in_char = exc.start >= len(data) - 4 and exc.reason.startswith("unexpected end")
            if not (partial and cut_in_char):
                shown = base64.b64encode(data[:_B64_BYTES]).decode("ascii")
                more = _ELLIPSIS if n > _B64_BYTES else ""
                return f"<{kind} len={n} b64={shown}{more}>"
            text = data[: exc.start].decode("utf-8")
        if len(text) > cap:
            text = text[:cap]
            partial = True
        if not partial:
            return text
        self.cuts += 1
        return _cut_str(text, n - len(text.encode("utf-8")), "bytes")

    # -- everything else ----------------------------------------------------------------

    def _other(self, value: object, t: type, depth: int) -> object:
        if isinstance(value, str):  # str subclasses, including str-valued enums
            return self._str(str.__str__(value))
        if isinstance(value, int):  # int subclasses, including IntEnum / IntFlag
            return self._int(int.__int__(value))
        if isinstance(value, float):
            return _float(float.__float__(value))
        if isinstance(value, Enum):
            return self.convert(value.value, depth + 1)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._bytes(value)
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return self._str(value.isoformat())
        if isinstance(value, (_dt.timedelta, uuid.UUID, Decimal, PurePath, complex)):
            return self._str(str(value))
        if isinstance(value, range):
            return repr(value)
        if isinstance(value, type):
            return f"<class {_name_of(value)}>"
        if isinstance(value, types.ModuleType):
            return f"<module {_clean(str(value.__name__))}>"
        if isinstance(value, _FUNCTION_TYPES):
            return f"<function {_name_of(value)}>"
        if isinstance(value, types.GeneratorType):
            return f"<generator {_name_of(value)}>"
        if isinstance(value, types.AsyncGeneratorType):
            return f"<async_generator {_name_of(value)}>"
        if isinstance(value, types.CoroutineType):
            return f"<coroutine {_name_of(value)}>"
        if isinstance(value, BaseException):
            return self._exception(value, t)
        if isinstance(value, (Iterator, AsyncIterator)):  # never consumed
            return f"<iterator {_name_of(t)}>"
        if depth >= MAX_DEPTH:
            return _TOO_DEEP
        key = id(value)
        if key in self.active:
            return _CYCLE
        self.active.add(key)
        try:
            return self._expand(value, t, depth + 1)
        finally:
            self.active.discard(key)

    def _exception(self, value: BaseException, t: type) -> str:
        name = _name_of(t)
        try:
            message = str(value)
        except Exception:
            return name
        return self._str(f"{name}: {message}" if message else name)

    def _expand(self, value: object, t: type, depth: int) -> object:
        """Containers and objects; ``depth`` is the depth of their items."""
        if t is dict:
            return self._mapping(dict.items(value), dict.__len__(value), depth)  # type: ignore[arg-type]
        if isinstance(value, Mapping):
            try:
                items: Iterable[tuple[object, object]] = value.items()
                size = len(value)
            except Exception:
                if not isinstance(value, dict):
                    raise
                items, size = dict.items(value), dict.__len__(value)
            return self._mapping(items, size, depth)
        if isinstance(value, list):
            return self._seq(list.__iter__(value), list.__len__(value), depth)
        if isinstance(value, tuple):
            return self._seq(tuple.__iter__(value), tuple.__len__(value), depth)
        if isinstance(value, (set, frozenset)):
            size = len(value)
            members: Iterable[object] = value
            if size <= _SET_SORT_LIMIT:
                try:
                    members = sorted(value)
                except Exception:  # unorderable members: keep iteration order
                    members = value
            return self._seq(iter(members), size, depth)
        if isinstance(value, (deque, Sequence, Set, KeysView, ItemsView, ValuesView)):
            return self._seq(iter(value), len(value), depth)
        fields = self._fields(value, t)
        if fields is not None:
            return self._mapping(fields, len(fields), depth)
        tolist = getattr(t, "tolist", None)
        if callable(tolist):  # numpy-like arrays and scalars
            count = getattr(value, "size", None)
            if isinstance(count, int) and count > self.limit:
                shape = getattr(value, "shape", None)
                about = f" shape={shape}" if isinstance(shape, tuple) else f" size={count}"
                return self._str(f"<{_name_of(t)}{about}>")
            return self.convert(tolist(value), depth - 1)
        repr_impl: object = t.__repr__
        str_impl: object = t.__str__
        if repr_impl is not object.__repr__:
            return self._described(repr(value), t)
        if str_impl is not object.__str__:
            return self._described(str(value), t)
        attributes = self._attributes(value, t)
        if attributes:
            return self._mapping(attributes, len(attributes), depth)
        return _placeholder(t)

    def _described(self, text: object, t: type) -> str:
        if not isinstance(text, str) or _ADDRESS.search(text):  # memory addresses: not stable
            return _placeholder(t)
        return self._str(text)

    def _fields(self, value: object, t: type) -> list[tuple[object, object]] | None:
        """Named fields of dataclasses, pydantic (v2, v1) models and attrs classes."""
        if dataclasses.is_dataclass(value):
            return [(f.name, _read(value, f.name)) for f in dataclasses.fields(value)]
        if callable(getattr(t, "model_dump", None)):  # pydantic v2
            try:
                dumped = value.model_dump()  # type: ignore[attr-defined]
            except Exception:  # e.g. a cycle between models: fall back to the attributes
                dumped = None
            if isinstance(dumped, dict):
                return list(dumped.items())
            return self._attributes(value, t)
        if getattr(t, "__fields__", None) is not None and callable(getattr(t, "dict", None)):
            try:  # pydantic v1 (checked after v2: v2 warns on `__fields__`)
                dumped = value.dict()  # type: ignore[attr-defined]
            except Exception:
                dumped = None
            if isinstance(dumped, dict):
                return list(dumped.items())
            return self._attributes(value, t)
        attrs_fields = getattr(t, "__attrs_attrs__", None)
        if attrs_fields is not None:
            names = [getattr(a, "name", None) for a in attrs_fields]
            return [(n, _read(value, n)) for n in names if isinstance(n, str)]
        return None

    def _attributes(self, value: object, t: type) -> list[tuple[object, object]] | None:
        """Public instance attributes (``__dict__`` and ``__slots__``), or None if none."""
        pairs: list[tuple[object, object]] = []
        seen: set[str] = set()
        attrs = getattr(value, "__dict__", None)
        if isinstance(attrs, dict):
            for name, item in list(dict.items(attrs)):
                if isinstance(name, str) and not name.startswith("_"):
                    pairs.append((name, item))
                    seen.add(name)
        for cls in t.__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if isinstance(name, str) and not name.startswith("_") and name not in seen:
                    seen.add(name)
                    # An unset slot or a failing descriptor is left out.
                    with contextlib.suppress(Exception):
                        pairs.append((name, getattr(value, name)))
        return pairs or None

    # -- containers ---------------------------------------------------------------------

    def _mapping(self, items: Iterable[tuple[object, object]], size: int, depth: int) -> object:
        out: dict[str, object] = {}
        cuts_before = self.cuts
        local = 2
        taken = 0
        for key, item in items:
            if local > self.limit or self.nodes_left <= 0:
                break
            name = self._key(key, depth)
            converted = self.convert(item, depth)
            out[name] = converted
            taken += 1
            local += min(len(name), _MIN_SHARE) + 4 + _min_cost(converted)
        omitted = max(size - taken, 0)
        if omitted or self.cuts != cuts_before:
            if omitted:
                self.cuts += 1
            cut = _CutDict(out)
            cut.omitted = omitted
            return cut
        return out

    def _seq(self, items: Iterator[object], size: int, depth: int) -> object:
        out: list[object] = []
        cuts_before = self.cuts
        local = 2
        for item in items:
            if local > self.limit or self.nodes_left <= 0:
                break
            converted = self.convert(item, depth)
            out.append(converted)
            local += _min_cost(converted) + 1
        omitted = max(size - len(out), 0)
        if omitted or self.cuts != cuts_before:
            if omitted:
                self.cuts += 1
            cut = _CutList(out)
            cut.omitted = omitted
            return cut
        return out

    def _key(self, key: object, depth: int) -> str:
        """A dict key as a string, the way ``json`` stringifies the key types it accepts."""
        t = type(key)
        if t is str:
            return self._str(key)  # type: ignore[arg-type]
        if key is None:
            return "null"
        if t is bool:
            return "true" if key else "false"
        try:
            if isinstance(key, str):
                return self._str(str.__str__(key))
            if isinstance(key, int):
                converted = self._int(int.__int__(key))
                return converted if isinstance(converted, str) else int.__repr__(key)
            if isinstance(key, float):
                number = _float(float.__float__(key))
                return number if isinstance(number, str) else float.__repr__(key)
            converted = self.convert(key, depth)
            if isinstance(converted, str):
                return converted
            return self._str(_render(converted))
        except Exception:
            return _placeholder(t)


def _read(value: object, name: str) -> object:
    try:
        return getattr(value, name)
    except Exception:
        return f"<unreadable {_name_of(type(value))}.{name}>"


# --------------------------------------------------------------------------------------------
# Rendering and shrinking


def _blen(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _more(count: int, unit: str) -> str:
    return f"{TRUNCATION_MARKER} {count} more {unit}"


def _list_marker(count: int) -> str:
    return _encode_str(_more(count, "items"))


def _dict_marker(count: int) -> str:
    return f'{_MARKER_KEY}:"{count} more keys"'


def _render(value: object) -> str:
    """Compact JSON of walked data, with the markers of everything cut inside it."""
    t = type(value)
    if t is _CutStr:
        cut: _CutStr = value  # type: ignore[assignment]
        return _encode_str(str.__str__(cut) + _more(cut.omitted, cut.unit))
    if t is str:
        return _encode_str(value)  # type: ignore[arg-type]
    if t is int:
        return int.__repr__(value)
    if t is float:
        return float.__repr__(value)
    if t is _CutList:
        items: _CutList = value  # type: ignore[assignment]
        parts = [_render(item) for item in items]
        if items.omitted:
            parts.append(_list_marker(items.omitted))
        return "[" + ",".join(parts) + "]"
    if t is _CutDict:
        mapping: _CutDict = value  # type: ignore[assignment]
        parts = [_render(k) + ":" + _render(v) for k, v in mapping.items()]
        if mapping.omitted:
            parts.append(_dict_marker(mapping.omitted))
        return "{" + ",".join(parts) + "}"
    return _plain_dumps(value)


def _materialize(value: object) -> object:
    """Walked data with the cut types replaced by plain data plus marker items."""
    t = type(value)
    if t is _CutStr:
        cut: _CutStr = value  # type: ignore[assignment]
        return str.__str__(cut) + _more(cut.omitted, cut.unit)
    if t is _CutList:
        items: _CutList = value  # type: ignore[assignment]
        out_list = [_materialize(item) for item in items]
        if items.omitted:
            out_list.append(_more(items.omitted, "items"))
        return out_list
    if t is _CutDict:
        mapping: _CutDict = value  # type: ignore[assignment]
        out_dict: dict[str, object] = {}
        for k, v in mapping.items():
            out_dict[str(_materialize(k))] = _materialize(v)
        if mapping.omitted:
            out_dict[TRUNCATION_MARKER] = f"{mapping.omitted} more keys"
        return out_dict
    return value


def _slow_json(value: object, max_bytes: int) -> str:
    limit = max(max_bytes, 0)
    walker = _Walker(limit, 8 * limit + 4096, 2 * limit + 1024)
    data = walker.convert(value, 0)
    full = _render(data)
    out = _fit(data, max_bytes, full)
    if out is None:  # last resort: a JSON string holding the start of the full text
        out = _fit_str(full, 0, "chars", max_bytes)
    return "" if out is None else out


def _fit(value: object, budget: int, full: str) -> str | None:
    """JSON for walked ``value`` in at most ``budget`` bytes (``full`` is its full render).

    None when ``value`` cannot be shown in that space (a number, or under the ~20 bytes a
    container's marker needs).
    """
    if _blen(full) <= budget:
        return full
    t = type(value)
    if t is str:
        return _fit_str(value, 0, "chars", budget)  # type: ignore[arg-type]
    if t is _CutStr:
        cut: _CutStr = value  # type: ignore[assignment]
        return _fit_str(str.__str__(cut), cut.omitted, cut.unit, budget)
    if t is list or t is _CutList:
        items: list[object] = value  # type: ignore[assignment]
        entries = [("", item, _render(item)) for item in items]
        omitted = items.omitted if isinstance(items, _CutList) else 0
        return _fit_container(entries, omitted, budget, is_dict=False)
    if t is dict or t is _CutDict:
        mapping: dict[str, object] = value  # type: ignore[assignment]
        key_cap = max(_MIN_SHARE, min(_KEY_CAP, budget // 4))
        dict_entries = []
        for k, v in mapping.items():
            key_text = _render(k)
            if _blen(key_text) > key_cap:
                key_text = _fit(k, key_cap, key_text) or '""'
            dict_entries.append((key_text + ":", v, _render(v)))
        omitted = mapping.omitted if isinstance(mapping, _CutDict) else 0
        return _fit_container(dict_entries, omitted, budget, is_dict=True)
    return None


def _suffix(kind: int, remaining: int, unit: str) -> str:
    if kind == 0:
        return _more(remaining, unit)
    return TRUNCATION_MARKER if kind == 1 else _ELLIPSIS


def _escaped_sizes(text: str) -> list[int]:
    """``sizes[i]``: UTF-8 size of ``text[: i * _CHUNK]`` escaped for JSON (no quotes).

    JSON escaping is per character, so this lets ``_escaped_size`` measure any prefix by
    escaping at most one chunk: the cut point is found in O(len) C work plus a short search.
    """
    sizes = [0]
    total = 0
    for start in range(0, len(text), _CHUNK):
        total += _blen(_encode_str(text[start : start + _CHUNK])) - 2
        sizes.append(total)
    return sizes


def _escaped_size(text: str, sizes: list[int], k: int) -> int:
    whole = k // _CHUNK
    start = whole * _CHUNK
    if start == k:
        return sizes[whole]
    return sizes[whole] + _blen(_encode_str(text[start:k])) - 2


def _longest_prefix(
    text: str, sizes: list[int], *, total: int, unit: str, kind: int, budget: int
) -> int | None:
    """Largest k with ``text[:k]`` + suffix ``kind`` fitting ``budget`` bytes as JSON."""

    def fits(k: int) -> bool:
        suffix = _blen(_suffix(kind, total - k, unit))  # marker text needs no escaping
        return 2 + _escaped_size(text, sizes, k) + suffix <= budget

    if not fits(0):
        return None
    hi = min(len(text), budget)  # every character takes at least one byte
    if fits(hi):
        return hi
    lo = 0  # invariant: lo fits, hi does not (the size grows with k)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _fit_str(text: str, omitted: int, unit: str, budget: int) -> str | None:
    """A JSON string: the start of ``text`` plus the most informative marker that fits."""
    if budget < 2:
        return None
    total = len(text) + omitted
    want = min(len(text), _MIN_KEEP)
    text = text[:budget]  # every character takes at least one byte
    sizes = _escaped_sizes(text)
    fallback = '""'
    for kind in (0, 1, 2):
        kept = _longest_prefix(text, sizes, total=total, unit=unit, kind=kind, budget=budget)
        if kept is None:
            continue
        rendered = _encode_str(text[:kept] + _suffix(kind, total - kept, unit))
        if kept >= want:
            return rendered
        fallback = rendered
    return fallback


def _waterfill(sizes: list[int], avail: int) -> int:
    """Largest cap with ``sum(min(s, cap) for s in sizes) <= avail``."""
    remaining = avail
    ordered = sorted(sizes)
    count = len(ordered)
    for i, size in enumerate(ordered):
        if size * (count - i) <= remaining:
            remaining -= size
        else:
            return remaining // (count - i)
    return ordered[-1] if ordered else 0


def _fit_container(
    entries: list[tuple[str, object, str]], omitted: int, budget: int, *, is_dict: bool
) -> str | None:
    """A list or dict of ``entries`` (prefix, value, value's full JSON) in ``budget`` bytes.

    Keeps as many leading entries as fit when each gets its prefix plus its value (whole for
    numbers, at least ``share_min`` bytes for strings and containers) and the marker for the
    rest still fits (detailed, else compact); then shares the space by water-filling.
    """
    n = len(entries)
    prefix_sizes = [_blen(prefix) for prefix, _, _ in entries]
    sizes = [_blen(text) for _, _, text in entries]
    shrinkable = [type(item) in _SHRINKABLE for _, item, _ in entries]
    # Fewer entries shown usefully beat many shown as bare markers: a cut entry gets at least
    # 1/16 of the space, up to _USEFUL_SHARE (so big lists still show many entries).
    share_min = max(_MIN_SHARE, min(budget // 16, _USEFUL_SHARE))

    longest_marker = _blen(_container_markers(n + omitted, is_dict=is_dict)[0])
    # Largest k with the detailed marker, and with the compact one; the compact marker is
    # used only when it lets entries be shown where the detailed one leaves none.
    kept_detailed = kept_compact = -1
    running = 2  # brackets, kept entries at their minimum, commas between them
    for k in range(n + 1):
        if k:
            i = k - 1
            value_min = min(sizes[i], share_min) if shrinkable[i] else sizes[i]
            running += prefix_sizes[i] + value_min + (1 if k > 1 else 0)
            if running > budget:
                break
        left_out = n - k + omitted
        if not left_out:  # everything kept: no marker
            kept_detailed = kept_compact = k
            continue
        comma = 1 if k else 0
        if running + comma + longest_marker <= budget:  # the detailed marker surely fits
            kept_detailed = kept_compact = k
            continue
        detailed, compact = _container_markers(left_out, is_dict=is_dict)
        if running + comma + _blen(detailed) <= budget:
            kept_detailed = k
        if running + comma + _blen(compact) <= budget:
            kept_compact = k
    if kept_detailed >= 1 or kept_detailed == kept_compact:
        kept, compact_marker = kept_detailed, False
    else:
        kept, compact_marker = kept_compact, True
    if kept < 0:
        return None
    left_out = n - kept + omitted
    kept_marker = ""
    if left_out:
        kept_marker = _container_markers(left_out, is_dict=is_dict)[1 if compact_marker else 0]

    fixed = 2 + max(kept - 1, 0) + sum(prefix_sizes[:kept])
    fixed += sum(sizes[i] for i in range(kept) if not shrinkable[i])
    if kept_marker:
        fixed += _blen(kept_marker) + (1 if kept else 0)
    avail = budget - fixed
    share_sizes = [sizes[i] for i in range(kept) if shrinkable[i]]
    cap = _waterfill(share_sizes, avail)
    slack = avail - sum(min(size, cap) for size in share_sizes)
    parts = []
    for i in range(kept):
        prefix, item, text = entries[i]
        if shrinkable[i] and sizes[i] > cap:
            allowance = cap + slack
            fitted = _fit(item, allowance, text)
            if fitted is None:
                fitted = _fit_str(text, 0, "chars", allowance) or '""'
            slack = allowance - _blen(fitted)
            text = fitted
        parts.append(prefix + text)
    if kept_marker:
        parts.append(kept_marker)
    open_, close = ("{", "}") if is_dict else ("[", "]")
    return open_ + ",".join(parts) + close


def _container_markers(left_out: int, *, is_dict: bool) -> tuple[str, str]:
    """The marker entry for ``left_out`` omitted entries: detailed, then compact."""
    if is_dict:
        return f'{_MARKER_KEY}:"{left_out} more keys"', f"{_MARKER_KEY}:{left_out}"
    return _encode_str(_more(left_out, "items")), _MARKER_KEY


def _cut_text(text: str, max_bytes: int) -> str:
    """Plain text (not JSON) in at most ``max_bytes`` UTF-8 bytes, marker appended if cut."""
    total = len(text)
    head = _clean(text[: max(max_bytes, 0)] if total > max_bytes else text)
    encoded = head.encode("utf-8")
    if total <= max_bytes and len(encoded) <= max_bytes:
        return head
    want = min(total, _MIN_KEEP)
    last = None
    for kind in (0, 1, 2):
        room = max_bytes - _blen(_suffix(kind, total, "chars"))
        if room < 0:
            continue
        kept = encoded[:room].decode("utf-8", "ignore")  # drops a partial last character
        last = kept + _suffix(kind, total - len(kept), "chars")
        if len(kept) >= want:
            return last
    if last is not None:
        return last
    return encoded[: max(max_bytes, 0)].decode("utf-8", "ignore")
