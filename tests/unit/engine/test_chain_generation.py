"""The chain and the namespace generation: the invalidation feed, a lost counter, a failed check."""

from __future__ import annotations

from stratacache import MemoryTier
from stratacache.freshness import Freshness
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeFeedTier, FaultyTier, RestoringTier, cache_over
from tests.support import guard_counts as counts


def test_another_environments_invalidation_drops_that_key_from_memory_and_no_other() -> None:
    clock = FakeClock()
    shared = FakeFeedTier(clock)
    memory = MemoryTier(timer=clock)
    here = cache_over(clock, memory, shared)
    there = cache_over(clock, MemoryTier(timer=clock), shared)
    here.set("k", "v")
    here.set("j", "w")
    assert here.get("k") == "v"  # the first check finds its place in the feed
    there.invalidate("k")
    assert shared.feeds[here._layout.feed_key] == [("1-0", (here.full_key("k"),))]
    clock.advance(5)
    assert here.get("j") == "w"  # the check drops k; j is still memory's to answer
    assert counts(here, 0) == (2, 0, 0)
    assert counts(here, 1) == (0, 0, 0)
    assert memory.get(here.full_key("k")) is MISS
    assert here.get("k") is None


def test_a_feed_trimmed_past_this_environments_place_empties_its_memory() -> None:
    clock = FakeClock()
    shared = FakeFeedTier(clock)
    memory = MemoryTier(timer=clock)
    here = cache_over(clock, memory, shared)
    there = cache_over(clock, MemoryTier(timer=clock), shared)
    here.set("k", "v")
    here.set("j", "w")
    there.invalidate("x")
    assert here.get("k") == "v"  # its place: entry 1-0
    shared.feeds[here._layout.feed_key] = [("7-0", (here.full_key("y"),))]  # 1-0 trimmed
    clock.advance(5)
    assert here.get("k") == "v"  # from L2: memory was emptied
    assert counts(here, 1) == (1, 0, 0)
    assert memory.get(here.full_key("j")) is MISS


def test_a_faster_tier_that_lost_the_counter_serves_nothing_until_the_durable_one_is_read() -> None:
    clock = FakeClock()
    l2, l3 = RestoringTier(clock, "L2"), RestoringTier(clock, "L3")
    writer = cache_over(clock, MemoryTier(timer=clock), l2, l3)
    writer._engine.chain.generation.observe(3)
    writer.set("k", "v")
    writer.set("j", "w")
    generation = writer._layout.generation_key
    l3.counters[generation] = 3  # L2 lost its counter (evicted, flushed); L3 keeps it
    here = cache_over(clock, MemoryTier(timer=clock), l2, l3)
    assert here.get("k") == "v"
    assert counts(here, 1) == (0, 1, 0)  # L2's entry: of a generation it cannot tell
    assert counts(here, 2) == (1, 0, 0)
    assert l2.counters[generation] == 3  # the promotion into L2 carried it back
    assert l2.calls.count("raise_counter") == 1
    here.set_many({"m": 1})
    here.set("n", 2)
    assert l2.calls.count("raise_counter") == 1  # carried back once
    del l2.counters[generation]  # lost again
    clock.advance(5)
    assert here.get("j") == "w"
    assert counts(here, 1) == (0, 2, 0)


def test_a_batch_write_carries_a_lost_counter_back_once_it_lands() -> None:
    clock = FakeClock()
    l2, l3 = RestoringTier(clock, "L2"), RestoringTier(clock, "L3")
    here = cache_over(clock, MemoryTier(timer=clock), l2, l3)
    generation = here._layout.generation_key
    l3.counters[generation] = 3
    assert here.get("x") is None  # L2 answers without its counter; L3 has it
    l2.failing = {"swap_many"}
    here.set_many({"m": 1})  # fails in L2: the counter is still to carry back
    assert generation not in l2.counters
    l2.failing = set()
    here.set_many({"m": 1})
    assert l2.counters[generation] == 3
    here.set_many({"m": 2})
    assert l2.calls.count("raise_counter") == 1


def test_a_stale_memory_hit_whose_generation_check_failed_refreshes_without_that_tier() -> None:
    clock = FakeClock()
    shared = FaultyTier(clock)
    cache = cache_over(clock, MemoryTier(timer=clock), shared, freshness=Freshness(grace=30))
    cache.set("k", "v")
    assert cache.get("k") == "v"
    clock.advance(61)  # stale, and a check is due
    shared.failing = {"read_counter", "get", "get_with_counter", "swap", "swap_many"}
    shared.calls.clear()
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert shared.calls == ["read_counter"]  # asked once: no lease, no write


def test_a_tier_that_failed_a_promotion_is_not_asked_again_by_the_refresh() -> None:
    clock = FakeClock()
    memory, l2, l3 = MemoryTier(timer=clock), FaultyTier(clock, "L2"), FaultyTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3, freshness=Freshness(grace=30))
    cache.set("k", "v")
    memory.clear()
    del l2.data[cache.full_key("k")]
    clock.advance(61)  # stale in L3
    l2.failing = {"swap", "swap_many"}
    l2.calls.clear()
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert l2.calls.count("swap_many") == 1  # the promotion
    assert "swap" not in l2.calls  # neither the lease nor the write
