"""Reading through the chain: the exact record a tier's entry becomes, and what is counted."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache.envelope import VALUE, Record
from stratacache.errors import PartialReadError
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeSharedTier


def two_tiers(clock: FakeClock, **options: Any) -> tuple[TieredCache, FakeSharedTier]:
    shared = FakeSharedTier(clock)
    cache = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="read", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), **options,
    )  # fmt: skip
    return cache, shared


def counts(cache: TieredCache, index: int) -> tuple[int, int, int]:
    c = cache._engine.chain.guards[index].counts
    return c.hits, c.misses, c.errors


def test_a_memory_hit_is_the_exact_record_with_what_is_left_of_its_life() -> None:
    clock = FakeClock()
    cache, _ = two_tiers(clock)
    chain = cache._engine.chain
    chain.generation.observe(3)
    cache.set("k", "v")
    clock.advance(15)
    key = cache.full_key("k")
    assert chain.read(key, chain.begin()) == Record(VALUE, "v", b"", 3, clock() + 45, None)
    cache.set("forever", "v", ttl=None)
    got = chain.read(cache.full_key("forever"), chain.begin())
    assert got == Record(VALUE, "v", b"", 3, None, None)


def test_a_memory_hit_keeps_its_refresh_facts() -> None:
    clock = FakeClock()
    cache, _ = two_tiers(clock, freshness=Freshness(grace=30, early_refresh=1.0))
    chain = cache._engine.chain

    def slow() -> str:
        clock.advance(2)
        return "v"

    assert cache.get_or_compute("k", slow) == "v"
    got = chain.read(cache.full_key("k"), chain.begin())
    assert got == Record(VALUE, "v", b"", 0, clock() + 90, None, clock() + 60, 2.0)


def test_hits_and_misses_are_counted_once_per_tier() -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    assert cache.get("k") is None
    assert counts(cache, 0) == (0, 1, 0)
    assert counts(cache, 1) == (0, 1, 0)
    cache.set("k", "v")
    cache._engine.chain.guards[0].tier.delete(cache.full_key("k"))
    assert cache.get("k") == "v"
    assert counts(cache, 0) == (0, 2, 0)
    assert counts(cache, 1) == (1, 1, 0)
    assert cache.get("k") == "v"  # promoted: memory answers
    assert counts(cache, 0) == (1, 2, 0)
    assert counts(cache, 1) == (1, 1, 0)
    clock.advance(60)  # exactly its end in both tiers
    shared.data[cache.full_key("k")] = (shared.data[cache.full_key("k")][0], None)
    assert cache.get("k") is None
    assert counts(cache, 1) == (1, 2, 0)  # an expired record is a miss, not an error


def test_an_unusable_entry_is_a_counted_miss_and_error_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    key = cache.full_key("k")
    shared.data[key] = (b"SC\x03 but not an envelope at all", None)
    with caplog.at_level("WARNING", logger="stratacache"):
        assert cache.get("k") is None
    assert counts(cache, 1) == (0, 1, 1)
    ours = [r.getMessage() for r in caplog.records if r.name == "stratacache"]
    assert len(ours) == 1
    message = ours[0]
    assert message.startswith(f"stratacache tier L2 holds an unusable entry at {key}: ")
    assert message != f"stratacache tier L2 holds an unusable entry at {key}: None"


def test_an_entry_of_an_older_generation_is_a_miss_and_a_newer_one_moves_this_environment() -> None:
    clock = FakeClock()
    cache, _ = two_tiers(clock)
    chain = cache._engine.chain
    cache_key = cache.full_key("k")
    chain.generation.observe(2)
    cache.set("k", "old generation")
    cache._engine.chain.guards[0].tier.delete(cache_key)
    chain.generation.observe(3)
    chain.generation.checked()  # no counter read due: the entry decides
    assert cache.get("k") is None
    assert counts(cache, 1) == (0, 1, 0)
    chain.generation.value = 2
    cache.set("k", "same generation")  # written under 2
    cache._engine.chain.guards[0].tier.delete(cache_key)
    chain.generation.value = 2
    assert cache.get("k") == "same generation"
    assert chain.generation.value == 2
    chain.generation.value = 1  # this environment is behind: the entry is proof of a bump
    cache._engine.chain.guards[0].tier.delete(cache_key)
    assert cache.get("k") == "same generation"
    assert chain.generation.value == 2


class PartlyReadTier(FakeSharedTier):
    """A FakeSharedTier whose batch reads lose the keys in ``lost``, as a partly answered batch."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.lost: set[str] = set()
        self.broken = False

    def get_many(self, keys: Any) -> list[object]:
        if self.broken:
            raise ConnectionError("down")
        found = super().get_many(keys)
        if not self.lost:
            return found
        kept = [MISS if key in self.lost else raw for key, raw in zip(keys, found, strict=True)]
        raise PartialReadError("partly read", kept, len(self.lost))


def test_a_batch_read_counts_per_tier_promotes_and_keeps_a_partial_answer() -> None:
    clock = FakeClock()
    shared = PartlyReadTier(clock)
    cache = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="read", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    cache.set_many({"a": 1, "b": 2, "c": 3})
    memory = cache._engine.chain.guards[0].tier
    for name in "abc":
        memory.delete(cache.full_key(name))
    memory_a = cache._engine.chain.guards[0].counts
    assert cache.get_many(["a", "a", "x"]) == {"a": 1}
    assert counts(cache, 1) == (1, 1, 0)
    assert (memory_a.hits, memory_a.misses) == (0, 2)
    assert memory.get(cache.full_key("a")) == 1  # promoted
    shared.lost = {cache.full_key("b")}
    assert cache.get_many(["b", "c"]) == {"c": 3}
    assert counts(cache, 1) == (2, 2, 1)  # one key lost: one error, counted once
    shared.lost = {cache.full_key("b"), cache.full_key("x")}
    memory.delete(cache.full_key("c"))
    assert cache.get_many(["b", "x", "c"]) == {"c": 3}
    assert counts(cache, 1)[2] == 3  # two more lost keys
    shared.lost = set()
    shared.broken = True
    assert cache.get_many(["b"]) == {}
    assert counts(cache, 1)[2] == 4
    shared.broken = False
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}


def test_a_hit_in_a_memory_tier_behind_a_shared_one_is_wrapped_into_it() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    memory = MemoryTier(timer=clock)
    cache = TieredCache(
        [shared, memory], namespace="read", ttl=60, clock=clock, monotonic=clock,
        recorder=MetricsRecorder(interval=3600), freshness=Freshness(grace=30),
    )  # fmt: skip
    chain = cache._engine.chain
    chain.generation.observe(2)
    cache.set("k", "v")
    key = cache.full_key("k")
    del shared.data[key]
    clock.advance(10)
    assert cache.get("k") == "v"
    record = chain.codec.decode(key, shared.data[key][0])
    assert record.value == "v"
    assert len(record.version) == 8
    assert record.version != b"\0" * 8
    assert record.generation == 2
    assert record.expires_at == clock() + 80
    assert record.keep_until is None
    assert record.stale_at == clock() + 50
    assert record.delta == 0.0
