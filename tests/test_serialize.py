"""Tests for galileo_sessions._serialize: safe, size-bounded JSON for arbitrary values."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import pathlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from galileo_sessions._serialize import (
    MAX_DEPTH,
    TRUNCATION_MARKER,
    arguments_text,
    jsonable,
    to_json_text,
    to_text,
)

BIG = 100_000


def check(text: str, max_bytes: int) -> Any:
    """The guarantees of to_json_text: within the bound, UTF-8 encodable, valid strict JSON."""
    assert isinstance(text, str)
    assert len(text.encode("utf-8")) <= max_bytes
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"non-strict JSON constant {name}")


def roundtrip(value: object, max_bytes: int = BIG) -> Any:
    return check(to_json_text(value, max_bytes), max_bytes)


# ---------------------------------------------------------------------------------------------
# Odd objects used below


@dataclasses.dataclass
class Point:
    x: int
    y: object = None


class Model(pydantic.BaseModel):
    name: str
    when: dt.datetime
    tags: set[str] = set()


class Node(pydantic.BaseModel):
    value: int
    child: Node | None = None


class Color(enum.Enum):
    RED = "red"
    PAIR = (1, 2)


class Level(enum.IntEnum):
    HIGH = 3


class Mode(str, enum.Enum):
    FAST = "fast"


class Explosive:
    """Every dunder we might touch raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __iter__(self) -> Iterator[int]:
        raise RuntimeError("iter")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("getattr")


