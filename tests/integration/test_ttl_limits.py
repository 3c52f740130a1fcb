"""The longest TTL is stored by every remote tier, and a tier clamps a longer lifetime
(one read back from a stored entry) instead of failing the write."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from stratacache.config import MAX_TTL
from stratacache.tiered import TieredCache
from stratacache.tiers import DynamoDBTier, RedisTier


def test_entries_with_the_longest_ttl_reach_redis_and_dynamodb(
    redis_tier: RedisTier, dynamodb_tier: DynamoDBTier
) -> None:
    writer = TieredCache([redis_tier, dynamodb_tier], namespace="longest")
    writer.set("k", {"v": 1}, ttl=MAX_TTL)
    assert writer.stats()["L2"]["errors"] == writer.stats()["L3"]["errors"] == 0
    for tier in (redis_tier, dynamodb_tier):
        reader = TieredCache([tier], namespace="longest")
        assert reader.get("k") == {"v": 1}
        left = reader.ttl("k")
        assert left is not None
        assert MAX_TTL - 60 < left <= MAX_TTL


@pytest.mark.parametrize("lifetime", [1e300, float(sys.maxsize), float("inf")])
def test_redis_clamps_a_lifetime_beyond_the_maximum(
    redis_tier: RedisTier, redis_client: Any, lifetime: float
) -> None:
    redis_tier.set("k", b"v", lifetime)
    redis_tier.set_many({"a": b"1"}, lifetime)
    assert redis_client.get("k") == b"v"
    for key in ("k", "a"):
        assert MAX_TTL * 1000 - 60_000 < redis_client.pttl(key) <= MAX_TTL * 1000


@pytest.mark.parametrize("lifetime", [1e300, float(sys.maxsize), float("inf")])
def test_dynamodb_clamps_a_lifetime_beyond_the_maximum(
    dynamodb_tier: DynamoDBTier, lifetime: float
) -> None:
    dynamodb_tier.set("k", b"v", lifetime)
    dynamodb_tier.set_many({"a": b"1"}, lifetime)
    assert dynamodb_tier.get_many(["k", "a"]) == [b"v", b"1"]
    for key in ("k", "a"):
        left = dynamodb_tier.remaining_ttl(key)
        assert isinstance(left, float)
        assert MAX_TTL - 60 < left <= MAX_TTL + 1
    assert float(time.time() + MAX_TTL) < 2**63 / 1000  # the envelope's u64 ms holds it
