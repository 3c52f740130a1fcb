"""``TieredCache.health_check()`` and ``close()`` on real servers."""

from __future__ import annotations

from typing import Any

import redis
from devkit.servers import RedisServer

from stratacache.breaker import CLOSED, OPEN, CircuitBreaker
from stratacache.tiered import TieredCache
from stratacache.tiers import DynamoDBTier, MemoryTier, RedisTier
from tests.support import wait_until


def test_all_tiers_healthy_and_the_probe_leaves_nothing_behind(
    redis_client: Any, dynamodb_client: Any, table_name: str
) -> None:
    l3 = DynamoDBTier(table_name, client=dynamodb_client)
    cache = TieredCache([MemoryTier(), RedisTier(client=redis_client), l3], namespace="health")
    report = cache.health_check()
    assert list(report) == ["L1", "L2", "L3"]
    for name, entry in report.items():
        assert entry["status"] == "ok", name
        assert entry["error"] is None
        assert entry["latency_ms"] >= 0
    assert (report["L1"]["breaker"], report["L2"]["breaker"]) == (None, CLOSED)
    assert redis_client.dbsize() == 0
    assert dynamodb_client.scan(TableName=table_name)["Items"] == []
    assert len(cache.tiers[0]) == 0  # type: ignore[arg-type]
    assert all(counts == {"hits": 0, "misses": 0, "errors": 0} for counts in _counts(cache))


def _counts(cache: TieredCache) -> list[dict[str, int]]:
    return [{k: v for k, v in s.items() if k != "size"} for s in cache.stats().values()]


def test_a_dead_tier_is_reported_and_feeds_its_breaker() -> None:
    server = RedisServer().start()
    url = server.url
    server.close()
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    cache = TieredCache([MemoryTier(), RedisTier(url, breaker=breaker)], namespace="dead")
    report = cache.health_check()
    assert report["L1"]["status"] == "ok"
    assert report["L2"]["status"] == "error"
    assert report["L2"]["error"].startswith("ConnectionError: ")
    assert "refused" in report["L2"]["error"]
    assert report["L2"]["breaker"] == "open"  # the failed probe fed it
    assert report["L2"]["breaker"] == OPEN


def test_a_healthy_probe_closes_an_open_breaker(redis_client: Any) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=600)
    cache = TieredCache([RedisTier(client=redis_client, breaker=breaker)], namespace="reopen")
    breaker.failure()
    assert breaker.state == OPEN
    report = cache.health_check()["L2"]
    del report["latency_ms"]
    assert report == {"status": "ok", "error": None, "breaker": CLOSED}


def test_close_releases_connections_and_the_cache_reconnects(redis_server: RedisServer) -> None:
    tier = RedisTier(redis_server.url, client_options={"client_name": "closing"})
    cache = TieredCache([tier], namespace="close")
    cache.set("k", 1)
    admin = redis.Redis.from_url(redis_server.url)

    def connected() -> bool:
        return any(c["name"] == "closing" for c in admin.client_list(_type="normal"))

    assert connected()
    cache.close()
    wait_until(lambda: not connected())
    assert cache.get("k") == 1
    assert connected()
    cache.close()
    admin.close()