class Untouchable:
    """Even attribute access through __getattribute__ raises."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError("no")


class LyingClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("class")


class BadProperty:
    def __init__(self) -> None:
        self.ok = 1

    @property
    def boom(self) -> int:
        raise RuntimeError("boom")


class Plain:
    def __init__(self) -> None:
        self.name = "p"
        self.count = 2
        self._secret = "hidden"


class Slotted:
    __slots__ = ("_private", "a", "b")

    def __init__(self) -> None:
        self.a = 1
        self._private = 2  # b stays unset


class WithRepr:
    def __repr__(self) -> str:
        return "WithRepr(7)"


class AddressRepr:
    def __repr__(self) -> str:
        return f"<AddressRepr at 0x{id(self):x}>"


class FakeV1Model:
    """Looks like a pydantic v1 model: __fields__ plus dict()."""

    __fields__ = {"a": None}

    def dict(self) -> dict[str, object]:
        return {"a": 1, "b": [dt.date(2024, 1, 2)]}


class FakeAttrsField:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeAttrs:
    __attrs_attrs__ = (FakeAttrsField("a"), FakeAttrsField("b"))

    def __init__(self) -> None:
        self.a = 1
        self.b = "two"


class FakeArray:
    """numpy-like: tolist() plus size/shape."""

    def __init__(self, data: list[object], *, fail: bool = False) -> None:
        self.data = data
        self.size = len(data)
        self.shape = (len(data),)
        self.fail = fail

    def tolist(self) -> list[object]:
        if self.fail:
            raise RuntimeError("tolist")
        return list(self.data)


class MyMapping(Mapping[object, object]):
    def __init__(self, data: dict[object, object]) -> None:
        self._data = data

    def __getitem__(self, key: object) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[object]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class BadItemsDict(dict[str, object]):
    def items(self) -> Any:
        raise RuntimeError("items")


class StrSub(str):
    def __str__(self) -> str:
        raise RuntimeError("str")


class Box:
    """Hides a hostile object from hypothesis, which inspects the values it generates."""

    def __init__(self, item: object) -> None:
        self.item = item


def gen() -> Iterator[int]:
    yield 1
    yield 2


# ---------------------------------------------------------------------------------------------
# Plain data: exact and fast


@pytest.mark.parametrize(
    "value",
    [
        "hello",
        "",
        0,
        -5,
        1.5,
        -0.0,
        1e300,
        True,
        False,
        None,
        [],
        {},
        [1, "a", None, [2.5, {"k": "v"}]],
        {"q": "first", "k": 3, "nested": {"list": [1, 2, 3]}},
        'unicode: é 😀 中文 \n\t"\\',
    ],
)
def test_plain_json_is_returned_exactly(value: object) -> None:
    text = to_json_text(value, BIG)
    assert json.loads(text) == value
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsonable(value) == value


def test_compact_output_and_arguments_text() -> None:
    assert arguments_text({"q": "first", "k": 3}, BIG) == '{"q":"first","k":3}'
    assert arguments_text({}, BIG) == "{}"
    assert to_json_text("hi", BIG) == '"hi"'


def test_plain_data_deeper_than_max_depth_is_kept_by_fast_path() -> None:
    value: list[object] = []
    for _ in range(MAX_DEPTH + 10):
        value = [value]
    assert json.loads(to_json_text(value, BIG)) == value


# ---------------------------------------------------------------------------------------------
# Odd kinds


def test_dataclass() -> None:
    assert jsonable(Point(1, Point(2))) == {"x": 1, "y": {"x": 2, "y": None}}
    assert roundtrip(Point(1, {"a"})) == {"x": 1, "y": ["a"]}


def test_pydantic_v2() -> None:
    model = Model(name="m", when=dt.datetime(2024, 5, 6, 7, 8, 9), tags={"b", "a"})
    expected = {"name": "m", "when": "2024-05-06T07:08:09", "tags": ["a", "b"]}
    assert jsonable(model) == expected
    assert roundtrip(model) == expected


def test_pydantic_cycle_falls_back_to_attributes() -> None:
    node = Node(value=1)
    node.child = node  # model_dump() raises on the cycle
    assert roundtrip(node) == {"value": 1, "child": "<cycle>"}


def test_pydantic_v1_like_and_attrs_like() -> None:
    assert jsonable(FakeV1Model()) == {"a": 1, "b": ["2024-01-02"]}
    assert jsonable(FakeAttrs()) == {"a": 1, "b": "two"}


def test_real_pydantic_v1_model() -> None:
    v1 = pytest.importorskip("pydantic.v1")

    class Old(v1.BaseModel):  # type: ignore[name-defined,misc]
        a: int
        b: str = "x"

    assert roundtrip(Old(a=1)) == {"a": 1, "b": "x"}


def test_mappings_and_key_stringification() -> None:
    value = {1: "int", None: "none", False: "bool", 1.5: "float", (1, 2): "tuple", Color.RED: "e"}
    out = roundtrip(value)
    assert out == {
        "1": "int",
        "null": "none",
        "false": "bool",
        "1.5": "float",
        "[1,2]": "tuple",
        "red": "e",
    }
    assert jsonable(value) == out
    assert roundtrip(MyMapping({"a": 1, 2: [3]})) == {"a": 1, "2": [3]}
    assert roundtrip(collections.OrderedDict(b=1, a=2)) == {"b": 1, "a": 2}
    assert roundtrip(collections.defaultdict(list, a=[1])) == {"a": [1]}
    assert roundtrip({float("nan"): 1, float("inf"): 2}) == {"NaN": 1, "Infinity": 2}


class BadSequence(collections.abc.Sequence[int]):
    def __getitem__(self, index: Any) -> Any:
        raise RuntimeError("getitem")

    def __len__(self) -> int:
        return 3


def test_sequence_whose_iteration_raises() -> None:
    assert roundtrip(BadSequence()) == "<BadSequence object>"
    assert roundtrip({"s": BadSequence(), "ok": 1}) == {"s": "<BadSequence object>", "ok": 1}


def test_dict_subclass_whose_items_raise() -> None:
    value = BadItemsDict(a=1)
    assert roundtrip(value) == {"a": 1}
    assert jsonable(value) == {"a": 1}


def test_sequences_and_sets() -> None:
    assert roundtrip((1, 2)) == [1, 2]
    assert roundtrip({3, 1, 2}) == [1, 2, 3]
    assert roundtrip(frozenset({"b", "a"})) == ["a", "b"]
    assert roundtrip({1, "a"}) in ([1, "a"], ["a", 1])  # unorderable: iteration order
    assert roundtrip(collections.deque([1, 2])) == [1, 2]
    assert roundtrip(collections.namedtuple("P", "a b")(1, 2)) == [1, 2]
    assert roundtrip({"a": 1}.keys()) == ["a"]
    assert roundtrip({"a": 1}.values()) == [1]
    assert roundtrip({"a": 1}.items()) == [["a", 1]]


def test_generators_and_iterators_are_not_consumed() -> None:
    g = gen()
    assert roundtrip(g) == "<generator gen>"
    assert roundtrip([g]) == ["<generator gen>"]
    assert next(g) == 1  # untouched
    it = iter([1, 2, 3])
    assert roundtrip(it) == "<iterator list_iterator>"
    assert list(it) == [1, 2, 3]
    mapped = map(str, [1])
    assert roundtrip(mapped).startswith("<iterator")
    assert list(mapped) == ["1"]


def test_coroutines_and_async_generators() -> None:
    async def coro() -> None:
        return None

    async def agen() -> Any:
        yield 1

    c = coro()
    try:
        assert roundtrip(c).startswith("<coroutine ")
    finally:
        c.close()
    a = agen()
    assert roundtrip(a).startswith("<async_generator ")
    asyncio.run(a.aclose())


def test_bytes() -> None:
    assert roundtrip(b"hello") == "hello"
    assert roundtrip(bytearray("é".encode())) == "é"
    assert roundtrip(memoryview(b"abc")) == "abc"
    assert roundtrip(b"") == ""
    binary = bytes(range(256)) * 4
    out = roundtrip(binary)
    assert out.startswith("<bytes len=1024 b64=AAECAwQF")
    assert len(out) < 120  # capped
    assert roundtrip(bytearray(b"\xff")) == "<bytearray len=1 b64=/w==>"


def test_bytes_cut_inside_a_multibyte_character() -> None:
    data = "é".encode() * 1000  # 2000 bytes of valid UTF-8
    out = roundtrip(data, 101)
    assert TRUNCATION_MARKER in out or out.endswith("…")
    assert set(out.split("…")[0]) <= {"é"}


def test_scalars() -> None:
    assert roundtrip(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == (
        "2024-01-02T03:04:05+00:00"
    )
    assert roundtrip(dt.date(2024, 1, 2)) == "2024-01-02"
    assert roundtrip(dt.time(3, 4)) == "03:04:00"
    assert roundtrip(dt.timedelta(seconds=90)) == "0:01:30"
    assert roundtrip(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert roundtrip(decimal.Decimal("1.10")) == "1.10"
    assert roundtrip(decimal.Decimal("NaN")) == "NaN"
    assert roundtrip(pathlib.PurePosixPath("/a/b")) == "/a/b"
    assert roundtrip(Color.RED) == "red"
    assert roundtrip(Color.PAIR) == [1, 2]
    assert roundtrip(Level.HIGH) == 3
    assert roundtrip(Mode.FAST) == "fast"
    assert roundtrip({"m": Mode.FAST, Mode.FAST: 1}) == {"m": "fast", "fast": 1}
    assert roundtrip(1 + 2j) == "(1+2j)"
    assert roundtrip(range(3)) == "range(0, 3)"
    assert roundtrip(range(10**12)) == "range(0, 1000000000000)"


def test_numpy_like() -> None:
    assert roundtrip(FakeArray([1, 2.5])) == [1, 2.5]
    assert roundtrip(FakeArray([1], fail=True)) == "<FakeArray object>"
    assert roundtrip(FakeArray(list(range(1000))), 100) == "<FakeArray shape=(1000,)>"


def test_exceptions() -> None:
    assert roundtrip(ValueError("bad value")) == "ValueError: bad value"
    assert roundtrip(KeyError("k")) == "KeyError: 'k'"
    assert roundtrip(RuntimeError()) == "RuntimeError"

    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert roundtrip(Weird()) == "test_exceptions.<locals>.Weird"


def test_non_finite_floats_are_strings() -> None:
    value = [float("nan"), float("inf"), float("-inf"), 1.0]
    assert roundtrip(value) == ["NaN", "Infinity", "-Infinity", 1.0]
    assert jsonable(value) == ["NaN", "Infinity", "-Infinity", 1.0]
    assert to_json_text(float("nan"), BIG) == '"NaN"'
    assert to_text(float("-inf"), BIG) == '"-Infinity"'


def test_huge_int() -> None:
    out = roundtrip(10**5000)
    assert out.startswith("<int with ")
    assert roundtrip({"n": 10**5000, "m": 2**64}) == {"n": out, "m": 2**64}


def test_functions_classes_modules_locks() -> None:
    assert roundtrip(gen) == "<function gen>"
    assert roundtrip(len) == "<function len>"
    assert roundtrip(lambda: 1).startswith("<function test_functions_classes_modules_locks.")
    assert roundtrip(Plain().__init__) == "<function Plain.__init__>"
    assert roundtrip("".join) == "<function str.join>"
    assert roundtrip(Point) == "<class Point>"
    assert roundtrip(int) == "<class int>"
    assert roundtrip(os) == "<module os>"
    assert roundtrip(threading.Lock()) == "<lock object>"
    assert roundtrip(threading.RLock()) == "<RLock object>"
    assert roundtrip(AddressRepr()) == "<AddressRepr object>"
    assert roundtrip(WithRepr()) == "WithRepr(7)"


def test_plain_objects_use_public_attributes() -> None:
    assert roundtrip(Plain()) == {"name": "p", "count": 2}
    assert roundtrip(Slotted()) == {"a": 1}
    assert roundtrip(object()) == "<object object>"
    assert roundtrip(BadProperty()) == {"ok": 1}


@pytest.mark.parametrize("factory", [Explosive, Untouchable, LyingClass])
def test_objects_whose_dunders_raise(factory: type) -> None:
    obj = factory()
    name = factory.__qualname__
    assert roundtrip(obj) == f"<{name} object>"
    assert roundtrip([obj, {"k": obj}]) == [f"<{name} object>", {"k": f"<{name} object>"}]
    assert jsonable(obj) == f"<{name} object>"
    assert to_text(obj, BIG) == f'"<{name} object>"'
    assert arguments_text({"x": obj}, BIG) == f'{{"x":"<{name} object>"}}'


def test_str_subclass_with_raising_str() -> None:
    value = StrSub("abc")
    assert to_text(value, BIG) == "abc"
    assert roundtrip(value) == "abc"
    assert roundtrip({value: value}) == {"abc": "abc"}


def test_unpicklable_things() -> None:
    value = {"lock": threading.Lock(), "gen": gen(), "file": open(os.devnull)}  # noqa: SIM115
    try:
        out = roundtrip(value)
    finally:
        value["file"].close()
    assert out["lock"] == "<lock object>"
    assert out["gen"] == "<generator gen>"
    assert out["file"].startswith("<iterator")


# ---------------------------------------------------------------------------------------------
# Cycles and depth


def test_list_containing_itself() -> None:
    value: list[object] = [1]
    value.append(value)
    assert roundtrip(value) == [1, "<cycle>"]
    assert jsonable(value) == [1, "<cycle>"]


def test_dict_cycle() -> None:
    a: dict[str, object] = {"name": "a"}
    b: dict[str, object] = {"name": "b", "a": a}
    a["b"] = b
    assert roundtrip(a) == {"name": "a", "b": {"name": "b", "a": "<cycle>"}}


def test_object_graph_cycle() -> None:
    parent = Plain()
    child = Plain()
    parent.child = child  # type: ignore[attr-defined]
    child.parent = parent  # type: ignore[attr-defined]
    child.siblings = [child]  # type: ignore[attr-defined]
    out = roundtrip(parent)
    assert out["child"]["parent"] == "<cycle>"
    assert out["child"]["siblings"] == ["<cycle>"]


def test_dataclass_cycle_through_plain_container() -> None:
    point = Point(1)
    holder = {"p": point}
    point.y = holder
    # The cut is made where the cycle is detected: the fast path (C encoder + hook) may show
    # one more level than the careful walk, which knows every ancestor.
    assert roundtrip(holder) in (
        {"p": {"x": 1, "y": "<cycle>"}},
        {"p": {"x": 1, "y": {"p": "<cycle>"}}},
    )
    assert jsonable(holder) == {"p": {"x": 1, "y": "<cycle>"}}
    assert roundtrip(point) == {"x": 1, "y": {"p": "<cycle>"}}


def test_shared_but_acyclic_references_are_repeated() -> None:
    shared = [1, 2]
    assert roundtrip({"a": shared, "b": shared}) == {"a": [1, 2], "b": [1, 2]}
    shared_obj = Plain()
    out = roundtrip([shared_obj, shared_obj])
    assert out[0] == out[1] == {"name": "p", "count": 2}


def test_deep_nesting_is_cut_at_max_depth() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    out = roundtrip(value)
    depth = 0
    while isinstance(out, list):
        (out,) = out
        depth += 1
    assert depth == MAX_DEPTH
    assert isinstance(out, str)
    assert TRUNCATION_MARKER in out
    assert str(MAX_DEPTH) in out


def test_deep_object_nesting() -> None:
    point = Point(0)
    for i in range(1, 100):
        point = Point(i, point)
    out = jsonable(point)
    json.dumps(out, allow_nan=False)
    assert TRUNCATION_MARKER in json.dumps(out, ensure_ascii=False)
    assert roundtrip(point) == out


# ---------------------------------------------------------------------------------------------
# Surrogates and invalid characters


def test_lone_surrogates_are_replaced() -> None:
    value = "a\ud800b\udfffc"
    for text in (to_json_text(value, BIG), to_text(value, BIG), arguments_text({"s": value}, BIG)):
        text.encode("utf-8")
    assert roundtrip(value) == "a\ufffdb\ufffdc"
    assert to_text(value, BIG) == "a\ufffdb\ufffdc"
    assert jsonable([value]) == ["a\ufffdb\ufffdc"]
    assert roundtrip({"k\udc80": value}) == {"k\ufffd": "a\ufffdb\ufffdc"}


def test_valid_surrogate_pairs_are_joined() -> None:
    assert to_text("\ud83d\ude00", BIG) == "\U0001f600"
    assert roundtrip("x\ud83d\ude00") == "x\U0001f600"


def test_surrogates_in_huge_strings() -> None:
    value = "\ud800" * 300_000
    text = to_text(value, 1000)
    assert len(text.encode()) <= 1000
    assert TRUNCATION_MARKER in text
    assert len(roundtrip(value, 1000)) > 0


# ---------------------------------------------------------------------------------------------
# Size limits


def test_huge_string_keeps_start_and_marker() -> None:
    value = "abc" * 500_000
    out = roundtrip(value, 1000)
    assert out.startswith("abcabc")
    assert TRUNCATION_MARKER in out
    assert "more chars" in out
    kept = out.split("\u2026")[0]
    assert out.endswith(f"{len(value) - len(kept)} more chars")
    assert len(to_json_text(value, 1000).encode()) >= 990  # uses the space


def test_huge_string_to_text() -> None:
    value = "é" * 100_000
    out = to_text(value, 1001)
    assert len(out.encode()) <= 1001
    assert out.startswith("éé")
    assert TRUNCATION_MARKER in out
    assert out.endswith("more chars")


def test_text_cut_at_utf8_boundary() -> None:
    value = "😀" * 100
    for size in range(60):
        out = to_text(value, size)
        assert len(out.encode("utf-8")) <= size
        out.encode("utf-8")
    assert to_text("hello world", 11) == "hello world"
    assert to_text("hello world!", 11) in ("hello w\u2026", "hello wo\u2026")


def test_huge_bytes() -> None:
    out = roundtrip(b"x" * 1_000_000, 500)
    assert out.startswith("xxx")
    assert TRUNCATION_MARKER in out
    assert "more bytes" in out


def test_huge_list() -> None:
    out = roundtrip(list(range(1_000_000)), 1000)
    assert out[:3] == [0, 1, 2]
    assert isinstance(out[-1], str)
    assert TRUNCATION_MARKER in out[-1]
    assert out[-1].endswith(f"{1_000_000 - (len(out) - 1)} more items")


def test_huge_dict() -> None:
    value = {f"key{i}": i for i in range(100_000)}
    out = roundtrip(value, 1000)
    assert out["key0"] == 0
    assert out[TRUNCATION_MARKER] == f"{100_000 - (len(out) - 1)} more keys"


def test_huge_nested_structure() -> None:
    value = {"docs": [{"id": i, "text": "lorem ipsum " * 200} for i in range(500)], "k": 3}
    for size in (100, 1000, 10_000, BIG):
        text = to_json_text(value, size)
        out = check(text, size)
        assert TRUNCATION_MARKER in text
        assert isinstance(out, dict)
    out = roundtrip(value, 10_000)
    assert out["k"] == 3  # the small sibling survives next to the huge one
    assert out["docs"][0]["id"] == 0
    assert out["docs"][0]["text"].startswith("lorem ipsum")


def test_small_arguments_survive_next_to_a_huge_one() -> None:
    args = {"image": "data:image/png;base64," + "A" * 5_000_000, "model": "gpt-4o", "n": 1}
    text = arguments_text(args, 10_000)
    out = check(text, 10_000)
    assert out["model"] == "gpt-4o"
    assert out["n"] == 1
    assert out["image"].startswith("data:image/png;base64,AAAA")
    assert TRUNCATION_MARKER in out["image"]
    assert len(text.encode()) > 9_000  # the space is used


def test_many_huge_strings() -> None:
    value = ["x" * 1_000_000 for _ in range(50)] + [{"tail": 1}]
    out = roundtrip(value, 20_000)
    assert all(isinstance(item, str) for item in out[:-1])
    assert all(TRUNCATION_MARKER in item for item in out[:-1])
    assert out[-1] == {"tail": 1} or TRUNCATION_MARKER in out[-1]


def test_oversized_odd_objects() -> None:
    value = [Point(i, "y" * 1000) for i in range(1000)]
    text = to_json_text(value, 5000)
    out = check(text, 5000)
    assert out[0]["x"] == 0
    assert TRUNCATION_MARKER in text


def test_escapes_count_toward_the_limit() -> None:
    value = '\n"\\\x01' * 10_000
    for size in (2, 3, 7, 8, 30, 100, 1001):
        out = check(to_json_text(value, size), size)
        assert isinstance(out, str)
        assert value.startswith(out.split("\u2026")[0])


def test_multibyte_counts_toward_the_limit() -> None:
    value = {"k": "中" * 10_000, "e": "😀" * 10_000}
    for size in range(2, 200, 7):
        check(to_json_text(value, size), size)
        assert len(to_text(value, size).encode()) <= size


def test_long_keys() -> None:
    value = {"k" * 50_000: 1, "short": 2}
    out = roundtrip(value, 2000)
    assert out["short"] == 2
    long_key = next(k for k in out if k.startswith("kkk"))
    assert TRUNCATION_MARKER in long_key


@pytest.mark.parametrize("max_bytes", [0, 1, 2, 3, 4, 5, 10, 16, 20, 21, 25, 30, 50, 100])
@pytest.mark.parametrize(
    "value",
    [
        "x" * 1000,
        "é" * 1000,
        list(range(1000)),
        {f"k{i}": "v" * 100 for i in range(100)},
        {"q": "first question " * 100, "k": 3},
        b"\xff" * 1000,
        [[[[["deep" * 100]]]]],
        123456789012345678901234567890,
        1.2345678901234567e300,
        Explosive(),
    ],
    ids=lambda value: type(value).__name__,
)
def test_tiny_limits(value: object, max_bytes: int) -> None:
    text = to_json_text(value, max_bytes)
    assert len(text.encode("utf-8")) <= max_bytes
    if max_bytes >= 2:
        json.loads(text)
    else:
        assert text == ""  # no JSON value can say "truncated" in under 2 bytes
    if max_bytes >= 16 and text != to_json_text(value, BIG):
        assert TRUNCATION_MARKER in text or "\u2026" in text
    out = to_text(value, max_bytes)
    assert len(out.encode("utf-8")) <= max_bytes
    args = arguments_text({"v": value}, max_bytes)
    assert len(args.encode("utf-8")) <= max_bytes
    if max_bytes >= 21:
        assert isinstance(json.loads(args), dict)


def test_tiny_limit_shapes() -> None:
    assert to_json_text("x" * 100, 2) == '""'
    assert to_json_text("x" * 100, 4) == '""'
    assert to_json_text("x" * 100, 5) == '"\u2026"'
    assert to_json_text("x" * 100, 6) == '"x\u2026"'
    assert to_json_text("x" * 100, 16) == '"xxxxxxxxxxx\u2026"'
    assert to_json_text(list(range(100)), 18) == '["\u2026[truncated]"]'
    # Below the smallest marked list: a JSON string holding the start of the text.
    assert to_json_text(list(range(100)), 16) == '"[0,1,2,3,4,\u2026"'
    assert to_json_text(list(range(100)), 40) == '[0,1,2,3,"\u2026[truncated] 96 more items"]'
    assert to_json_text({"k": "v" * 100}, 20) == '{"\u2026[truncated]":1}'
    assert to_json_text(5, 1) == "5"
    assert to_json_text(12345, 3) == '""'
    assert to_json_text("x" * 100, 1) == ""
    assert to_json_text("x" * 100, 0) == ""
    assert to_json_text("x" * 100, -5) == ""
    assert to_text("hello", 0) == ""
    assert to_text("hello", 3) == "\u2026"
    assert to_text("hello world", 2) == "he"


def test_value_that_fits_is_not_cut() -> None:
    value = {"a": "x" * 90}
    text = to_json_text(value, BIG)
    size = len(text.encode())
    assert to_json_text(value, size) == text
    assert to_json_text(value, size - 1) != text


# ---------------------------------------------------------------------------------------------
# to_text and arguments_text


def test_to_text() -> None:
    assert to_text("hello", BIG) == "hello"
    assert to_text("", BIG) == ""
    assert to_text(None, BIG) == ""
    assert to_text("é😀", BIG) == "é😀"
    assert to_text(5, BIG) == "5"
    assert to_text({"a": [1]}, BIG) == '{"a":[1]}'
    assert to_text(["x"], BIG) == '["x"]'
    assert to_text(b"bytes", BIG) == '"bytes"'
    assert to_text(Mode.FAST, BIG) == "fast"


def test_arguments_text_with_odd_values() -> None:
    args = {"when": dt.date(2024, 1, 1), "ids": {3, 1}, "p": Point(1), "f": float("nan")}
    assert json.loads(arguments_text(args, BIG)) == {
        "when": "2024-01-01",
        "ids": [1, 3],
        "p": {"x": 1, "y": None},
        "f": "NaN",
    }


def test_jsonable_returns_plain_data() -> None:
    value = {"p": Point(1, b"\xff"), "s": {1}, ("t",): Explosive(), "d": dt.date(2020, 1, 1)}
    out = jsonable(value)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["p"] == {"x": 1, "y": "<bytes len=1 b64=/w==>"}


def test_concurrent_use_from_threads() -> None:
    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    values: list[object] = [{"q": "hi", "k": 3}, cyclic, Point(1), "x" * 5000, [float("nan")]]
    expected = [to_json_text(v, 1000) for v in values]
    errors: list[str] = []

    def work() -> None:
        for _ in range(300):
            for value, want in zip(values, expected, strict=True):
                got = to_json_text(value, 1000)
                if got != want:
                    errors.append(got)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# ---------------------------------------------------------------------------------------------
# Property-based


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_data = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6)
    ),
    max_leaves=40,
)

odd_leaves = st.one_of(
    json_leaves,
    st.floats(),  # NaN and infinities
    st.text(st.characters(codec=None, min_codepoint=0xD700, max_codepoint=0xE000)),  # surrogates
    st.binary(max_size=64),
    st.integers(min_value=-3, max_value=3).map(lambda n: n * 10**5000 + 1),  # > 4300 digits
    # Factories, not instances: hypothesis reprs the elements, and these repr()s raise.
    st.sampled_from(
        [
            lambda: Box(Explosive()),
            lambda: Box(Untouchable()),
            lambda: Box(LyingClass()),
            Plain,
            Slotted,
            threading.Lock,
            lambda: len,
            lambda: Point,
            lambda: os,
            lambda: Color.PAIR,
            lambda: Level.HIGH,
            lambda: Mode.FAST,
            lambda: dt.datetime(2024, 1, 1),
            lambda: uuid.UUID(int=3),
            lambda: decimal.Decimal("-0.5"),
            lambda: 1 + 1j,
            lambda: range(4),
            lambda: ValueError("v"),
            lambda: FakeArray([1, 2]),
            WithRepr,
            AddressRepr,
            lambda: BadItemsDict(a=1),
            lambda: MyMapping({1: 2}),
        ]
    ).map(lambda factory: factory()),
    st.builds(Point, st.integers(), st.text()),
)


def _odd_containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.one_of(st.text(), st.integers(), st.none(), st.floats(), st.tuples(st.integers()))
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=6),
        st.builds(Point, st.integers(), children),
        st.lists(st.integers(), max_size=6).map(frozenset),
        st.lists(children, max_size=6).map(collections.deque),
    )


odd_data = st.recursive(odd_leaves, _odd_containers, max_leaves=30)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(json_data)
def test_property_plain_json_roundtrips_exactly(value: object) -> None:
    assert json.loads(to_json_text(value, 10**7)) == value
    assert jsonable(value) == value


@PROPERTY_SETTINGS
@given(odd_data, st.integers(min_value=0, max_value=3000))
def test_property_bounded_valid_never_raises(value: object, max_bytes: int) -> None:
    text = to_json_text(value, max_bytes)
    assert len(text.encode("utf-8")) <= max_bytes
    if max_bytes >= 2:
        json.loads(text, parse_constant=_reject_constant)
    out = to_text(value, max_bytes)
    assert len(out.encode("utf-8")) <= max_bytes
    args = arguments_text({"value": value, "other": 1}, max_bytes)
    assert len(args.encode("utf-8")) <= max_bytes
    if max_bytes >= 2:
        json.loads(args, parse_constant=_reject_constant)
    plain = jsonable(value)
    json.dumps(plain, allow_nan=False).encode("utf-8")


@PROPERTY_SETTINGS
@given(odd_data)
def test_property_unbounded_matches_jsonable(value: object) -> None:
    text = to_json_text(value, 10**7)
    assert json.loads(text) == jsonable(value)


@PROPERTY_SETTINGS
@given(json_data, st.integers(min_value=0, max_value=500))
def test_property_cut_plain_json_is_marked(value: object, max_bytes: int) -> None:
    full = to_json_text(value, 10**7)
    text = to_json_text(value, max_bytes)
    assert len(text.encode("utf-8")) <= max_bytes
    if len(full.encode("utf-8")) <= max_bytes:
        assert text == full
    elif max_bytes >= 16:
        assert "\u2026" in text  # something visibly marks the cut
    if max_bytes >= 2:
        json.loads(text)


@PROPERTY_SETTINGS
@given(st.text(st.characters(codec=None)), st.integers(min_value=0, max_value=300))
def test_property_to_text(value: str, max_bytes: int) -> None:
    out = to_text(value, max_bytes)
    assert len(out.encode("utf-8")) <= max_bytes
    clean = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if len(clean.encode("utf-8")) <= max_bytes:
        assert out == clean
    elif max_bytes >= 3:
        assert "\u2026" in out
        assert clean.startswith(out.split("\u2026")[0])
