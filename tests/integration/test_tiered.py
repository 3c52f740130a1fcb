"""TieredCache over the real chain: L1 memory, L2 a Redis server, L3 DynamoDB over HTTP.

One fake clock drives the cache, L1 and L3, so lifetimes are exact; Redis
keeps its own clock, so its PTTL is checked within a margin.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from stratacache import ConfigurationError, TieredCache
from stratacache.envelope import TOMBSTONE, Codec
from stratacache.metrics import MetricsRecorder
from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier
from tests.support import BrokenTier, FakeClock


@dataclass
class Chain:
    cache: TieredCache
    l1: MemoryTier
    l2: RedisTier
    l3: DynamoDBTier
    clock: FakeClock
    redis: Any
    dynamodb: Any
    table: str

    def l3_item(self, full_key: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": full_key}}
        ).get("Item")
        return item


@pytest.fixture
def make_chain(redis_client: Any, dynamodb_client: Any, table_name: str) -> Callable[..., Chain]:
    def make(
        ttl: float | None = 100,
        l1_ttl: float | None = None,
        l2_ttl: float | None = None,
        l3_ttl: float | None = None,
    ) -> Chain:
        clock = FakeClock()
        l1 = MemoryTier(ttl=l1_ttl, timer=clock)
        l2 = RedisTier(client=redis_client, ttl=l2_ttl)
        l3 = DynamoDBTier(table_name, client=dynamodb_client, ttl=l3_ttl, clock=clock)
        cache = TieredCache(
            [l1, l2, l3], ttl=ttl, namespace="t", clock=clock, recorder=MetricsRecorder()
        )
        return Chain(cache, l1, l2, l3, clock, redis_client, dynamodb_client, table_name)

    return make


@pytest.fixture
def chain(make_chain: Callable[..., Chain]) -> Chain:
    return make_chain()


def hits(cache: TieredCache) -> dict[str, int]:
    return {name: stats["hits"] for name, stats in cache.stats().items()}


# ---------------------------------------------------------------- the chain


def test_set_writes_every_tier(chain: Chain) -> None:
    chain.cache.set("k", {"a": 1})
    assert chain.l1.get("t|k") == {"a": 1}
    assert chain.redis.get("t|k") is not None
    assert chain.l3_item("t|k") is not None


def test_get_answers_from_the_fastest_tier(chain: Chain) -> None:
    chain.cache.set("k", "v")
    assert chain.cache.get("k") == "v"
    assert hits(chain.cache) == {"L1": 1, "L2": 0, "L3": 0}


def test_an_l2_hit_is_promoted_into_l1(chain: Chain) -> None:
    chain.cache.get("other")  # reads the generation (L3's, as Redis holds no counter yet)
    chain.cache.set("k", "v")  # and writes it back into Redis with this write
    chain.l1.delete("t|k")
    assert chain.cache.get("k") == "v"
    assert chain.cache.get("k") == "v"
    assert hits(chain.cache) == {"L1": 1, "L2": 1, "L3": 0}


def test_an_l3_hit_is_promoted_into_l2_and_l1(chain: Chain) -> None:
    chain.cache.set("k", [1, 2])
    chain.l1.delete("t|k")
    chain.redis.flushall()
    assert chain.cache.get("k") == [1, 2]
    assert chain.l1.get("t|k") == [1, 2]
    assert chain.redis.get("t|k") is not None
    assert chain.cache.get("k") == [1, 2]
    assert hits(chain.cache) == {"L1": 1, "L2": 0, "L3": 1}


def test_promotion_gives_the_remaining_lifetime_not_a_fresh_one(chain: Chain) -> None:
    chain.cache.set("k", "v")  # ttl 100 at t0
    expires_at = chain.clock.now + 100
    assert chain.l3_item("t|k")["ttl"] == {"N": str(math.ceil(expires_at))}  # type: ignore[index]
    chain.clock.advance(40)
    chain.l1.delete("t|k")
    chain.redis.delete("t|k")

    assert chain.cache.get("k") == "v"  # an L3 hit, 60 s before expiry

    assert 59_000 < chain.redis.pttl("t|k") <= 60_000
    assert chain.l1.remaining_ttl("t|k") == pytest.approx(60)
    assert Codec().decode("t|k", chain.redis.get("t|k")).expires_at == pytest.approx(
        expires_at, abs=0.001
    )
    # L3 keeps its own expiry; promotion does not extend it.
    assert chain.l3_item("t|k")["ttl"] == {"N": str(math.ceil(expires_at))}  # type: ignore[index]


def test_promotion_is_capped_by_a_faster_tiers_own_ttl(make_chain: Callable[..., Chain]) -> None:
    chain = make_chain(ttl=100, l1_ttl=5, l2_ttl=30)
    chain.cache.set("k", "v")
    assert chain.l1.remaining_ttl("t|k") == pytest.approx(5)
    assert 29_000 < chain.redis.pttl("t|k") <= 30_000
    chain.l1.delete("t|k")
    chain.redis.delete("t|k")
    chain.clock.advance(10)
    chain.cache.get("k")
    assert chain.l1.remaining_ttl("t|k") == pytest.approx(5)
    assert 29_000 < chain.redis.pttl("t|k") <= 30_000


def test_a_tiers_own_ttl_wins_over_the_cache_ttl(make_chain: Callable[..., Chain]) -> None:
    chain = make_chain(ttl=100, l3_ttl=3600)
    chain.cache.set("k", "v")
    assert chain.l3_item("t|k")["ttl"] == {"N": str(math.ceil(chain.clock.now + 3600))}  # type: ignore[index]
    assert chain.cache.ttl("k") == pytest.approx(100)  # L1 answers first


def test_an_entry_without_expiry_stays_without_expiry_when_promoted(
    make_chain: Callable[..., Chain],
) -> None:
    chain = make_chain(ttl=None)
    chain.cache.set("k", "v")
    assert chain.redis.pttl("t|k") == -1
    assert "ttl" not in chain.l3_item("t|k")  # type: ignore[operator]
    chain.l1.delete("t|k")
    chain.redis.delete("t|k")
    chain.cache.get("k")
    assert chain.redis.pttl("t|k") == -1
    assert chain.cache.ttl("k") == math.inf


# ---------------------------------------------------------------- expiry


def test_an_expired_entry_is_a_miss_in_every_tier(chain: Chain) -> None:
    chain.cache.set("k", "v", ttl=10)
    chain.clock.advance(11)
    # Redis still holds the bytes (its clock is real); the envelope says they are stale.
    assert chain.redis.get("t|k") is not None
    assert chain.l3_item("t|k") is not None
    assert chain.cache.get("k", default="gone") == "gone"
    assert chain.cache.stats()["L1"]["misses"] == 1
    assert chain.cache.stats()["L2"]["misses"] == 1
    assert chain.cache.stats()["L3"]["misses"] == 1
    assert chain.cache.has("k") is False
    assert chain.cache.ttl("k") is None


def test_expired_entries_are_never_promoted(chain: Chain) -> None:
    chain.cache.set("k", "v", ttl=10)
    chain.l1.delete("t|k")
    chain.clock.advance(10.5)
    assert chain.cache.get("k") is None
    assert chain.l1.get("t|k") is MISS


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("value", [None, 0, "", [], {}, False])
def test_falsy_values_and_none_are_cached_in_every_tier(chain: Chain, value: object) -> None:
    chain.cache.set("k", value)
    for drop in (None, chain.l1, chain.l2):
        if drop is not None:
            drop.delete("t|k")
        assert chain.cache.get("k", default=MISS) == value
        assert chain.cache.has("k")


def test_get_returns_the_default_on_a_miss(chain: Chain) -> None:
    assert chain.cache.get("absent") is None
    assert chain.cache.get("absent", default=42) == 42


# ---------------------------------------------------------------- imperative API


def test_get_many_returns_what_some_tier_has_and_promotes_it(chain: Chain) -> None:
    chain.cache.set_many({"a": 1, "b": 2, "c": 3})
    chain.l1.delete("t|b")
    chain.l1.delete("t|c")
    chain.redis.delete("t|c")
    assert chain.cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3}
    assert chain.l1.get_many(["t|a", "t|b", "t|c"]) == [1, 2, 3]
    assert chain.redis.exists("t|c") == 1
    assert hits(chain.cache) == {"L1": 1, "L2": 1, "L3": 1}


def test_set_many_writes_every_tier_with_the_ttl(chain: Chain) -> None:
    chain.cache.set_many({"a": 1, "b": 2}, ttl=20)
    assert chain.l1.remaining_ttl("t|a") == pytest.approx(20)
    assert 19_000 < chain.redis.pttl("t|b") <= 20_000
    assert chain.l3_item("t|a")["ttl"] == {"N": str(math.ceil(chain.clock.now + 20))}  # type: ignore[index]


def test_delete_removes_the_key_from_every_tier(chain: Chain) -> None:
    chain.cache.set("k", "v")
    assert chain.cache.delete("k") is True
    assert chain.l1.get("t|k") is MISS
    for stored in (chain.redis.get("t|k"), chain.l3_item("t|k")["v"]["B"]):  # type: ignore[index]
        codec = chain.cache._engine.chain.codec
        assert codec.decode("t|k", stored).kind == TOMBSTONE  # refuses older fills
    assert not chain.cache.has("k")
    assert chain.cache.delete("k") is False


def test_delete_many_removes_every_key_given(chain: Chain) -> None:
    chain.cache.set_many({"a": 1, "b": 2, "c": 3})
    chain.cache.delete_many(["a", "b"])
    assert chain.cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_has_does_not_count_or_promote(chain: Chain) -> None:
    chain.cache.set("k", "v")
    chain.l1.delete("t|k")
    assert chain.cache.has("k") is True
    assert chain.l1.get("t|k") is MISS
    assert hits(chain.cache) == {"L1": 0, "L2": 0, "L3": 0}


def test_ttl_reports_seconds_left(chain: Chain) -> None:
    chain.cache.set("k", "v", ttl=50)
    chain.clock.advance(20)
    assert chain.cache.ttl("k") == pytest.approx(30)
    chain.l1.delete("t|k")
    assert chain.cache.ttl("k") == pytest.approx(30, abs=0.01)  # from L2's envelope
    assert chain.cache.ttl("absent") is None


def test_expire_changes_the_lifetime_in_every_tier(chain: Chain) -> None:
    chain.cache.set("k", "v", ttl=50)
    assert chain.cache.expire("k", 500) is True
    assert chain.l1.remaining_ttl("t|k") == pytest.approx(500)
    assert 499_000 < chain.redis.pttl("t|k") <= 500_000
    assert chain.l3_item("t|k")["ttl"] == {"N": str(math.ceil(chain.clock.now + 500))}  # type: ignore[index]
    chain.clock.advance(100)
    chain.l1.delete("t|k")
    assert chain.cache.get("k") == "v"


def test_expire_to_none_removes_the_expiry(chain: Chain) -> None:
    chain.cache.set("k", "v", ttl=50)
    assert chain.cache.expire("k", None) is True
    assert chain.redis.pttl("t|k") == -1
    assert "ttl" not in chain.l3_item("t|k")  # type: ignore[operator]
    assert chain.cache.ttl("k") == math.inf


def test_expire_of_an_absent_key_reports_false(chain: Chain) -> None:
    assert chain.cache.expire("absent", 10) is False


def test_clear_removes_only_this_namespace(chain: Chain) -> None:
    other = TieredCache(
        [chain.l1, chain.l2, chain.l3],
        namespace="other",
        clock=chain.clock,
        recorder=chain.cache._engine.chain.recorder,
    )
    chain.cache.set_many({"a": 1, "b": 2})
    other.set("a", "theirs")
    chain.cache.clear()
    assert chain.cache.get_many(["a", "b"]) == {}
    theirs = other.full_key("a")
    for ours in (chain.cache.full_key("a"), chain.cache.full_key("b")):
        assert chain.redis.get(ours) is None
        assert chain.l3_item(ours) is None
    # The other namespace's entry is still stored in Redis and in DynamoDB.
    assert chain.redis.get(theirs) is not None
    assert chain.l3_item(theirs) is not None
    chain.l1.delete(theirs)
    chain.redis.delete(theirs)
    assert other.get("a") == "theirs"  # from DynamoDB
    assert hits(other) == {"L1": 0, "L2": 0, "L3": 1}


def test_stats_count_per_tier_and_l1_size(chain: Chain) -> None:
    chain.cache.get("absent")
    chain.cache.set("k", "v")
    chain.cache.get("k")
    assert chain.cache.stats() == {
        "L1": {"hits": 1, "misses": 1, "errors": 0, "size": 1},
        "L2": {"hits": 0, "misses": 1, "errors": 0},
        "L3": {"hits": 0, "misses": 1, "errors": 0},
    }


def test_an_unserializable_value_stays_in_memory_with_one_warning(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    value = object()
    with caplog.at_level(logging.WARNING, "stratacache"):
        chain.cache.set("k", value)
        chain.cache.set("k2", object())
    assert chain.cache.get("k") is value
    assert chain.redis.get("t|k") is None
    assert chain.l3_item("t|k") is None
    assert len(caplog.records) == 1  # once per cache
    assert "t|k" in caplog.records[0].getMessage()


def test_long_keys_are_shortened_within_the_stores_limits(chain: Chain) -> None:
    key = "x" * 5000
    chain.cache.set(key, "v")
    full = chain.cache.full_key(key)
    assert len(full.encode()) <= 1024
    chain.l1.delete(full)
    chain.redis.delete(full)
    assert chain.cache.get(key) == "v"


def test_keys_must_be_strings(chain: Chain) -> None:
    with pytest.raises(TypeError, match="str"):
        chain.cache.get(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- configuration


def test_tiers_must_implement_the_protocol() -> None:
    with pytest.raises(ConfigurationError, match="Tier protocol"):
        TieredCache([{}])  # type: ignore[list-item]


def test_tier_names_must_be_unique() -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        TieredCache([MemoryTier(), MemoryTier()])


@pytest.mark.parametrize("bad", [0, -1, "60"])
def test_a_bad_ttl_names_the_setting(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        TieredCache([MemoryTier()], ttl=bad)


def test_a_namespace_with_spaces_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        TieredCache([MemoryTier()], namespace="my app")


# ---------------------------------------------------------------- failing open


def test_a_failing_tier_is_skipped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    healthy = MemoryTier(name="healthy")
    cache = TieredCache([BrokenTier(), healthy], recorder=MetricsRecorder())
    with caplog.at_level(logging.WARNING, "stratacache"):
        cache.set("k", "v")
        assert cache.get("k") == "v"
    # set, get, and the promotion of the healthy tier's hit into the broken one: skipped
    # without a try (and without a log line), since the tier already failed in that call
    assert cache.stats()["broken"]["errors"] == 3
    assert cache.stats()["healthy"]["hits"] == 1
    assert [r.getMessage().split()[3] for r in caplog.records] == ["set", "get"]
    assert "connection refused" in caplog.records[0].getMessage()


def test_a_garbage_entry_is_a_counted_miss(chain: Chain) -> None:
    chain.redis.set("t|k", b"not an envelope")
    assert chain.cache.get("k", default="absent") == "absent"
    assert chain.cache.stats()["L2"]["errors"] == 1
