"""Promotion: a hit in a slower tier back-fills the faster ones, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeSharedTier


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
