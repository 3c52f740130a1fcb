"""Values larger than a tier accepts skip that tier, counted and logged; the others get them."""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

import pytest

from stratacache import cached_tiered
from stratacache.envelope import HEADER_SIZE
from stratacache.errors import ConfigurationError
from stratacache.keys import MAX_KEY_LENGTH
from stratacache.tiered import TieredCache
from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier


def blob(size: int) -> bytes:
    return os.urandom(size)  # incompressible, so the stored size follows the value's


def test_dynamodb_item_limit_is_real_and_just_respected(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    longest_key = "k" * MAX_KEY_LENGTH
    tier.set(longest_key, blob(tier.max_value_bytes), 60)  # the largest value allowed fits
    assert tier.get(longest_key) is not MISS
    with pytest.raises(Exception, match="Item size has exceeded"):
        tier.set("k", blob(410 * 1024), 60)  # the limit the tier keeps values under
    assert tier.max_value_bytes <= 400_000 - MAX_KEY_LENGTH
    smaller = DynamoDBTier(table_name, client=dynamodb_client, max_value_bytes=1000)
    assert smaller.max_value_bytes == 1000


def test_each_tier_skips_what_it_cannot_hold_and_the_others_keep_it(
    redis_client: Any, dynamodb_client: Any, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    l1 = MemoryTier(max_value_bytes=20_000)
    l2 = RedisTier(client=redis_client, max_value_bytes=100_000)
    l3 = DynamoDBTier(table_name, client=dynamodb_client)
    computed: Counter[int] = Counter()

    @cached_tiered(tiers=[l1, l2, l3], ttl=60, namespace="sizes")
    def payload(size: int) -> bytes:
        computed[size] += 1
        return blob(size)

    # JSON carries bytes as base64 (4/3 of the raw size) and zlib takes the 4/3 back off,
    # so an entry is stored in about its raw size.
    sizes = {"all": 10_000, "L2 and L3": 50_000, "L3 only": 200_000, "none": 420_000}
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        values = {name: payload(size) for name, size in sizes.items()}
    skipped = [r.getMessage() for r in caplog.records if "exceed its limit" in r.getMessage()]
    assert len(skipped) == 0 + 1 + 2 + 3
    assert all(" bytes exceed its limit of " in line for line in skipped)

    def holds(tier: Any, size: int) -> bool:
        return tier.get(payload.cache.full_key(payload.cache_key(size))) is not MISS

    assert [holds(l1, size) for size in sizes.values()] == [True, False, False, False]
    assert [holds(l2, size) for size in sizes.values()] == [True, True, False, False]
    assert [holds(l3, size) for size in sizes.values()] == [True, True, True, False]
    stats = payload.cache.stats()
    assert (stats["L1"]["errors"], stats["L2"]["errors"], stats["L3"]["errors"]) == (3, 2, 1)
    for name, size in sizes.items():
        assert payload(size) == values[name] or name == "none"  # each served by a tier that kept it
    assert computed[sizes["none"]] == 2  # nothing could hold it: computed again
    assert [computed[size] for size in list(sizes.values())[:3]] == [1, 1, 1]
    assert l2.breaker is not None
    assert l2.breaker.failures == 0  # a value too big is not a sick server


def test_set_many_leaves_out_only_the_oversize_items(redis_client: Any) -> None:
    l2 = RedisTier(client=redis_client, max_value_bytes=1_000)
    cache = TieredCache([MemoryTier(), l2], namespace="batch")
    large = blob(5_000)
    cache.set_many({"small": "x", "large": large})
    assert l2.get(cache.full_key("small")) is not MISS
    assert l2.get(cache.full_key("large")) is MISS
    assert cache.get("large") == large  # from L1
    assert cache.stats()["L2"]["errors"] == 1


def test_a_value_over_the_caches_own_limit_is_returned_and_left_uncached(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The decoder's limit (32 MiB by default) is also the largest value a cache writes.
    cache = TieredCache(
        [MemoryTier(), RedisTier(client=redis_client)], namespace="limit", max_value_bytes=1000
    )
    full_key = cache.full_key("report")
    computed: list[int] = []

    def report() -> str:
        computed.append(1)
        return "x" * 2000

    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert cache.get_or_compute("report", report) == "x" * 2000
        assert cache.get_or_compute("report", report) == "x" * 2000
    assert len(computed) == 2  # cached nowhere, L1 included
    assert redis_client.exists(full_key) == 0  # and its lease was given back
    refused = [r.getMessage() for r in caplog.records]
    assert len(refused) == 2
    assert all(full_key in line and "over the limit of 1000" in line for line in refused)


def test_memory_limit_alone_measures_the_serialized_size() -> None:
    cache = TieredCache([MemoryTier(max_value_bytes=100 + HEADER_SIZE)], namespace="mem")
    cache.set("fits", "a" * 90)
    cache.set("too-big", "a" * 200)
    cache.set("unserializable", object())  # no size to hold against it: kept
    assert cache.get("fits") == "a" * 90
    assert cache.get("too-big") is None
    assert cache.get("unserializable") is not None
    assert cache.stats()["L1"]["errors"] == 1


def test_max_value_bytes_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="max_value_bytes must be a positive"):
        MemoryTier(max_value_bytes=0)
    monkeypatch.setenv("STRATACACHE_REDIS_MAX_VALUE_BYTES", "2048")
    assert RedisTier("redis://127.0.0.1:1/0").max_value_bytes == 2048
    assert RedisTier("redis://127.0.0.1:1/0", max_value_bytes=10).max_value_bytes == 10
    monkeypatch.setenv("STRATACACHE_REDIS_MAX_VALUE_BYTES", "big")
    with pytest.raises(ConfigurationError, match="STRATACACHE_REDIS_MAX_VALUE_BYTES"):
        RedisTier("redis://127.0.0.1:1/0")
