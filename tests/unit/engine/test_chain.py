"""The chain of tiers, single-flight and generations, against an in-memory fake tier."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine.singleflight import SingleFlight
from stratacache.freshness import Freshness
from tests.support import FakeClock, FakeSharedTier
from tests.support import memory_over as environment


def test_a_shared_hit_is_promoted_into_memory_with_its_remaining_lifetime() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    environment(shared, clock).set("k", "v")
    clock.advance(20)
    fresh = environment(shared, clock)
    assert fresh.get("k") == "v"
    l1 = fresh.tiers[0]
    assert l1.remaining_ttl(fresh.full_key("k")) == pytest.approx(40)
    assert fresh.stats()["L2"]["hits"] == 1
    assert fresh.get("k") == "v"  # now from memory
    assert fresh.stats()["L1"]["hits"] == 1


def test_a_fill_that_began_before_an_invalidation_cannot_write_over_it() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)
    chain = cache._engine.chain
    fill = chain.begin()
    assert chain.read(cache.full_key("k"), fill) is None  # a fill misses and computes...
    cache.invalidate("k")  # ...an invalidation lands meanwhile...
    chain.write(cache.full_key("k"), "old", fill)  # ...and the fill's write is refused
    assert cache.get("k") is None
    assert not cache.has("k")


def test_an_explicit_write_wins_over_a_tombstone() -> None:
    clock = FakeClock()
    cache = environment(FakeSharedTier(clock), clock)
    cache.set("k", "v1")
    cache.delete("k")
    cache.set("k", "v2")
    assert environment(cache.tiers[1], clock).get("k") == "v2"


def test_read_many_asks_each_tier_once_for_what_the_faster_ones_lacked() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    environment(shared, clock).set_many({"a": 1, "b": 2})
    cache = environment(shared, clock)
    cache.set("c", 3)
    shared.calls.clear()
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3}
    assert shared.calls.count("get") == 3  # the fake's get_many is a get per key: a, b, d
    assert cache.stats()["L2"] == {"hits": 2, "misses": 1, "errors": 0}


def test_an_entry_of_an_older_generation_is_a_miss_after_invalidate_all() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock, generation_check=5), environment(shared, clock)
    a.set("k", "v")
    assert a.get("k") == "v"  # the generation read once, then L1
    b.invalidate_all()
    assert shared.counters == {b._layout.generation_key: 1}
    assert a.get("k") == "v"  # within the check period L1 may still answer
    clock.advance(5)
    assert a.get("k") is None  # the check finds the bump, memory is emptied
    assert environment(shared, clock).get("k") is None  # and the shared entry is old


def test_a_failing_shared_tier_is_asked_once_per_operation() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    calls: list[str] = []

    def down(*args: Any) -> Any:
        calls.append("down")
        raise ConnectionError("gone")

    shared.get_with_counter = down  # type: ignore[method-assign, assignment]
    shared.swap = down  # type: ignore[method-assign, assignment]
    cache = environment(shared, clock)
    assert cache.get_or_compute("k", lambda: "computed") == "computed"  # never raises
    assert calls == ["down"]  # the read failed: the lease and the write skip the tier
    assert cache.stats()["L2"]["errors"] >= 1


def test_single_flight_runs_one_computation_for_concurrent_callers() -> None:
    flights = SingleFlight()
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow() -> int:
        runs.append(1)
        started.set()
        assert release.wait(10)
        return 42

    results: list[int] = []
    leader = threading.Thread(target=lambda: results.append(flights.do("k", slow)))
    leader.start()
    assert started.wait(10)
    follower = threading.Thread(target=lambda: results.append(flights.do("k", slow)))
    follower.start()
    release.set()
    leader.join(10)
    follower.join(10)
    assert results == [42, 42]
    assert runs == [1]


def test_a_forgotten_flight_is_not_joined() -> None:
    flights = SingleFlight()
    assert flights.try_lead("k")
    assert not flights.try_lead("k")
    flights.forget("k")
    assert flights.try_lead("k")  # a caller after an invalidation starts a new flight
    flights.release("k")


def test_the_fast_path_reads_memory_directly_only_when_memory_comes_first_with_plain_values() -> (
    None
):
    clock = FakeClock()
    plain = environment(FakeSharedTier(clock), clock)
    assert plain._engine.chain.l1 is plain.tiers[0]
    fresh = environment(FakeSharedTier(clock), clock, freshness=Freshness(grace=30))
    assert fresh._engine.chain.l1 is None  # memory holds refresh facts with the values
    shared_first = TieredCache(
        [FakeSharedTier(clock), MemoryTier(timer=clock)], namespace="chain", clock=clock
    )
    assert shared_first._engine.chain.l1 is None
    nothing = TieredCache([], namespace="chain", clock=clock)
    assert nothing._engine.chain.l1 is None
    nothing.set("k", "v")
    assert nothing.get("k") is None
