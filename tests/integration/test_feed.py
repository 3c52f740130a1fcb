"""The invalidation feed: another environment's L1 follows every invalidation within the bound.

The warm environment is a real process (:class:`devkit.environment.Environment`)
with ``STRATACACHE_GENERATION_CHECK`` at 0.5 s, holding ``"k"`` in its L1; this
test process is the environment that invalidates. The promise is about time:
after an invalidation returns, no call that begins more than the check period
later, anywhere, is served a value from before it. So each test waits past
the period once, then asserts what the very next call is served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devkit.environment import Environment
from devkit.faults import RedisClusterServers
from devkit.roundtrips import redis_round_trips
from devkit.servers import RedisServer

from stratacache import MemoryTier, RedisTier, Tier, TieredCache, cached_tiered
from stratacache._engine.feed import READ
from stratacache.tiers import DynamoDBTier
from stratacache.tiers.base import FEED_KEEP
from tests.support import FakeClock

CHECK = 0.5
PAST_THE_BOUND = 2 * CHECK

OPERATIONS: dict[str, Callable[[TieredCache], object]] = {
    "invalidate": lambda cache: cache.invalidate("k"),
    "delete": lambda cache: cache.delete("k"),
    "refresh": lambda cache: cache._engine.refresh(cache.full_key("k"), lambda: "v2"),
    "invalidate_many": lambda cache: cache.delete_many(["k", "other"]),
    "invalidate_all": lambda cache: cache.invalidate_all(),
    "clear": lambda cache: cache.clear(),
}


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    path = tmp_path / "origin"
    path.write_text("v1")
    return path


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    return f"feed-{request.node.name}"


@pytest.fixture
def warm(
    redis_client: Any, redis_server: RedisServer, origin: Path, namespace: str
) -> Iterator[Environment]:
    """Another environment, its L1 holding ``"k"`` = v1 (and reading it again from there)."""
    with Environment(redis_server.url, namespace, origin, CHECK) as environment:
        assert environment.read() == "v1"  # computed, written to L2, copied into L1
        assert environment.read() == "v1"
        assert environment.stats()["L1"]["hits"] == 1
        yield environment


@pytest.fixture
def here(redis_client: Any, namespace: str) -> TieredCache:
    """This environment: the one that invalidates."""
    tiers: list[Tier] = [MemoryTier(), RedisTier(client=redis_client)]
    return TieredCache(tiers, namespace=namespace, ttl=300, generation_check=CHECK)


def feed_name(cache: TieredCache) -> str:
    return cache._engine.chain.layout.feed_key


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_warm_environment_serves_the_new_value_once_the_bound_has_passed(
    operation: str, warm: Environment, here: TieredCache, origin: Path
) -> None:
    origin.write_text("v2")
    OPERATIONS[operation](here)
    time.sleep(PAST_THE_BOUND)
    assert warm.read() == "v2"


@pytest.mark.parametrize("operation", ["invalidate", "refresh", "delete"])
def test_an_environment_frozen_across_the_invalidation_is_served_the_new_value_when_thawed(
    operation: str, warm: Environment, here: TieredCache, origin: Path
) -> None:
    warm.freeze()
    try:
        origin.write_text("v2")
        OPERATIONS[operation](here)
        time.sleep(PAST_THE_BOUND)
    finally:
        warm.thaw()
    assert warm.read() == "v2"  # its first call after the thaw checks the feed


def test_a_place_trimmed_out_of_the_feed_drops_the_whole_namespace_from_l1(
    warm: Environment, here: TieredCache, origin: Path, redis_client: Any
) -> None:
    warm.freeze()
    try:
        origin.write_text("v2")
        here.invalidate("k")
        feed = feed_name(here)
        for n in range(10):
            redis_client.xadd(feed, {"k": f"{here.namespace}|unrelated-{n}"})
        # Its place and the entry for "k" are gone: only unrelated entries remain.
        redis_client.xtrim(feed, maxlen=5, approximate=False)
        time.sleep(PAST_THE_BOUND)
    finally:
        warm.thaw()
    assert warm.read() == "v2"


def test_more_entries_since_the_last_check_than_one_read_takes_drop_the_whole_namespace(
    warm: Environment, here: TieredCache, origin: Path, redis_client: Any
) -> None:
    warm.freeze()
    try:
        feed = feed_name(here)
        pipe = redis_client.pipeline(transaction=False)
        for n in range(READ + 10):  # the entry for "k" lies beyond one read
            pipe.xadd(feed, {"k": f"{here.namespace}|unrelated-{n}"})
        pipe.execute()
        origin.write_text("v2")
        here.invalidate("k")
        time.sleep(PAST_THE_BOUND)
    finally:
        warm.thaw()
    assert warm.read() == "v2"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_feed_lost_with_a_flushed_redis_drops_the_whole_namespace_from_l1(
    when: str, warm: Environment, here: TieredCache, origin: Path, redis_client: Any
) -> None:
    warm.freeze()
    try:
        origin.write_text("v2")
        if when == "before":
            redis_client.flushall()  # the invalidation then starts a new feed
        here.invalidate("k")
        if when == "after":
            redis_client.flushall()  # no feed, no tombstone: only the lost place tells
        time.sleep(PAST_THE_BOUND)
    finally:
        warm.thaw()
    assert warm.read() == "v2"


def test_the_feed_is_a_bounded_stream_in_redis(here: TieredCache, redis_client: Any) -> None:
    for n in range(FEED_KEEP + 300):
        here.invalidate(f"k{n}")
    length = redis_client.xlen(feed_name(here))
    assert FEED_KEEP <= length < FEED_KEEP + 300  # MAXLEN ~ trims whole nodes
    assert redis_client.ttl(feed_name(here)) == -1  # no volatile-* policy can evict it


# ---------------------------------------------------------------- round trips


def test_an_l1_hit_whose_check_is_due_costs_one_round_trip_for_generation_and_feed(
    redis_client: Any,
) -> None:
    clock = FakeClock()
    tiers: list[Tier] = [MemoryTier(), RedisTier(client=redis_client)]
    cache = TieredCache(tiers, namespace="trips", ttl=300, generation_check=CHECK, clock=clock)
    cache.set("k", "v")
    assert cache.get("k") == "v"
    with redis_round_trips() as trips:
        assert cache.get("k") == "v"
    assert trips == []  # not due: L1 alone
    clock.advance(CHECK + 0.001)
    with redis_round_trips() as trips:
        assert cache.get("k") == "v"
    assert trips == [["GET", "XRANGE"]]  # the generation and the feed, pipelined


def test_the_decorators_fast_path_follows_the_feed_in_the_same_round_trip(
    redis_client: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    version = ["v1"]
    tiers: list[Tier] = [MemoryTier(timer=clock), RedisTier(client=redis_client)]

    @cached_tiered(ttl=300, tiers=tiers, namespace="feed-decorated")
    def price(sku: str) -> str:
        return version[0]

    chain = price.cache._engine.chain
    chain.generation.clock = clock
    monkeypatch.setattr(chain.generation, "check_every", CHECK)
    assert price("a") == "v1"
    elsewhere = TieredCache(
        [MemoryTier(), RedisTier(redis_server.url)], namespace=price.cache._parts
    )
    version[0] = "v2"
    assert elsewhere.invalidate(price.cache_key("a"))
    elsewhere.close()
    with redis_round_trips() as trips:
        assert price("a") == "v1"  # within the bound L1 may answer
    assert trips == []
    clock.advance(CHECK + 0.001)
    with redis_round_trips() as trips:
        assert price("a") == "v2"
    assert trips[0] == ["GET", "XRANGE"]


def test_a_chain_whose_only_shared_tier_is_dynamodb_keeps_no_feed(
    dynamodb_client: Any, table_name: str
) -> None:
    cache = TieredCache([MemoryTier(), DynamoDBTier(table_name, client=dynamodb_client)])
    assert cache._engine.chain.feed is None


# ---------------------------------------------------------------- Redis Cluster


@pytest.mark.slow
def test_each_namespace_has_its_own_feed_in_its_own_slot_of_a_cluster(
    cluster: RedisClusterServers,
) -> None:
    clock = FakeClock()
    admin = RedisTier(cluster.url, cluster=True, key_prefix="t:")
    admin.client.flushall(target_nodes="primaries")

    def environment(namespace: str) -> TieredCache:
        tiers: list[Tier] = [MemoryTier(), RedisTier(cluster.url, cluster=True, key_prefix="t:")]
        return TieredCache(tiers, namespace=namespace, ttl=300, generation_check=CHECK, clock=clock)

    warm = {namespace: environment(namespace) for namespace in ("prices", "stock")}
    for namespace, cache in warm.items():
        assert cache.get_or_compute("k", lambda namespace=namespace: f"{namespace}-v1") == (
            f"{namespace}-v1"
        )
    other = environment("prices")
    assert other.invalidate("k")
    clock.advance(CHECK + 0.001)
    assert warm["prices"].get_or_compute("k", lambda: "prices-v2") == "prices-v2"
    assert warm["stock"].get_or_compute("k", lambda: "stock-v2") == "stock-v1"  # kept
    assert warm["stock"].stats()["L1"]["hits"] == 1
    client = admin.client
    for namespace, cache in warm.items():
        feed = "t:" + feed_name(cache)
        assert client.keyslot(feed) == client.keyslot("{" + namespace + "}")
        assert client.exists(feed) == 1
    entries = client.xrange("t:" + feed_name(other))
    assert [list(fields.values()) for _, fields in entries][-1] == [b"prices|k"]
    for cache in (*warm.values(), other):
        cache.close()
    admin.close()


def test_the_streams_invalidator_records_what_it_invalidates_in_the_feed(
    redis_client: Any,
) -> None:
    from stratacache.streams import streams_invalidator

    @cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="q")
    def quote(symbol: str) -> str:
        return symbol

    quote("AMZN")
    handler = streams_invalidator(lambda change: [(quote, (change.image["symbol"],))])
    record = {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"symbol": {"S": "AMZN"}},
            "NewImage": {"symbol": {"S": "AMZN"}},
            "SequenceNumber": "1",
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/q/stream/x",
    }
    assert handler({"Records": [record]}, None) == {"batchItemFailures": []}
    entries = redis_client.xrange(feed_name(quote.cache))
    full_key = quote.cache.full_key(quote.cache_key("AMZN"))
    assert list(entries[-1][1].values()) == [full_key.encode()]
