"""The bounds of the invalidation guarantee, as the README states them."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, RedisTier, TieredCache, cached_tiered
from stratacache._engine import TOMBSTONE_TTL
from stratacache.envelope import TOMBSTONE
from tests.support import FakeClock


def test_a_tombstone_is_kept_900_seconds_and_a_shorter_write_does_not_shorten_that(
    redis_client: Any,
) -> None:
    clock = FakeClock()  # the cache's own clock: lifetimes it reports are exact
    cache = TieredCache([RedisTier(client=redis_client)], namespace="bounds", ttl=10, clock=clock)
    key = cache.full_key("k")
    cache.set("k", "v1")
    cache.delete("k")
    assert TOMBSTONE_TTL == 900
    assert 899_000 < redis_client.pttl(key) <= 900_000
    assert cache._engine.chain.codec.decode(key, redis_client.get(key)).kind == TOMBSTONE
    assert cache.get_or_compute("k", lambda: "v2") == "v2"  # a fill with a 10 s ttl
    # still kept as long as the tombstone (lifetimes are rounded up to the millisecond)
    assert 899_000 < redis_client.pttl(key) <= 900_001
    assert cache.ttl("k") == pytest.approx(10)  # served for its own 10 s only


def test_a_call_older_than_a_tombstones_life_writes_to_no_shared_tier(redis_client: Any) -> None:
    monotonic = FakeClock(0)
    cache = TieredCache(
        [MemoryTier(), RedisTier(client=redis_client)], namespace="old", monotonic=monotonic
    )
    key = cache.full_key("k")
    call = cache._engine.chain.begin()
    monotonic.advance(TOMBSTONE_TTL + 1)  # a call that began over 900 s ago
    cache._engine.chain.write(key, "late", call)
    assert redis_client.get(key) is None  # it could no longer tell what it would overwrite
    assert cache.tiers[0].get(key) == "late"  # its own environment's memory still takes it


def test_another_environments_l1_copy_lasts_at_most_its_l1_lifetime(redis_client: Any) -> None:
    version = [1]
    timer = FakeClock()

    def environment() -> Any:
        @cached_tiered(
            ttl=300,
            tiers=[MemoryTier(ttl=30, timer=timer), RedisTier(client=redis_client)],
            namespace="l1-bound",
        )
        def price(sku: str) -> str:
            return f"{sku}@v{version[0]}"

        return price

    here, there = environment(), environment()
    assert here("x") == there("x") == "x@v1"  # there holds a copy in its L1
    version[0] = 2
    here.invalidate("x")
    assert here("x") == "x@v2"
    assert there("x") == "x@v1"  # its L1 copy, within its 30 s L1 lifetime
    timer.advance(31)
    assert there("x") == "x@v2"  # then from L2, where the invalidation left its mark


def test_the_generation_never_goes_back_after_a_flush(redis_client: Any) -> None:
    cache = TieredCache([MemoryTier(), RedisTier(client=redis_client)], namespace="gen")
    for _ in range(3):
        cache.invalidate_all()
    assert cache._engine.chain.generation.value == 3
    cache.set("k", "written under generation 3")
    redis_client.delete(cache._layout.generation_key)  # lost: a flush, an eviction
    cache.invalidate_all()
    assert cache._engine.chain.generation.value == 4  # past the highest seen, not back to 1
    assert int(redis_client.get(cache._layout.generation_key)) == 4
    assert cache.get("k") is None  # the generation-3 entry stays unreachable
