"""Batches on a real 3-master Redis Cluster cost one round trip per node involved, and a
cluster that is down or hung costs a call at most one timeout (no sleeps, no retries).

Round trips are counted per node in the calling process (``devkit.roundtrips``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from devkit.faults import RedisClusterServers, kill_hard, paused
from devkit.roundtrips import redis_round_trips, redis_round_trips_by_node
from redis.exceptions import TimeoutError as RedisTimeout

from stratacache import cached_many, cached_tiered
from stratacache.errors import PartialReadError
from stratacache.tiers import MISS, MemoryTier, RedisTier
from stratacache.tiers.base import ANY

pytestmark = pytest.mark.slow

IDS = list(range(100))
KEYS = [f"key-{i}" for i in IDS]


@pytest.fixture
def tier(cluster: RedisClusterServers) -> Iterator[RedisTier]:
    tier = RedisTier(cluster.url, cluster=True, key_prefix="b:")
    tier.client.flushall(target_nodes="primaries")
    yield tier
    tier.close()


def nodes_of(tier: RedisTier, keys: list[str]) -> set[str]:
    return {tier.client.get_node_from_key(tier.key_prefix + key).name for key in keys}


def test_batches_cost_one_round_trip_per_node(tier: RedisTier) -> None:
    assert len(nodes_of(tier, KEYS)) == 3
    with redis_round_trips_by_node() as trips:
        tier.set_many({key: key.encode() for key in KEYS}, 60)
    assert sorted(trips.values()) == [1, 1, 1]
    with redis_round_trips_by_node() as trips:
        assert tier.get_many(KEYS) == [key.encode() for key in KEYS]
    assert sorted(trips.values()) == [1, 1, 1]
    blob = b"SC\x03\x00" + b"v" * 8
    with redis_round_trips_by_node() as trips, redis_round_trips() as commands:
        assert tier.swap_many({key: (blob, ANY, 60) for key in KEYS}) == [True] * 100
    assert sorted(trips.values()) == [1, 1, 1]
    sent = [name for trip in commands for name in trip]
    assert sent.count("SCRIPT") == 3  # loaded once per node, in the same pipeline
    assert sent.count("EVALSHA") == 100
    with redis_round_trips_by_node() as trips:
        assert tier.delete_many(KEYS) == 100
    assert sorted(trips.values()) == [1, 1, 1]
    with redis_round_trips_by_node() as trips:
        assert tier.get_many(KEYS[:2]) == [MISS, MISS]
    assert sum(trips.values()) == len(nodes_of(tier, KEYS[:2]))  # only the nodes involved


def test_cached_many_full_miss_at_most_three_round_trips_per_node(tier: RedisTier) -> None:
    calls: list[list[int]] = []

    def environment() -> Any:
        @cached_many(tiers=[MemoryTier(), tier], ttl=60, namespace="fleet")
        def fetch(ids: list[int]) -> dict[int, str]:
            calls.append(list(ids))
            return {i: f"v{i}" for i in ids}

        return fetch

    first = environment()
    with redis_round_trips_by_node() as trips:
        assert first(IDS) == {i: f"v{i}" for i in IDS}
    assert calls == [IDS]
    assert len(trips) == 3
    assert max(trips.values()) <= 3, trips
    second = environment()  # a fresh environment: an empty L1, everything in L2
    with redis_round_trips_by_node() as trips:
        assert second(IDS) == {i: f"v{i}" for i in IDS}
    assert calls == [IDS]
    assert max(trips.values()) <= 2, trips
    with redis_round_trips_by_node() as trips:
        second.invalidate(IDS)
    # The tombstones, one pipeline per node; then the invalidation feed's entry, on the
    # node of the namespace's slot (it must not land before the tombstones).
    assert sorted(trips.values())[:-1] == [1] * (len(trips) - 1), trips
    assert max(trips.values()) <= 2, trips
    assert environment()(IDS) == {i: f"v{i}" for i in IDS}
    assert calls == [IDS, IDS]


def test_batched_conditional_writes_keep_their_condition_per_key(tier: RedisTier) -> None:
    old = b"SC\x03\x00" + b"o" * 8
    tier.set_many({key: old for key in KEYS[::2]}, 60)  # every other key already taken
    new = b"SC\x03\x00" + b"n" * 8
    # expect=None: only where nothing is there.
    done = tier.swap_many({key: (new, None, 60) for key in KEYS})
    assert done == [i % 2 == 1 for i in IDS]
    assert tier.get_many(KEYS) == [old if i % 2 == 0 else new for i in IDS]
    # expect=the old version: only where the old record still is.
    done = tier.swap_many({key: (new, b"o" * 8, 60) for key in KEYS})
    assert done == [i % 2 == 0 for i in IDS]
    assert tier.get_many(KEYS) == [new] * 100


def test_a_moved_slot_and_a_flushed_script_are_followed_once(tier: RedisTier) -> None:
    tier.set_many({key: b"1" for key in KEYS}, 60)
    manager = tier.client.nodes_manager
    slot = tier.client.keyslot(tier.key_prefix + KEYS[0])
    owner = manager.slots_cache[slot]
    other = next(node for node in tier.client.get_primaries() if node is not owner[0])
    manager.slots_cache[slot] = [other]  # the client's view is now wrong: MOVED
    assert tier.get_many(KEYS) == [b"1"] * 100
    assert manager.slots_cache[slot][0].name == owner[0].name  # learned from MOVED
    for node in tier.client.get_primaries():  # NOSCRIPT: sent again as EVAL
        tier.client.get_redis_connection(node).script_flush()
    new = b"SC\x03\x00" + b"n" * 8
    assert tier.swap_many({key: (new, ANY, 60) for key in KEYS}) == [True] * 100
    assert tier.get_many(KEYS) == [new] * 100


def test_a_node_that_fails_leaves_the_others_answering(
    cluster: RedisClusterServers, tier: RedisTier
) -> None:
    tier.set_many({key: b"1" for key in KEYS}, 60)
    quick = RedisTier(cluster.url, cluster=True, key_prefix="b:", socket_timeout=0.2)
    victim = cluster.servers[2]
    lost = {k for k in KEYS if quick.client.get_node_from_key("b:" + k).port == victim.port}
    with paused(victim):
        # The first call may ask the hung node first, and then no other: one timeout per call.
        with pytest.raises((PartialReadError, RedisTimeout)):
            quick.get_many(KEYS)
        # Now it is asked last: the others' answers are kept.
        with pytest.raises(PartialReadError) as raised:
            quick.get_many(KEYS)
    assert raised.value.failed == len(lost) > 0
    assert raised.value.found == [MISS if k in lost else b"1" for k in KEYS]
    assert quick.get_many(KEYS) == [b"1"] * 100  # the node is back
    quick.close()


def test_a_batch_waits_for_one_hung_node_at_most(
    cluster: RedisClusterServers, tier: RedisTier
) -> None:
    timeout = 0.4
    quick = RedisTier(cluster.url, cluster=True, key_prefix="b:", socket_timeout=timeout)
    quick.get_many(KEYS)  # a connection to every node
    with paused(cluster.servers[1]), paused(cluster.servers[2]):
        started = time.monotonic()
        with pytest.raises((PartialReadError, RedisTimeout)):
            quick.get_many(KEYS)
        took = time.monotonic() - started
    assert timeout <= took <= timeout * 1.1, took  # not one timeout per hung node
    quick.close()


def test_cluster_down_costs_one_timeout_per_call() -> None:
    timeout = 0.5
    with RedisClusterServers(3) as cluster:
        tier = RedisTier(cluster.url, cluster=True, socket_timeout=timeout, breaker=False)
        tier.ping()
        victim = cluster.servers[1]

        @cached_tiered(tiers=[tier], ttl=60)
        def echo(key: str) -> str:
            return key

        def port(key: str) -> int:
            return int(tier.client.get_node_from_key(echo.cache.full_key(echo.cache_key(key))).port)

        on_victim = [k for k in KEYS if port(k) == victim.port]
        elsewhere = [k for k in KEYS if port(k) != victim.port]
        tier.get_many(KEYS)  # a connection to every node

        sleeps: list[float] = []
        real_sleep = time.sleep

        def counted(seconds: float) -> None:
            sleeps.append(seconds)
            real_sleep(seconds)

        def timed(key: str) -> float:
            started = time.monotonic()
            echo.invalidate(key)
            return time.monotonic() - started

        # A hung master (SIGSTOP): one timeout for its keys, sent once, never retried.
        with paused(victim), mock.patch("time.sleep", counted):
            with redis_round_trips_by_node() as trips:
                took = timed(on_victim[0])
            assert timeout <= took <= timeout * 1.1, (took, trips, victim.port)
            assert trips == {f"127.0.0.1:{victim.port}": 1}
            # The next call reads the layout from a node that answers, then goes on.
            assert timed(elsewhere[0]) < timeout
        assert sleeps == []

        # A master gone, no replica: once the others agree, the cluster is down.
        kill_hard(victim)
        deadline = time.monotonic() + 30
        while b"cluster_state:fail" not in _cluster_info(cluster.servers[0].port):
            assert time.monotonic() < deadline, "the cluster never noticed its master was gone"
            time.sleep(0.2)
        with mock.patch("time.sleep", counted):
            for key in (on_victim[0], elsewhere[0], on_victim[1], elsewhere[1]):
                assert timed(key) <= timeout * 1.1
            assert echo("x") == "x"  # the function still answers
        assert sleeps == []
        tier.close()


def _cluster_info(port: int) -> bytes:
    import redis

    with redis.Redis(port=port) as client:
        info = client.execute_command("CLUSTER", "INFO")
    return info if isinstance(info, bytes) else str(info).encode()


def test_a_cluster_client_passed_in_gets_batches_per_node(cluster: RedisClusterServers) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(cluster.url)
    tier = RedisTier(client=client, cluster=True, key_prefix="own:")
    with redis_round_trips_by_node() as trips:
        tier.set_many({key: b"1" for key in KEYS}, 60)
        assert tier.get_many(KEYS) == [b"1"] * 100
        assert (
            tier.swap_many({key: (b"SC\x03\x00" + b"v" * 8, ANY, 60) for key in KEYS})
            == [True] * 100
        )
    assert sorted(trips.values()) == [3, 3, 3]
    assert tier.delete_many(KEYS) == 100
    tier.close()  # a client passed in is left to its owner
    assert client.get("own:" + KEYS[0]) is None
    client.close()
