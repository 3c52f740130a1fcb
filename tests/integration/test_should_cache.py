"""``should_cache`` with a shared tier: a refused value gives its lease back and writes nothing."""

from __future__ import annotations

from typing import Any

from stratacache import MemoryTier, RedisTier, TieredCache
from tests.support import entry_keys


def test_a_refused_value_leaves_neither_value_nor_lease_in_redis(
    redis_tier: RedisTier, redis_client: Any
) -> None:
    cache = TieredCache([MemoryTier(), redis_tier], ttl=60, namespace="hook")
    key = "k"
    seen_in_redis: list[int] = []

    def compute() -> str:
        seen_in_redis.append(len(entry_keys(redis_client)))  # the lease, while it computes
        return "refused"

    assert cache.get_or_compute(key, compute, should_cache=lambda value: False) == "refused"
    assert seen_in_redis == [1]
    assert entry_keys(redis_client) == []  # the lease was given back, nothing was written
    # Another environment computes at once instead of waiting on a lease left behind.
    other = TieredCache([MemoryTier(), redis_tier], ttl=60, namespace="hook", lock_wait=600)
    assert other.get_or_compute(key, lambda: "kept", should_cache=lambda value: True) == "kept"
    assert TieredCache([redis_tier], ttl=60, namespace="hook").get("k") == "kept"
