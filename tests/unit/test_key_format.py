"""The stored key format, pinned to the character.

Keys are digests of a canonical text form; a change to that form, however
harmless it looks, moves every key and orphans every entry already stored in
Redis and DynamoDB by the previous version. So each form is written out here:
changing one must be a deliberate, announced decision, never an accident.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import NamedTuple

import pytest

from stratacache import KeyBuildError
from stratacache.keys import MAX_DEPTH, KeyLayout, canonical, digest


class Color(enum.Enum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: str


@dataclasses.dataclass
class Row:
    a: int
    b: list[int]


HERE = __name__


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (None, "N"),
        (True, "T"),
        (False, "F"),
        (0, "i0;"),
        (255, "iff;"),
        (-1, "i-1;"),
        (10**30, "ic9f2c9cd04674edea40000000;"),
        (1.5, "f1.5;"),
        (-0.0, "f-0.0;"),
        (float("inf"), "finf;"),
        (float("nan"), "fnan;"),
        ("", "s0:"),
        ("a:b", "s3:a:b"),
        ("é", "s1:é"),
        (b"\x00\xff", "b00ff;"),
        (Color.RED, f"e{HERE}.Color.RED;"),
        (Decimal("1.10"), "Decimal(1.10);"),
        (uuid.UUID(int=1), "UUID(00000000-0000-0000-0000-000000000001);"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "datetime(2024-01-02T03:04:05);"),
        (dt.date(2024, 1, 2), "date(2024-01-02);"),
        (dt.time(1, 2, 3), "time(01:02:03);"),
        (dt.datetime(2024, 11, 3, 1, 30, fold=1), "datetime(2024-11-03T01:30:00|1);"),
        (dt.timedelta(days=1, seconds=2, microseconds=3), "timedelta(1,2,3);"),
        ([1, "a"], "l[i1;s1:a]"),
        ((1,), "t[i1;]"),
        ({"b": 1, "a": 2}, "d{s1:a=i2;s1:b=i1;}"),
        ({2, 1}, "S{i1;i2;}"),
        (frozenset({"x"}), "Z{s1:x}"),
        (Point(1, "y"), f"n{HERE}.Point[i1;s1:y]"),
        (Row(1, [2]), f"D{HERE}.Row(a=i1;b=l[i2;])"),
        ([[]], "l[l[]]"),
        ({}, "d{}"),
    ],
)
def test_the_canonical_form_of_each_kind_of_argument(value: object, form: str) -> None:
    assert canonical(value) == form


def test_the_digest_is_blake2b_of_16_bytes() -> None:
    assert digest("abc") == "cf4ab791c62b8d2b2109c90275287816"
    assert digest("\udc80") == digest("\udc80")  # a lone surrogate is digested, not refused


def test_the_layout_of_entries_and_generations() -> None:
    layout = KeyLayout(("stratacache", "app.quote"))
    assert layout.prefix == "stratacache:app.quote|"
    assert layout.generation_key == "stratacache:app.quote#gen"
    assert layout.key("a b") == "stratacache:app.quote|a%20b"


def test_unkeyable_values_are_refused_with_their_reason() -> None:
    loop: list[object] = []
    loop.append(loop)
    deep: list[object] = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(KeyBuildError, match=r"^the value contains itself$"):
        canonical(loop)
    with pytest.raises(KeyBuildError, match=rf"^the value is nested more than {MAX_DEPTH} levels"):
        canonical(deep)
    with pytest.raises(KeyBuildError, match=r"^the value is a object, which has no stable key$"):
        canonical(object())
    shared = [1]
    assert canonical([shared, shared]) == "l[l[i1;]l[i1;]]"  # shared, but no cycle


def test_nesting_up_to_the_limit_is_keyed() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH - 1):  # MAX_DEPTH lists in all
        deep = [deep]
    assert canonical(deep) == "l[" * MAX_DEPTH + "]" * MAX_DEPTH
