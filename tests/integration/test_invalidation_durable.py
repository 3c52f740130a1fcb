"""Invalidation holds through what a full or flushed Redis does: OOM, eviction, flushes.

Each test starts a Valkey of its own configuration (``maxmemory`` and an
eviction policy), fills it with other keys until it refuses writes or evicts,
and then reads in new environments (a new cache, its own L1) over the same
Valkey and a moto DynamoDB table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from devkit.servers import RedisServer

from stratacache import MemoryTier, cached_many, cached_tiered
from stratacache.errors import InvalidationError
from stratacache.tiers import DynamoDBTier, RedisTier
from stratacache.tiers.base import Tier
from tests.support import MovingData as Origin
from tests.support import in_thread

FILLER = b"x" * 10_000


class Fleet:
    """Environments of one cached function over one Valkey and one DynamoDB table."""

    def __init__(self, server: RedisServer, dynamodb_client: Any, table_name: str) -> None:
        import redis

        self.client = redis.Redis.from_url(server.url)
        self.server = server
        self.dynamodb_client = dynamodb_client
        self.table_name = table_name
        self.origin = Origin()

    def environment(self, lock: bool = True) -> Any:
        """A new execution environment's copy of the function: its own L1 and clients."""
        origin = self.origin
        tiers: list[Tier] = [
            MemoryTier(),
            RedisTier(self.server.url),
            DynamoDBTier(self.table_name, client=self.dynamodb_client),
        ]

        @cached_tiered(ttl=300, tiers=tiers, namespace="durable", lock=lock)
        def price(sku: str) -> str:
            return origin.read(sku)

        return price

    def stored(self, price: Any, sku: str) -> bytes | None:
        """What Redis holds under the function's key for ``sku``."""
        value = self.client.get(price.cache.full_key(price.cache_key(sku)))
        return value if isinstance(value, bytes) else None

    def fill_until_refused(self) -> None:
        """Write other keys until Redis refuses writes (``noeviction``), and check it does."""
        import redis

        refusals = 0
        for i in range(10_000):
            try:
                self.client.set(f"filler:{i}", FILLER)
            except redis.exceptions.OutOfMemoryError:
                refusals += 1
                if refusals == 3:
                    # Firmly full: a freed buffer must not let one small write in.
                    used = int(self.client.info("memory")["used_memory"])
                    self.client.config_set("maxmemory", used - 200_000)
                    return
        raise AssertionError("Redis never refused a write")

    def fill_until_evicted(
        self, key: str, ttl: int | None = None, keep: Sequence[bytes | str] = ()
    ) -> int:
        """Write other keys until Redis has evicted ``key``; the evictions it counted.

        ``keep``: keys read as it goes, so that they stay more recently used than ``key``.
        """
        for i in range(20_000):
            self.client.set(f"filler:{i}", FILLER, ex=ttl)
            if i % 10 == 0:
                for kept in keep:
                    self.client.get(kept)
                if not self.client.exists(key):
                    break
        assert not self.client.exists(key), f"{key} was never evicted"
        evicted = int(self.client.info("stats")["evicted_keys"])
        assert evicted > 0
        return evicted


@pytest.fixture
def fleet(
    own_redis: Callable[..., RedisServer], dynamodb_client: Any, table_name: str
) -> Callable[..., Fleet]:
    def make(*config: str) -> Fleet:
        return Fleet(own_redis(*config), dynamodb_client, table_name)

    return make


# ------------------------------------------------------------------ a full Redis (noeviction)

NOEVICTION = ("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")


