"""Promotion: a hit in a slower tier back-fills the faster ones, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine.chain import remaining_lifetime
from stratacache.breaker import CircuitBreaker
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.serialization import JsonSerializer
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeSharedTier, FaultyTier, cache_over
from tests.support import library_messages as messages


def three_tiers(
    clock: FakeClock, **options: Any
) -> tuple[TieredCache, FakeSharedTier, FakeSharedTier]:
    l2, l3 = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    l2.ttl = 10.0  # a tier's own cap on how long it keeps anything
    cache = TieredCache(
        [MemoryTier(timer=clock), l2, l3], namespace="promo", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), **options,
    )  # fmt: skip
    return cache, l2, l3


def test_a_hit_in_the_slowest_tier_fills_the_faster_ones_capped_by_their_ttl() -> None:
    clock = FakeClock()
    cache, l2, l3 = three_tiers(clock, signing_key=b"k" * 32)
    key = cache.full_key("k")
    cache.set("k", "v")
    cache._engine.chain.guards[0].tier.delete(key)
    l2.data.clear()
    original = cache._engine.chain.codec.decode(key, l3.data[key][0])
    clock.advance(20)
    assert cache.get("k") == "v"
    promoted = cache._engine.chain.codec.decode(key, l2.data[key][0])
    assert promoted.value == "v"
    assert promoted.version == original.version
    assert promoted.generation == original.generation
    assert promoted.expires_at == clock() + 10.0  # capped by L2's ttl
    assert l2.data[key][1] == clock() + 10.0
    memory = cache._engine.chain.guards[0].tier
    assert memory.get(key) == "v"
    assert memory.remaining_ttl(key) == pytest.approx(40.0)  # what is left of its 60 s
    l2.data.clear()
    memory.delete(key)
    clock.advance(40)  # L3's entry is over: nothing to promote
    assert cache.get("k") is None
    assert key not in l2.data
    assert memory.get(key) is MISS


def test_a_hit_in_the_middle_tier_fills_memory_only_with_its_freshness() -> None:
    clock = FakeClock()
    cache, _, l3 = three_tiers(clock, freshness=Freshness(grace=100))
    key = cache.full_key("k")
    cache.set("k", "v", ttl=5)
    cache._engine.chain.guards[0].tier.delete(key)
    l3_before = dict(l3.data)
    calls = len(l3.calls)
    record = cache._engine.chain.read(key, cache._engine.chain.begin())
    assert record is not None
    assert record.stale_at == clock() + 5
    assert l3.calls[calls:] == []  # found in L2: L3 is neither read nor written
    assert l3.data == l3_before
    again = cache._engine.chain.read(key, cache._engine.chain.begin())
    assert again is not None
    assert again.stale_at == clock() + 5  # memory kept the refresh facts
    assert again.expires_at == clock() + 10  # L2's ttl capped the grace


def test_an_old_trace_promotes_into_memory_but_never_into_a_shared_tier() -> None:
    clock = FakeClock()
    cache, l2, _ = three_tiers(clock, tombstone_ttl=30)
    key = cache.full_key("k")
    cache.set("k", "v")
    cache._engine.chain.guards[0].tier.delete(key)
    l2.data.clear()
    chain = cache._engine.chain
    trace = chain.begin()
    clock.advance(31)  # longer than a tombstone lives: it could miss an invalidation
    record = chain.read(key, trace)
    assert record is not None
    assert key not in l2.data
    assert chain.guards[0].tier.get(key) == "v"
    clock_trace = chain.begin()
    chain.guards[0].tier.delete(key)
    assert chain.read(key, clock_trace) is not None
    assert key in l2.data  # a young trace does promote


def test_the_lifetime_a_promotion_gives_is_what_is_left_capped_by_the_tier() -> None:
    assert remaining_lifetime(100.0, 100.0, None) is MISS  # over exactly now
    assert remaining_lifetime(100.5, 100.0, None) == 0.5
    assert remaining_lifetime(110.0, 100.0, 30.0) == 10.0  # less left than the cap
    assert remaining_lifetime(200.0, 100.0, 30.0) == 30.0
    assert remaining_lifetime(None, 100.0, 30.0) == 30.0  # no end: the cap
    assert remaining_lifetime(None, 100.0, None) is None


def test_an_entry_promoted_with_a_moment_left_is_still_kept_a_millisecond() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    l2, l3 = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    key = cache.full_key("k")
    cache.set("k", "v")
    memory.delete(key)
    del l2.data[key]
    clock.advance(59.9995)
    assert cache.get("k") == "v"
    assert l2.data[key][1] == pytest.approx(clock() + 0.001, abs=1e-5)


def test_a_promotion_replaces_what_the_faster_tier_held_of_an_older_generation() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    l2, l3 = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    chain = cache._engine.chain
    key = cache.full_key("k")
    chain.generation.observe(1)
    cache.set("k", "old")
    older = l2.data[key]
    chain.generation.observe(2)
    chain.generation.checked()  # no counter read due: the entries decide
    cache.set("k", "new")
    l2.data[key] = older  # what L2 kept from before the bump
    memory.delete(key)
    assert cache.get("k") == "new"  # L2's entry is a miss; L3's is promoted over it
    assert chain.codec.decode(key, l2.data[key][0]).value == "new"


def test_every_hit_of_a_batch_is_promoted_each_where_it_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock, max_value_bytes=100)
    l2, l3 = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    chain = cache._engine.chain
    big, small = cache.full_key("big"), cache.full_key("small")
    cache.set_many({"big": "x" * 300, "small": "s"})
    l2.data.clear()
    memory.clear()
    size = chain.codec.overhead + len(chain.codec.payload("x" * 300).data)
    caplog.clear()
    with caplog.at_level("WARNING", logger="stratacache"):
        assert cache.get_many(["big", "small"]) == {"big": "x" * 300, "small": "s"}
    assert set(l2.data) == {big, small}
    assert memory.get(big) is MISS  # too big for memory, logged and counted
    assert memory.get(small) == "s"
    assert messages(caplog) == [
        f"stratacache tier L1 skipped {big}: {size} bytes exceed its limit of 100"
    ]
    assert chain.guards[0].counts.errors == 2  # the batch write, then the promotion


def test_a_value_too_big_for_a_faster_shared_tier_is_promoted_past_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    memory, l3 = MemoryTier(timer=clock), FakeSharedTier(clock, "L3")
    l2 = FaultyTier(clock, "L2", max_value_bytes=200)
    cache = cache_over(clock, memory, l2, l3)
    key = cache.full_key("k")
    cache.set("k", "x" * 300)
    memory.clear()
    caplog.clear()
    with caplog.at_level("WARNING", logger="stratacache"):
        assert cache.get("k") == "x" * 300
    blob = l3.data[key][0]
    assert messages(caplog) == [
        f"stratacache tier L2 skipped {key}: {len(blob)} bytes exceed its limit of 200"
    ]
    assert key not in l2.data
    assert memory.get(key) == "x" * 300


def test_a_tier_that_just_failed_takes_no_promotion_and_the_tiers_behind_it_still_do() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, cooldown=10, clock=clock)
    l2, memory = FaultyTier(clock, "L2", breaker=breaker), MemoryTier(timer=clock)
    l3 = FakeSharedTier(clock, "L3")
    cache = cache_over(clock, l2, memory, l3)
    chain = cache._engine.chain
    key = cache.full_key("k")
    cache.set("k", "v")
    raw = l3.data[key][0]
    del l2.data[key]
    memory.clear()
    breaker.failure()  # another caller's: still closed, but no writes within the cooldown
    chain.promote(2, [(key, chain.codec.decode(key, raw), raw)], chain.begin())
    assert key not in l2.data
    assert chain.guards[0].counts.errors == 1
    assert memory.get(key) == "v"


def test_a_hit_that_runs_out_while_a_slow_tier_answers_is_not_promoted_the_others_are() -> None:
    clock = FakeClock()

    class SlowTier(FakeSharedTier):
        def get_many(self, keys: Any) -> list[object]:
            found = super().get_many(keys)
            clock.advance(2)  # the answer arrives two seconds later
            return found

    memory, l2, l3 = MemoryTier(timer=clock), FakeSharedTier(clock, "L2"), SlowTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    cache.set("short", "s", ttl=1)
    cache.set("long", "l")
    l2.data.clear()
    memory.clear()
    assert cache.get_many(["short", "long"]) == {"short": "s", "long": "l"}
    assert set(l2.data) == {cache.full_key("long")}
    assert memory.get(cache.full_key("short")) is MISS
    assert memory.get(cache.full_key("long")) == "l"


def test_a_memory_promotion_keeps_the_value_and_its_refresh_facts() -> None:
    clock = FakeClock()
    memory, l2 = MemoryTier(timer=clock), FakeSharedTier(clock, "L2")
    cache = cache_over(clock, memory, l2, freshness=Freshness(grace=30))
    chain = cache._engine.chain

    def slow() -> str:
        clock.advance(2)
        return "v"

    assert cache.get_or_compute("k", slow) == "v"
    memory.clear()
    assert chain.read(cache.full_key("k"), chain.begin()) is not None  # from L2, promoted
    l2.data.clear()
    got = chain.read(cache.full_key("k"), chain.begin())  # from memory
    assert got is not None
    assert (got.value, got.stale_at, got.delta) == ("v", clock() + 60, 2.0)


class CountingJson(JsonSerializer):
    """JSON that counts the values it serializes."""

    def __init__(self) -> None:
        super().__init__()
        self.dumped = 0

    def dumps(self, value: object) -> bytes:
        self.dumped += 1
        return super().dumps(value)


def test_a_promotion_between_shared_tiers_copies_the_stored_bytes_without_serializing() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    l2, l3 = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    serializer = CountingJson()
    cache = cache_over(clock, memory, l2, l3, serializer=serializer)
    cache.set("k", {"a": 1})
    assert serializer.dumped == 1
    l2.data.clear()
    memory.clear()
    assert cache.get("k") == {"a": 1}
    assert serializer.dumped == 1
    assert cache.full_key("k") in l2.data


def test_values_from_a_memory_tier_behind_a_shared_one_are_wrapped_each_under_its_key() -> None:
    clock = FakeClock()
    l2, memory = FakeSharedTier(clock, "L2"), MemoryTier(timer=clock)
    cache = cache_over(clock, l2, memory, signing_key=b"k" * 32, freshness=Freshness(grace=30))
    chain = cache._engine.chain

    def slow(value: str) -> str:
        clock.advance(2)
        return value

    assert cache.get_or_compute("a", slow, ("A",)) == "A"
    assert cache.get_or_compute("b", slow, ("B",)) == "B"
    l2.data.clear()
    assert cache.get_many(["a", "b"]) == {"a": "A", "b": "B"}
    a = chain.codec.decode(cache.full_key("a"), l2.data[cache.full_key("a")][0])  # signed
    b = chain.codec.decode(cache.full_key("b"), l2.data[cache.full_key("b")][0])
    assert (a.value, a.delta, b.value, b.delta) == ("A", 2.0, "B", 2.0)


def test_a_value_the_serializer_cannot_hold_is_not_promoted_into_a_shared_tier(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    l2, memory = FakeSharedTier(clock, "L2"), MemoryTier(timer=clock)
    cache = cache_over(clock, l2, memory)
    one, two = object(), object()
    cache.set_many({"one": one, "two": two})  # memory only, said once
    caplog.clear()
    with caplog.at_level("WARNING", logger="stratacache"):
        assert cache.get_many(["one", "two"]) == {"one": one, "two": two}
    said = messages(caplog)
    assert len(said) == 2
    for line, name in zip(said, ("one", "two"), strict=True):
        assert line.startswith(f"stratacache left {cache.full_key(name)} uncached: cannot ")
    assert l2.data == {}
    assert memory.get(cache.full_key("two")) is two
