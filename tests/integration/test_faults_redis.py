"""Redis faults on a real server process of each test's own: killed, hung, connections cut.

Every test here starts its own server, because it kills, stops or cuts it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import pytest
import redis
from devkit.faults import Proxy, kill_hard, paused
from devkit.roundtrips import redis_round_trips
from devkit.servers import RedisServer

from stratacache import cached_tiered
from stratacache.breaker import CLOSED, OPEN, CircuitBreaker
from stratacache.tiers import MemoryTier, RedisTier
from tests.support import FakeClock, wait_until

pytestmark = pytest.mark.slow


def test_sigkill_midway_through_2000_calls(own_redis_server: RedisServer) -> None:
    clock = FakeClock(0)
    breaker = CircuitBreaker(threshold=3, cooldown=0.5, clock=clock)
    tier = RedisTier(own_redis_server.url, breaker=breaker)
    computed: Counter[int] = Counter()

    # L1 holds 8 entries and the calls cycle over 40 arguments, so L2 serves the repeats.
    @cached_tiered(tiers=[MemoryTier(maxsize=8), tier], ttl=60, namespace="sigkill")
    def square(n: int) -> dict[str, int]:
        computed[n] += 1
        return {"n": n, "square": n * n}

    stats = square.cache.stats
    calls, kill_at, restart_at = 2100, 700, 1300
    l2_hits_at_restart = 0
    calls_until_a_hit = 0
    for i in range(calls):
        if i == kill_at:
            l2_hits_before_kill = stats()["L2"]["hits"]
            kill_hard(own_redis_server)
        if i == restart_at:
            own_redis_server.start()
            clock.advance(breaker.cooldown)  # the breaker's cool-down is over
            l2_hits_at_restart = stats()["L2"]["hits"]
        n = i % 40
        assert square(n) == {"n": n, "square": n * n}  # never an exception, always right
        if i >= restart_at and stats()["L2"]["hits"] == l2_hits_at_restart:
            calls_until_a_hit += 1

    assert l2_hits_before_kill >= kill_at - 40 - 1  # healthy: everything but first sights
    assert l2_hits_at_restart == l2_hits_before_kill  # nothing came from a dead server
    assert stats()["L2"]["errors"] > 0
    assert breaker.opened >= 1
    # Once the cool-down is over, the next call probes and closes the breaker; the first
    # pass over the 40 arguments then rewrites L2, and the second is served from it.
    assert calls_until_a_hit <= 40 + 8 + 1
    assert breaker.state == CLOSED
    assert own_redis_server.proc is not None
    assert redis.Redis.from_url(own_redis_server.url).dbsize() == 40  # rewritten after the restart


def test_sigstop_hang_is_bounded_then_skipped_then_recovers(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 0.3
    breaker = CircuitBreaker(threshold=3, cooldown=1.0)
    tier = RedisTier(
        own_redis_server.url, socket_timeout=timeout, connect_timeout=timeout, breaker=breaker
    )

    @cached_tiered(tiers=[tier], ttl=60, namespace="sigstop")  # L2 only: every call asks Redis
    def echo(n: int) -> int:
        return n

    def trips(n: int) -> int:
        """Everything one call sends to Redis, connection handshakes included."""
        with redis_round_trips(handshakes=True) as sent:
            assert echo(n) == n
        return len(sent)

    def timeouts(n: int) -> int:
        """The tier operations of one call that timed out."""
        before = len(caplog.records)
        assert echo(n) == n
        return sum("Timeout" in r.getMessage() for r in caplog.records[before:])

    echo(0)
    assert trips(0) == 1  # healthy: one GET
    with caplog.at_level(logging.WARNING, logger="stratacache"), paused(own_redis_server):
        until_open = [timeouts(n) for n in range(1, 1 + breaker.threshold)]
        assert breaker.state == OPEN
        assert breaker.failures == breaker.threshold
        while_open = [trips(n) for n in range(100, 120)]
    assert until_open == [1] * breaker.threshold  # the read; never the lease or the write too
    assert while_open == [0] * 20  # no network at all, not even a connection
    assert sum("Timeout" in r.getMessage() for r in caplog.records) == breaker.threshold

    time.sleep(breaker.cooldown)
    assert echo(7) == 7  # the probe: a miss on the healthy server, then written
    assert breaker.state == CLOSED
    hits = echo.cache.stats()["L2"]["hits"]
    assert echo(7) == 7
    assert echo.cache.stats()["L2"]["hits"] == hits + 1


def _counting(tier: RedisTier, namespace: str) -> tuple[Any, Counter[int]]:
    computed: Counter[int] = Counter()

    @cached_tiered(tiers=[tier], ttl=60, namespace=namespace)
    def tenfold(n: int) -> int:
        computed[n] += 1
        return n * 10

    return tenfold, computed


def test_connections_killed_by_the_server_between_calls(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    tier = RedisTier(own_redis_server.url)
    tenfold, computed = _counting(tier, "clientkill")
    admin = redis.Redis.from_url(own_redis_server.url)
    for n in range(5):
        tenfold(n)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for _ in range(5):
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            assert [tenfold(n) for n in range(5)] == [0, 10, 20, 30, 40]
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            tenfold.cache.set_many({"a": 1, "b": 2})  # a pipeline on a dead connection
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            assert tenfold.cache.get_many(["a", "b"]) == {"a": 1, "b": 2}  # MGET likewise
    stats = tenfold.cache.stats()["L2"]
    assert stats["errors"] == 0
    assert stats["misses"] == 5  # only the first sight of each argument
    assert set(computed.values()) == {1}
    assert not caplog.records


def test_idle_connection_closed_by_server_timeout_is_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The Lambda freeze: the server drops connections idle longer than `timeout` seconds.
    with RedisServer(None, "--timeout", "1") as server:
        tier = RedisTier(server.url, client_options={"client_name": "frozen"})
        tenfold, computed = _counting(tier, "idle")
        assert tenfold(3) == 30
        admin = redis.Redis.from_url(server.url)

        def connected() -> bool:
            return any(c["name"] == "frozen" for c in admin.client_list(_type="normal"))

        assert connected()
        wait_until(lambda: not connected())  # the server dropped the idle connection
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            assert tenfold(3) == 30
        assert tenfold.cache.stats()["L2"] == {"hits": 1, "misses": 1, "errors": 0}
        assert computed[3] == 1
        assert not caplog.records


def test_connection_that_dies_on_first_use_is_replaced_once(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A connection that looks alive in the pool but is dropped when a command is
    # sent (a NAT that forgot it during a freeze): only a retry can save the call.
    with Proxy(own_redis_server.port) as proxy:
        bare = redis.Redis.from_url(proxy.url)  # redis-py's from_url default: no retry
        bare.set("k", b"v")
        proxy.sever_next()
        with pytest.raises(redis.ConnectionError):
            bare.get("k")  # the fault is real

        tier = RedisTier(proxy.url)
        tenfold, computed = _counting(tier, "sever")
        assert tenfold(4) == 40
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            for _ in range(3):
                proxy.sever_next()
                assert tenfold(4) == 40
        assert proxy.severed == 4
        assert tenfold.cache.stats()["L2"] == {"hits": 3, "misses": 1, "errors": 0}
        assert computed[4] == 1
        assert not caplog.records


def test_timeouts_from_the_environment(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_TIMEOUT", "0.4")
    tier = RedisTier(own_redis_server.url)
    assert (tier.socket_timeout, tier.connect_timeout) == (0.4, 0.4)
    tier.get("k")
    kwargs = tier.client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.4, 0.4)
    assert (
        RedisTier(own_redis_server.url, socket_timeout=0.1).socket_timeout == 0.1
    )  # argument wins
    tier.close()


def test_async_functions_fail_open_too(own_redis_server: RedisServer) -> None:
    import asyncio

    breaker = CircuitBreaker(threshold=2, cooldown=60)
    tier = RedisTier(own_redis_server.url, breaker=breaker)

    @cached_tiered(tiers=[tier], ttl=60, namespace="async")
    async def triple(n: int) -> int:
        await asyncio.sleep(0)
        return n * 3

    async def run() -> list[int]:
        return [await triple(n) for n in range(10)]

    assert asyncio.run(run()) == [n * 3 for n in range(10)]
    assert asyncio.run(run()) == [n * 3 for n in range(10)]
    assert triple.cache.stats()["L2"]["hits"] == 10  # the second round came from Redis
    kill_hard(own_redis_server)
    assert asyncio.run(run()) == [n * 3 for n in range(10)]  # computed, not failed
    assert breaker.state == OPEN
    assert triple.cache.stats()["L2"]["hits"] == 10