def test_an_invalidate_whose_tombstone_oom_refuses_still_takes_the_old_value_out(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet(*NOEVICTION)
    price = world.environment()
    assert price("x") == "x@v1"
    assert world.environment()("x") == "x@v1"  # an L2 hit: v1 is in Redis
    world.fill_until_refused()
    world.origin.version = 2
    assert price.invalidate("x") is True  # no shared tier can serve v1 any more
    assert world.stored(price, "x") is None  # Redis refused the tombstone, took the delete
    assert price("x") == "x@v2"
    assert world.environment()("x") == "x@v2"
    assert world.environment(lock=False)("x") == "x@v2"


def test_a_refresh_whose_tombstone_oom_refuses_leaves_no_older_value(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet(*NOEVICTION)
    price = world.environment()
    assert price("x") == "x@v1"
    world.fill_until_refused()
    world.origin.version = 2
    assert price.refresh("x") == "x@v2"
    assert world.stored(price, "x") is None
    assert price("x") == "x@v2"
    for _ in range(2):  # the second new environment finds what the first left
        assert world.environment()("x") == "x@v2"


def test_an_invalidate_no_shared_tier_could_take_returns_false_and_strict_raises(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet()
    price = world.environment()
    assert price("x") == "x@v1"
    world.client.config_set("replica-read-only", "yes")
    world.client.replicaof("127.0.0.1", 1)  # read-only now: no tombstone, no delete
    try:
        assert price.invalidate("x") is False  # Redis may still serve v1: the caller can tell
        with pytest.raises(InvalidationError):
            price.cache.invalidate("x", strict=True)
    finally:
        world.client.replicaof("NO", "ONE")


# ------------------------------------------------------------------ a tombstone evicted


def test_a_fill_that_began_before_an_invalidate_stays_out_when_redis_evicts_the_tombstone(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet("--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru")
    price = world.environment(lock=False)
    world.origin.hold = release = threading.Event()
    filler, got = in_thread(lambda: price("x"))
    assert world.origin.holding.wait(30)  # the fill read nothing anywhere and computes v1
    world.origin.version = 2
    other = world.environment(lock=False)
    assert other.invalidate("x") is False  # nothing was cached yet
    assert world.stored(price, "x") is not None  # the tombstone ...
    key = price.cache.full_key(price.cache_key("x"))
    world.fill_until_evicted(key, ttl=3600)  # ... evicted by memory pressure
    release.set()
    filler.join(30)
    assert got == ["x@v1"]  # its own call's answer
    assert world.stored(price, "x") is None  # DynamoDB's tombstone refused it: Redis too
    assert world.environment(lock=False)("x") == "x@v2"
    assert world.environment()("x") == "x@v2"


# ------------------------------------------------------------------ the generation lost


def test_invalidate_all_then_a_redis_flush_brings_no_older_value_back(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet()
    price = world.environment()
    assert [price(sku) for sku in "xy"] == ["x@v1", "y@v1"]
    world.origin.version = 2
    price.invalidate_all()
    world.client.flushall()  # the generation and every Redis entry gone; L3 keeps v1
    fresh = world.environment()
    assert [fresh(sku) for sku in "xy"] == ["x@v2", "y@v2"]
    assert [world.environment()(sku) for sku in "yx"] == ["y@v2", "x@v2"]
    assert world.client.get(price.cache.full_key("").removesuffix("|") + "#gen") is not None


def test_invalidate_all_then_allkeys_lru_evicting_the_generation_brings_no_older_value_back(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
    price = world.environment()
    skus = [f"s{i}" for i in range(10)]
    assert [price(sku) for sku in skus] == [f"{sku}@v1" for sku in skus]
    world.origin.version = 2
    price.invalidate_all()
    generation_key = price.cache.full_key("").removesuffix("|") + "#gen"
    assert world.client.get(generation_key) is not None
    time.sleep(2.1)  # older than Redis's LRU clock (1 s resolution) can tell apart ...
    entries = [price.cache.full_key(price.cache_key(sku)) for sku in skus]
    world.fill_until_evicted(generation_key, keep=entries)  # ... from the v1 entries read now
    left = [sku for sku in skus if world.stored(price, sku) is not None]
    assert left, "every old entry was evicted with the generation: nothing is tested"
    assert [world.environment()(sku) for sku in left] == [f"{sku}@v2" for sku in left]
    assert world.environment()(left[0]) == f"{left[0]}@v2"


@pytest.mark.parametrize("lock", [True, False], ids=["lock", "no-lock"])
def test_a_fill_that_began_before_invalidate_all_is_not_written_under_the_new_generation(
    fleet: Callable[..., Fleet], lock: bool
) -> None:
    world = fleet()
    price = world.environment(lock=lock)
    world.origin.hold = release = threading.Event()
    filler, got = in_thread(lambda: price("x"))
    assert world.origin.holding.wait(30)  # computing v1
    world.origin.version = 2
    price.invalidate_all()
    release.set()
    filler.join(30)
    assert got == ["x@v1"]
    assert price("x") == "x@v2"
    assert world.environment(lock=lock)("x") == "x@v2"


def test_invalidate_all_then_a_redis_flush_brings_no_older_value_back_in_a_batch(
    fleet: Callable[..., Fleet],
) -> None:
    world = fleet()
    origin = world.origin

    def environment() -> Any:
        tiers: list[Tier] = [
            MemoryTier(),
            RedisTier(world.server.url),
            DynamoDBTier(world.table_name, client=world.dynamodb_client),
        ]

        @cached_many(ttl=300, tiers=tiers, namespace="durable-many")
        def prices(skus: list[str]) -> dict[str, str]:
            return {sku: origin.read(sku) for sku in skus}

        return prices

    prices = environment()
    assert prices(["x", "y"]) == {"x": "x@v1", "y": "y@v1"}
    origin.version = 2
    prices.cache.invalidate_all()
    world.client.flushall()
    assert environment()(["x", "y"]) == {"x": "x@v2", "y": "y@v2"}
