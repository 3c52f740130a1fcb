"""Habits from functools and cachetools: cache_info(), cache_clear(), timedelta durations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from stratacache import ConfigurationError, MemoryTier, TieredCache, cached, cached_many
from stratacache.decorators import CacheInfo
from stratacache.freshness import Freshness


def test_cache_info_counts_hits_misses_and_l1_size() -> None:
    @cached(ttl=60, tier=MemoryTier(maxsize=10))
    def double(n: int) -> int:
        return 2 * n

    assert double.cache_info() == CacheInfo(hits=0, misses=0, maxsize=10, currsize=0)
    double(1)
    double(1)
    double(2)
    assert double.cache_info() == CacheInfo(hits=1, misses=2, maxsize=10, currsize=2)


def test_cache_clear_empties_the_functions_cache() -> None:
    calls: list[int] = []

    @cached(ttl=60)
    async def triple(n: int) -> int:
        calls.append(n)
        return 3 * n

    assert asyncio.run(triple(1)) == 3
    triple.cache_clear()
    assert asyncio.run(triple(1)) == 3
    assert calls == [1, 1]


def test_durations_may_be_timedeltas_wherever_seconds_are_taken() -> None:
    @cached(ttl=timedelta(minutes=5), grace=timedelta(seconds=30))
    def f(x: int) -> int:
        return x

    assert f.cache.default_ttl == 300.0
    assert f.cache._engine.chain.freshness.grace == 30.0
    cache = TieredCache(
        [MemoryTier(ttl=timedelta(hours=1))], ttl=timedelta(seconds=90), namespace="td",
        lock_lease=timedelta(seconds=3), generation_check=timedelta(seconds=2),
    )  # fmt: skip
    assert cache.default_ttl == 90.0
    assert cache.tiers[0].ttl == 3600.0
    cache = TieredCache([MemoryTier()], namespace="td")
    cache.set("k", "v", ttl=timedelta(seconds=20))
    assert cache.ttl("k") == pytest.approx(20, abs=1)
    assert cache.expire("k", timedelta(seconds=40))
    assert cache.ttl("k") == pytest.approx(40, abs=1)
    assert Freshness(grace=timedelta(seconds=5)).grace == 5.0

    @cached_many(ttl=timedelta(seconds=60), absent_ttl=timedelta(seconds=10), cache_absent=True)
    def many(ids: list[int]) -> dict[int, int]:
        return {i: i for i in ids if i}

    assert many([0, 1]) == {1: 1}
    with pytest.raises(ConfigurationError, match="ttl must be a positive"):
        TieredCache([MemoryTier()], ttl=timedelta(seconds=-1))
