"""Reading through the chain: the exact record a tier's entry becomes, and what is counted."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache.breaker import CircuitBreaker
from stratacache.envelope import VALUE, Record
from stratacache.errors import PartialReadError
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import ANY, FOREIGN, MISS, Foreign, Missing
from tests.support import FakeClock, FakeSharedTier, FaultyTier, cache_over, two_tiers
from tests.support import guard_counts as counts


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


class RunningOutMemory(MemoryTier):
    """A memory tier whose entries run out between their get and the look at what is left."""

    def remaining_ttl(self, key: str) -> float | None | Missing:
        return MISS


def test_a_memory_entry_that_runs_out_as_it_is_read_is_a_miss_each_time() -> None:
    clock = FakeClock()
    cache = cache_over(clock, RunningOutMemory(timer=clock), FakeSharedTier(clock))
    cache.set("k", "v")
    assert cache.get("k") == "v"  # from L2
    assert cache.get("k") == "v"
    assert counts(cache, 0) == (0, 2, 0)
    assert counts(cache, 1) == (2, 0, 0)


class ForeignTier(FakeSharedTier):
    """A shared tier that holds, at the keys of ``foreign``, something not ours; a write
    replaces it only when it expects it (as ``RedisTier``'s script does, an expected
    ``b""`` means nothing there)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.foreign: dict[str, Foreign] = {}

    def get(self, key: str) -> object:
        if key in self.foreign:
            self.calls.append("get")
            return self.foreign[key]
        return super().get(key)

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        expect = None if expect == b"" else expect
        theirs = self.foreign.get(key)
        if theirs is None:
            return super().swap(key, blob, keep, expect)
        if expect not in (ANY, FOREIGN if theirs.version is None else theirs.version):
            return False, theirs
        del self.foreign[key]
        return super().swap(key, blob, keep, ANY)


def test_something_not_ours_is_a_counted_miss_named_in_the_log_and_a_fill_replaces_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    shared = ForeignTier(clock)
    cache = cache_over(clock, MemoryTier(timer=clock), shared)
    chain = cache._engine.chain
    plain, versioned = cache.full_key("plain"), cache.full_key("versioned")
    shared.foreign[plain] = Foreign("a hash")
    shared.foreign[versioned] = Foreign("an item of another shape", b"v" * 8)
    for key, what in ((plain, "a hash"), (versioned, "an item of another shape")):
        trace = chain.begin()
        caplog.clear()
        with caplog.at_level("WARNING", logger="stratacache"):
            assert chain.read(key, trace) is None
        assert [r.getMessage() for r in caplog.records if r.name == "stratacache"] == [
            f"stratacache tier L2 holds an unusable entry at {key}: {what}"
        ]
        chain.write(key, "mine", trace)
        assert chain.codec.decode(key, shared.data[key][0]).value == "mine"
    assert counts(cache, 1) == (0, 2, 2)


@pytest.mark.parametrize(
    "stored",
    [b"junk", b"SC\x03\x00" + b"v" * 8, b"SC\x03\x00" + b"v" * 8 + b"not an envelope"],
    ids=["not ours", "a header cut short", "a broken record of ours"],
)
def test_a_fill_replaces_an_entry_that_cannot_be_decoded(stored: bytes) -> None:
    clock = FakeClock()
    shared = ForeignTier(clock)
    cache = cache_over(clock, MemoryTier(timer=clock), shared)
    chain = cache._engine.chain
    key = cache.full_key("k")
    shared.data[key] = (stored, None)
    trace = chain.begin()
    assert chain.read(key, trace) is None
    chain.write(key, "mine", trace)
    assert chain.codec.decode(key, shared.data[key][0]).value == "mine"


def test_every_entry_of_an_older_generation_is_a_counted_miss() -> None:
    clock = FakeClock()
    cache, _ = two_tiers(clock)
    chain = cache._engine.chain
    chain.generation.observe(1)
    cache.set("k", "old")
    chain.generation.observe(2)
    chain.generation.checked()
    assert cache.get("k") is None
    assert cache.get("k") is None
    assert counts(cache, 1) == (0, 2, 0)


def test_hits_are_counted_each_time() -> None:
    clock = FakeClock()
    cache, _ = two_tiers(clock)
    cache.set("k", "v")
    assert cache.get("k") == cache.get("k") == "v"
    assert counts(cache, 0) == (2, 0, 0)
    assert cache.stats()["L1"] == {"hits": 2, "misses": 0, "errors": 0, "size": 1}
    assert "size" not in cache.stats()["L2"]
    assert set(cache._engine.chain.recorder.pending()) == {"L1"}


def test_a_read_goes_past_a_tier_that_is_skipped_or_fails() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    memory, l2, l3 = MemoryTier(timer=clock), FaultyTier(clock, "L2"), FaultyTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    cache.set("k", "v")
    memory.clear()
    l2.failing.add("get_with_counter")
    l2.failing.add("get")
    assert cache.get("k") == "v"  # L2 failed: L3 answers
    memory.clear()
    l2.breaker = breaker
    open_l2 = cache_over(clock, MemoryTier(timer=clock), l2, l3)
    breaker.failure()
    assert open_l2.get("k") == "v"  # L2's breaker is open: L3 answers
    assert open_l2.get_many(["k", "x"]) == {"k": "v"}
    # A skip for the generation check, per lookup and per promotion into L2; none for a
    # batch that promotes nothing.
    assert open_l2.stats()["L2"]["errors"] == 4
    open_l2.tiers[0].clear("")
    assert open_l2.get_many(["k"]) == {"k": "v"}  # past the open L2 to L3
    l2.breaker = None
    l2.failing = {"get_many"}
    memory.clear()
    assert cache.get_many(["k"]) == {"k": "v"}  # L2's batch failed: L3 answers


