"""Writing through the chain: what each tier gets, what is refused, and what is said."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeSharedTier


def two_tiers(clock: FakeClock, **options: Any) -> tuple[TieredCache, FakeSharedTier]:
    shared = FakeSharedTier(clock)
    cache = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="write", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), **options,
    )  # fmt: skip
    return cache, shared


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stratacache"]


def test_a_value_too_big_for_the_shared_tier_stays_in_memory_counted_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    shared.max_value_bytes = 200  # type: ignore[assignment]
    cache = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="write", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    key = cache.full_key("k")
    size = cache._engine.chain.codec.overhead + len(
        cache._engine.chain.codec.payload("x" * 300).data
    )
    with caplog.at_level("WARNING", logger="stratacache"):
        cache.set("k", "x" * 300)
        cache.set_many({"k": "x" * 300, "small": "s"})
    assert (
        messages(caplog)
        == [f"stratacache tier L2 skipped {key}: {size} bytes exceed its limit of 200"] * 2
    )
    assert key not in shared.data
    assert cache.full_key("small") in shared.data
    assert cache._engine.chain.guards[1].counts.errors == 2
    assert cache.get("k") == "x" * 300  # memory has it
    small = cache._engine.chain.codec.overhead + len(cache._engine.chain.codec.payload("s").data)
    assert small <= 200


def test_a_value_too_big_for_memory_is_left_out_of_memory_too() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    memory = MemoryTier(timer=clock)
    memory.max_value_bytes = 100
    cache = TieredCache(
        [memory, shared], namespace="write", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    cache.set("k", "x" * 300)
    assert memory.get(cache.full_key("k")) is MISS
    assert cache.full_key("k") in shared.data


def test_an_unshareable_value_lives_in_memory_with_one_warning_per_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    thing = object()
    with caplog.at_level("WARNING", logger="stratacache"):
        cache.set("k", thing)
        cache.set("k2", thing)
        cache.set_many({"k3": thing, "fine": 1})
    assert len(messages(caplog)) == 1
    assert messages(caplog)[0].startswith(
        f"stratacache left {cache.full_key('k')} out of the shared tiers, in memory only: "
    )
    assert messages(caplog)[0].endswith(" (logged once per cache)")
    assert "None" not in messages(caplog)[0]
    assert cache.get("k") is thing
    assert cache.get("k3") is thing
    assert set(shared.data) == {cache.full_key("fine")}


def test_a_value_over_the_caches_limit_is_not_cached_anywhere_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock, max_value_bytes=100)
    with caplog.at_level("WARNING", logger="stratacache"):
        cache.set("k", "x" * 1000)
        cache.set_many({"k2": "x" * 1000, "fine": 1})
    assert messages(caplog)[0].startswith(f"stratacache left {cache.full_key('k')} uncached: ")
    assert messages(caplog)[1].startswith(f"stratacache left {cache.full_key('k2')} uncached: ")
    assert "None" not in messages(caplog)[0]
    assert cache.get("k") is None
    assert cache.get("k2") is None
    assert set(shared.data) == {cache.full_key("fine")}


def test_written_records_carry_their_expiry_and_refresh_facts_in_every_tier() -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock, freshness=Freshness(grace=30))
    chain = cache._engine.chain
    cache.set("k", "v")
    cache.set_many({"m": "w"})
    key = cache.full_key("k")
    record = chain.codec.decode(key, shared.data[key][0])
    assert record.expires_at == clock() + 90
    assert record.stale_at == clock() + 60
    many = chain.codec.decode(cache.full_key("m"), shared.data[cache.full_key("m")][0])
    assert many.expires_at == clock() + 60
    memory = chain.guards[0].tier
    assert memory.remaining_ttl(key) == pytest.approx(90)
    assert memory.remaining_ttl(cache.full_key("m")) == pytest.approx(60)
    got = chain.read(key, chain.begin())
    assert got is not None
    assert (got.value, got.stale_at, got.delta) == ("v", clock() + 60, 0.0)


def test_a_memory_only_cache_with_a_limit_keeps_any_value_and_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache = TieredCache(
        [MemoryTier(timer=clock, max_value_bytes=100)], namespace="write", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    thing = object()
    with caplog.at_level("WARNING", logger="stratacache"):
        cache.set("k", thing)
        cache.set_many({"k2": thing})
    assert messages(caplog) == []  # there is no shared tier to leave it out of
    assert cache.get("k") is thing
    assert cache.get("k2") is thing
