"""RedisTier against a real 3-master Redis Cluster on loopback (same server binary, built
with its CLI): single and batch operations across hash slots and nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devkit.faults import RedisClusterServers
from redis.exceptions import RedisClusterException, ResponseError

from stratacache import cached_tiered
from stratacache.tiered import TieredCache
from stratacache.tiers import MISS, MemoryTier, RedisTier, tiers_from_env

pytestmark = pytest.mark.slow


@pytest.fixture
def tier(redis_cluster: RedisClusterServers) -> Iterator[RedisTier]:
    tier = RedisTier(redis_cluster.url, cluster=True, key_prefix="t:")
    tier.client.flushall(target_nodes="primaries")
    yield tier
    tier.close()


KEYS = [f"key-{i}" for i in range(60)]


def test_keys_really_spread_over_the_three_masters(tier: RedisTier) -> None:
    nodes = {tier.client.get_node_from_key(tier.key_prefix + key).name for key in KEYS}
    assert len(nodes) == 3
    with pytest.raises((RedisClusterException, ResponseError)):
        tier.client.mget([tier.key_prefix + key for key in KEYS])  # the fault being avoided


def test_single_operations_across_slots(tier: RedisTier) -> None:
    for key in KEYS:
        tier.set(key, key.encode(), 60)
    assert [tier.get(key) for key in KEYS] == [key.encode() for key in KEYS]
    left = tier.remaining_ttl(KEYS[7])
    assert isinstance(left, float)
    assert 0 < left <= 60
    assert tier.delete(KEYS[0]) is True
    assert tier.get(KEYS[0]) is MISS


def test_batch_operations_across_slots(tier: RedisTier) -> None:
    tier.set_many({key: key.encode() for key in KEYS}, 60)
    assert tier.get_many(KEYS) == [key.encode() for key in KEYS]
    assert tier.get_many(["absent", KEYS[3]]) == [MISS, KEYS[3].encode()]
    assert tier.delete_many(KEYS[:20]) == 20
    assert tier.get_many(KEYS[:20]) == [MISS] * 20
    assert tier.clear("key-") == 40
    assert tier.get_many(KEYS) == [MISS] * 60


def test_the_cache_and_decorator_over_a_cluster(tier: RedisTier) -> None:
    cache = TieredCache([MemoryTier(), tier], namespace="clustered")
    cache.set_many({key: {"k": key} for key in KEYS})
    fresh = TieredCache([MemoryTier(), tier], namespace="clustered")  # empty L1
    assert fresh.get_many(KEYS) == {key: {"k": key} for key in KEYS}
    assert fresh.stats()["L2"] == {"hits": 60, "misses": 0, "errors": 0}
    fresh.delete_many(KEYS[:30])
    assert len(cache.get_many(KEYS)) == 60  # cache's own L1 still holds them
    fresh.clear()
    assert TieredCache([tier], namespace="clustered").get_many(KEYS) == {}

    @cached_tiered(tiers=[tier], ttl=60, namespace="clustered-fn")
    def length(word: str) -> int:
        return len(word)

    assert [length(key) for key in KEYS] == [len(key) for key in KEYS]
    assert [length(key) for key in KEYS] == [len(key) for key in KEYS]
    assert length.cache.stats()["L2"] == {"hits": 60, "misses": 60, "errors": 0}
    report = length.cache.health_check()
    assert report["L2"]["status"] == "ok"


def test_cluster_mode_from_the_environment(
    redis_cluster: RedisClusterServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("STRATACACHE_REDIS_CLUSTER", "true")
    _, l2 = tiers_from_env()
    assert isinstance(l2, RedisTier)
    assert l2.cluster is True
    assert "cluster" in repr(l2)
    l2.set_many({key: b"1" for key in KEYS}, 30)
    assert l2.get_many(KEYS) == [b"1"] * 60
    assert l2.delete_many(KEYS) == 60
    l2.close()