def test_a_memory_copy_from_before_another_environments_bump_is_a_counted_miss() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    here = cache_over(clock, MemoryTier(timer=clock), shared, generation_check=5)
    there = cache_over(clock, MemoryTier(timer=clock), shared)
    here.set("k", "old")
    here.set("j", "old")
    assert here.get("k") == "old"  # the generation read once, then memory
    there.invalidate_all()
    there.set("k", "new")
    there.set("j", "new")
    clock.advance(5)
    assert here.get("k") == "new"  # memory's copy is old: L2 has the new one
    assert counts(here, 0) == (1, 1, 0)
    here._engine.chain.guards[0].tier.set(here.full_key("j"), "old", None)
    there.invalidate_all()
    clock.advance(5)
    assert here.get("j") is None
    assert counts(here, 0)[1] == 2


def test_a_read_at_the_metrics_deadline_publishes() -> None:
    clock = FakeClock()
    recorder = MetricsRecorder(interval=60, clock=clock)
    cache = TieredCache(
        [MemoryTier(timer=clock)], namespace="read", ttl=None, clock=clock, recorder=recorder
    )
    cache.set("k", "v")
    clock.advance(60)
    assert cache.get("k") == "v"
    assert recorder.deadline == clock() + 60
    assert recorder.pending() == {}


def test_a_batch_read_of_what_memory_holds_is_answered_by_memory() -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    chain = cache._engine.chain
    cache.set("k", "v")
    shared.calls.clear()
    found = chain.read_many([cache.full_key("k")], chain.begin())
    assert {key: record.value for key, record in found.items()} == {cache.full_key("k"): "v"}
    assert shared.calls == ["read_counter"]


def test_a_shared_tier_that_fails_is_asked_once_per_batch() -> None:
    clock = FakeClock()
    shared = FaultyTier(clock)
    cache = cache_over(clock, MemoryTier(timer=clock), shared)
    chain = cache._engine.chain
    shared.failing = {"read_counter", "get_many", "swap_many"}
    trace = chain.begin()
    assert chain.read_many([cache.full_key("k")], trace) == {}
    chain.write_many({cache.full_key("k"): "v"}, trace)
    assert shared.calls == ["read_counter"]
    shared.failing = {"get_many"}
    trace = chain.begin()
    assert chain.read_many([cache.full_key("j")], trace) == {}
    chain.write_many({cache.full_key("j"): "v"}, trace)
    assert shared.calls == ["read_counter", "get_many"]
    assert shared.data == {}


def test_a_batch_fill_records_the_generation_its_read_saw() -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    chain = cache._engine.chain
    shared.counters[cache._layout.generation_key] = 3
    trace = chain.begin()
    assert chain.read_many([cache.full_key("k")], trace) == {}
    chain.write_many({cache.full_key("k"): "v"}, trace)
    key = cache.full_key("k")
    assert chain.codec.decode(key, shared.data[key][0]).generation == 3


def test_a_durable_counter_that_cannot_be_read_keeps_that_tier_out_of_the_batch() -> None:
    clock = FakeClock()
    memory, l2, l3 = MemoryTier(timer=clock), FaultyTier(clock, "L2"), FaultyTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3)
    chain = cache._engine.chain
    l3.failing = {"read_counter"}
    trace = chain.begin()
    assert chain.read_many([cache.full_key("k")], trace) == {}
    chain.write_many({cache.full_key("k"): "v"}, trace)
    assert cache.full_key("k") not in l3.data  # it failed in this batch: skipped since
    assert cache.full_key("k") in l2.data


class BytearrayTier(FakeSharedTier):
    """A shared tier whose client answers a bytearray, not bytes."""

    def get(self, key: str) -> object:
        raw = super().get(key)
        return bytearray(raw) if isinstance(raw, bytes) else raw


def test_an_entry_read_as_a_bytearray_is_read_like_bytes() -> None:
    clock = FakeClock()
    shared = BytearrayTier(clock)
    cache = cache_over(clock, MemoryTier(timer=clock), shared)
    cache.set("k", "v")
    cache.tiers[0].clear("")
    assert cache.get("k") == "v"
    assert counts(cache, 1) == (1, 0, 0)


def test_a_batch_whose_read_skipped_every_tier_still_writes_its_generation() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    shared = FaultyTier(clock, breaker=breaker)
    cache = cache_over(clock, shared)
    chain = cache._engine.chain
    chain.generation.observe(2)
    chain.generation.checked()  # no generation check due
    breaker.failure()
    trace = chain.begin()
    assert chain.read_many([cache.full_key("k")], trace) == {}  # skipped: the breaker is open
    clock.advance(10)  # the computation took the cooldown: the write probes the tier
    chain.write_many({cache.full_key("k"): "v"}, trace)
    key = cache.full_key("k")
    assert chain.codec.decode(key, shared.data[key][0]).generation == 2
