"""Values survive the trip through bytes exactly, and nothing foreign is ever trusted."""

from __future__ import annotations

import datetime as dt
import math
import pickle
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratacache import ConfigurationError, SerializationError
from stratacache.serialization import JsonSerializer, PickleSerializer


def same(a: object, b: object) -> bool:
    """Equal and of the same type all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    if isinstance(a, list | tuple):
        assert isinstance(b, list | tuple)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        if a.keys() != b.keys():
            return False
        b_keys = {k: k for k in b}
        return all(same(k, b_keys[k]) and same(v, b[k]) for k, v in a.items())
    if isinstance(a, set | frozenset):
        return a == b and sorted(map(repr, a)) == sorted(map(repr, b))
    if isinstance(a, dt.datetime | dt.time):
        return repr(a) == repr(b)  # equality ignores fold and the zone's form
    return a == b


timezones = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))])
hashable = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.datetimes(timezones=timezones),
    st.times(timezones=timezones),
    st.timedeltas(),
    st.uuids(),
)
values = st.recursive(
    st.one_of(hashable, st.floats()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(hashable, inner, max_size=3),
        st.sets(hashable, max_size=4),
        st.frozensets(hashable, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_json_round_trips_exactly(value: object) -> None:
    s = JsonSerializer()
    assert same(s.loads(s.dumps(value)), value)


@settings(max_examples=100, deadline=None)
@given(value=values)
def test_signed_pickle_round_trips_exactly(value: object) -> None:
    s = PickleSerializer(signing_key=b"0123456789abcdef")
    assert same(s.loads(s.dumps(value)), value)


@given(value=st.dictionaries(st.text(), st.integers()))
def test_equal_values_serialize_to_equal_bytes_whatever_the_set_order(
    value: dict[str, int],
) -> None:
    s = JsonSerializer()
    assert s.dumps(set(value)) == s.dumps(set(reversed(list(value))))


@pytest.mark.parametrize(
    "tricky",
    [
        {"$tuple": [1, 2]},  # a user dict that looks like one of our tags
        {"$dict": []},
        {1: "a", "1": "b"},
        {(1, 2): frozenset({"x"})},
        [Decimal("1.10"), Decimal("-0"), math.inf, -math.inf],
        dt.datetime(2026, 11, 22, 8, 30, tzinfo=dt.UTC),
    ],
)
def test_tricky_values_round_trip(tricky: object) -> None:
    s = JsonSerializer()
    assert same(s.loads(s.dumps(tricky)), tricky)


def test_the_json_serializer_refuses_what_it_cannot_hold_by_name() -> None:
    class Custom:
        pass

    with pytest.raises(SerializationError, match=r"Custom.*PickleSerializer"):
        JsonSerializer().dumps({"a": [Custom()]})


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b"", "not a document"),
        (b"{", "does not parse"),
        (b"\xff", "does not parse"),
        (b"[" * 100_000, "does not parse"),
        (b"]", "not a document"),
        (b'{"a":1}{"b":2}', "extra data at 7"),
        (b"1 ", "extra data at 1"),
        (b'[{"$set":[1]}] x', "extra data"),
    ],
)
def test_stored_json_that_is_not_one_document_is_refused_by_name(
    stored: bytes, problem: str
) -> None:
    with pytest.raises(SerializationError, match=problem):
        JsonSerializer().loads(stored)


# ---------------------------------------------------------------- signed pickle


def test_pickle_needs_a_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="STRATACACHE_SIGNING_KEY"):
        PickleSerializer()
    with pytest.raises(ConfigurationError, match="16 bytes"):
        PickleSerializer(signing_key="short")
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", "a-key-from-the-environment")
    assert PickleSerializer().loads(PickleSerializer().dumps(3j)) == 3j


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, ("raise SystemExit('pickle ran code')",))


def test_an_unsigned_pickle_is_refused_without_running_it() -> None:
    s = PickleSerializer(signing_key=b"0123456789abcdef")
    with pytest.raises(SerializationError, match="signature"):
        s.loads(b"\x00" * 32 + pickle.dumps(_Exploit()))


def test_a_pickle_signed_with_another_key_is_refused() -> None:
    ours = PickleSerializer(signing_key=b"0123456789abcdef")
    theirs = PickleSerializer(signing_key=b"fedcba9876543210")
    with pytest.raises(SerializationError, match="signature"):
        ours.loads(theirs.dumps("hello"))


def test_a_tampered_pickle_is_refused() -> None:
    s = PickleSerializer(signing_key=b"0123456789abcdef")
    blob = bytearray(s.dumps({"admin": False}))
    blob[-3] ^= 0x01
    with pytest.raises(SerializationError, match="signature"):
        s.loads(bytes(blob))


def test_the_signing_key_never_shows_in_repr() -> None:
    assert "0123456789abcdef" not in repr(PickleSerializer(signing_key=b"0123456789abcdef"))
