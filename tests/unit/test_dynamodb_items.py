"""What ``DynamoDBTier`` makes of any item DynamoDB can hand back: our bytes, a miss, or foreign.

No server: ``_raw`` reads an item as boto3 returns it. The same shapes go through a real
table and ``TieredCache`` in ``tests/integration/test_faults_poison.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratacache.tiers import DynamoDBTier
from stratacache.tiers.base import MISS, Foreign
from tests.support import dynamodb_attribute_values

NOW = 1_700_000_000.0
TIER = DynamoDBTier("cache-table", clock=lambda: NOW)  # builds no client until one is needed


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    """An item at a cache key: ``v``, ``ver`` and ``ttl`` each absent or of any shape."""
    values = dynamodb_attribute_values()
    item: dict[str, Any] = {"pk": {"S": "ns:fn:key"}}
    ours = st.builds(lambda blob: {"B": blob}, st.binary(min_size=12, max_size=64))
    value = draw(st.none() | ours | values)
    if value is not None:
        item["v"] = value
    matching = [{"B": value["B"][4:12]}] if value is not None and "B" in value else []
    version = draw(st.none() | st.sampled_from([*matching, {"B": b"12345678"}]) | values)
    if version is not None:
        item["ver"] = version
    ttl = draw(
        st.none()
        | st.builds(lambda s: {"N": str(int(NOW + s))}, st.integers(-86_400, 86_400))
        | values
    )
    if ttl is not None:
        item["ttl"] = ttl
    return item


def _past_its_ttl(item: dict[str, Any]) -> bool:
    ttl = item.get("ttl", {})
    return "N" in ttl and float(ttl["N"]) <= NOW


def _ours(item: dict[str, Any]) -> bool:
    value, version = item.get("v", {}), item.get("ver", {})
    return isinstance(value.get("B"), bytes) and version == {"B": value["B"][4:12]}


@settings(max_examples=300, deadline=None)
@given(item=items())
def test_any_item_is_our_bytes_a_miss_or_foreign(item: dict[str, Any]) -> None:
    raw = TIER._raw(item)  # never raises
    if _past_its_ttl(item):
        assert raw is MISS
    elif _ours(item):
        assert raw == item["v"]["B"]
    else:
        assert isinstance(raw, Foreign)


def test_no_item_is_a_miss() -> None:
    assert TIER._raw(None) is MISS


@pytest.mark.parametrize(
    ("version", "expect"),
    [
        (None, None),  # no version attribute: the write expects none
        ({"B": b"12345678"}, b"12345678"),  # a Binary one: the write expects exactly it
        ({"S": "12345678"}, None),  # any other type: the write expects no Binary version
    ],
)
def test_a_foreign_item_says_what_a_write_must_expect_to_replace_it(
    version: dict[str, Any] | None, expect: bytes | None
) -> None:
    item: dict[str, Any] = {"pk": {"S": "k"}, "v": {"S": "another application's text"}}
    if version is not None:
        item["ver"] = version
    raw = TIER._raw(item)
    assert isinstance(raw, Foreign)
    assert raw.version == expect
