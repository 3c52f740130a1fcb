"""Writing through the chain: what each tier gets, what is refused, and what is said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine.lease import HELD
from stratacache.breaker import CircuitBreaker
from stratacache.envelope import new_version
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from stratacache.serialization import JsonSerializer
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeSharedTier, FaultyTier, cache_over, two_tiers
from tests.support import library_messages as messages


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


def three_tiers(
    clock: FakeClock, **options: Any
) -> tuple[TieredCache, MemoryTier, FaultyTier, FaultyTier]:
    memory, l2, l3 = MemoryTier(timer=clock), FaultyTier(clock, "L2"), FaultyTier(clock, "L3")
    return cache_over(clock, memory, l2, l3, **options), memory, l2, l3


def value_in(cache: TieredCache, tier: FakeSharedTier, key: str) -> object:
    full_key = cache.full_key(key)
    if full_key not in tier.data:
        return MISS
    return cache._engine.chain.codec.decode(full_key, tier.data[full_key][0]).value


def test_a_fill_goes_slowest_tier_first_and_a_refusal_there_keeps_it_from_the_faster_ones() -> None:
    clock = FakeClock()
    cache, memory, l2, l3 = three_tiers(clock)
    chain = cache._engine.chain
    key = cache.full_key("k")
    fill = chain.begin()
    assert chain.read(key, fill) is None
    other = cache_over(clock, MemoryTier(timer=clock), l3)  # shares only the slowest tier
    other.set("k", "theirs")  # lands while the fill computes
    chain.write(key, "mine", fill)
    assert value_in(cache, l3, "k") == "theirs"
    assert value_in(cache, l2, "k") is MISS
    assert memory.get(key) is MISS


def test_a_fill_that_holds_the_lease_writes_the_leases_tier_first() -> None:
    clock = FakeClock()
    cache, memory, l2, l3 = three_tiers(clock)
    chain, lease = cache._engine.chain, cache._engine.lease
    key = cache.full_key("k")
    fill = chain.begin()
    assert chain.read(key, fill) is None
    guard = lease.guard(fill)
    assert guard is chain.guards[1]
    token = new_version()
    assert lease.acquire(guard, key, fill, token) == HELD
    other = cache_over(clock, MemoryTier(timer=clock), l3)
    other.set("k", "theirs")
    assert chain.write(key, "mine", fill, lease=(guard, token)) is False  # the lease is replaced
    assert value_in(cache, l2, "k") == "mine"
    assert value_in(cache, l3, "k") == "theirs"  # refused there, and so not in memory
    assert memory.get(key) is MISS


def test_a_fill_that_holds_the_lease_writes_every_tier() -> None:
    clock = FakeClock()
    cache, memory, l2, l3 = three_tiers(clock)
    chain, lease = cache._engine.chain, cache._engine.lease
    key = cache.full_key("k")
    fill = chain.begin()
    assert chain.read(key, fill) is None
    guard = chain.guards[1]
    token = new_version()
    assert lease.acquire(guard, key, fill, token) == HELD
    assert chain.write(key, "mine", fill, lease=(guard, token)) is False
    assert (value_in(cache, l2, "k"), value_in(cache, l3, "k")) == ("mine", "mine")
    assert memory.get(key) == "mine"


def test_a_lease_whose_tier_failed_the_write_is_still_to_give_up() -> None:
    clock = FakeClock()
    cache, memory, l2, l3 = three_tiers(clock)
    chain, lease = cache._engine.chain, cache._engine.lease
    key = cache.full_key("k")
    fill = chain.begin()
    assert chain.read(key, fill) is None
    guard = chain.guards[1]
    token = new_version()
    assert lease.acquire(guard, key, fill, token) == HELD
    l2.failing.add("swap")
    assert chain.write(key, "mine", fill, lease=(guard, token)) is True
    assert value_in(cache, l3, "k") == "mine"
    assert memory.get(key) == "mine"
    second = chain.begin()
    l2.failing.clear()
    assert chain.read(cache.full_key("j"), second) is None
    token = new_version()
    assert lease.acquire(guard, cache.full_key("j"), second, token) == HELD
    cache_over(clock, MemoryTier(timer=clock), l3).set("j", "theirs")
    l2.failing.add("swap")
    assert chain.write(cache.full_key("j"), "mine", second, lease=(guard, token)) is True


def test_a_fill_whose_lease_tier_fails_gives_the_lease_up_without_asking_that_tier_again() -> None:
    clock = FakeClock()
    cache, _, l2, _ = three_tiers(clock)

    def compute() -> str:
        l2.failing.update({"swap", "delete_if"})  # the tier goes away while this runs
        return "v"

    assert cache.get_or_compute("k", compute) == "v"
    assert l2.calls.count("swap") == 2  # the lease, then the failed write
    assert "delete_if" not in l2.calls


def test_a_value_too_big_for_the_cache_keeps_the_lease_to_give_up() -> None:
    clock = FakeClock()
    cache, _, _, _ = three_tiers(clock, max_value_bytes=100)
    chain, lease = cache._engine.chain, cache._engine.lease
    key = cache.full_key("k")
    fill = chain.begin()
    assert chain.read(key, fill) is None
    token = new_version()
    assert lease.acquire(chain.guards[1], key, fill, token) == HELD
    assert chain.write(key, "x" * 1000, fill, lease=(chain.guards[1], token)) is True
    assert chain.write(key, "x" * 1000, chain.begin()) is False


def test_a_tier_that_just_failed_takes_no_write_until_its_cooldown_passed() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, cooldown=10, clock=clock)
    memory, l2 = MemoryTier(timer=clock), FaultyTier(clock, "L2", breaker=breaker)
    cache = cache_over(clock, memory, l2)
    breaker.failure()  # closed still, but a write waits out the cooldown
    cache.set("k", "v")
    cache.set_many({"m": "w"})
    assert l2.data == {}
    assert cache._engine.chain.guards[1].counts.errors == 2
    assert memory.get(cache.full_key("k")) == "v"
    assert memory.get(cache.full_key("m")) == "w"
    clock.advance(10)
    cache.set("k", "v")
    assert cache.full_key("k") in l2.data


def test_a_tier_that_refuses_a_write_does_not_keep_it_from_the_faster_ones() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    memory, l2 = MemoryTier(timer=clock), FaultyTier(clock, "L2")
    l3 = FaultyTier(clock, "L3", breaker=breaker, max_value_bytes=200)
    cache = cache_over(clock, memory, l2, l3)
    cache.set("big", "x" * 300)  # too big for L3
    cache.set_many({"many": "x" * 300})
    assert value_in(cache, l2, "big") == value_in(cache, l2, "many") == "x" * 300
    assert memory.get(cache.full_key("big")) == memory.get(cache.full_key("many")) == "x" * 300
    breaker.failure()  # L3's breaker opens
    cache.set_many({"open": 1})
    assert value_in(cache, l2, "open") == 1
    assert memory.get(cache.full_key("open")) == 1
    assert l3.data.keys() == set()


def test_an_old_fill_writes_memory_only() -> None:
    clock = FakeClock()
    cache, memory, l2, l3 = three_tiers(clock, tombstone_ttl=30)
    chain = cache._engine.chain
    fill = chain.begin()
    clock.advance(31)  # longer than a tombstone lives: it could have missed an invalidation
    chain.write(cache.full_key("k"), "v", fill)
    chain.write_many({cache.full_key("m"): "w"}, fill)
    assert l2.data == l3.data == {}
    assert memory.get(cache.full_key("k")) == "v"
    assert memory.get(cache.full_key("m")) == "w"
    exactly = chain.begin()
    clock.advance(30)  # exactly a tombstone's life: still young enough
    chain.write(cache.full_key("k"), "v", exactly)
    assert value_in(cache, l2, "k") == "v"


def test_a_value_of_exactly_a_tiers_limit_is_written_there() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    probe = cache_over(clock, memory)
    chain = probe._engine.chain
    size = chain.codec.overhead + len(chain.codec.payload("v" * 50).data)
    l2 = FaultyTier(clock, "L2", max_value_bytes=size)
    cache = cache_over(clock, MemoryTier(timer=clock), l2)
    cache.set("k", "v" * 50)
    assert value_in(cache, l2, "k") == "v" * 50
    cache.set("k2", "v" * 51)
    assert value_in(cache, l2, "k2") is MISS


def test_an_explicit_write_wins_over_a_fill_that_began_before_it_and_ends_its_flight() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    cache = cache_over(clock, memory)
    chain = cache._engine.chain
    key = cache.full_key("k")
    other = cache.full_key("other")
    fill = chain.begin()
    assert chain.flights.try_lead(key)
    assert chain.flights.try_lead(other)
    cache.set("k", "new")
    assert chain.flights.try_lead(key)  # a caller after the write does not join the old flight
    assert not chain.flights.try_lead(other)  # another key's flight goes on
    chain.flights.release(key)
    chain.write(key, "old", fill)
    assert memory.get(key) == "new"


def test_a_fill_that_began_before_an_invalidation_stays_out_of_memory() -> None:
    clock = FakeClock()
    memory = MemoryTier(timer=clock)
    cache = cache_over(clock, memory)
    chain = cache._engine.chain
    fill = chain.begin()
    cache.invalidate("k")
    chain.write(cache.full_key("k"), "old", fill)
    chain.write_many({cache.full_key("k"): "old"}, fill)
    assert memory.get(cache.full_key("k")) is MISS


def test_a_batch_fill_writes_every_value_with_its_lifetime() -> None:
    clock = FakeClock()
    cache, memory, l2, _ = three_tiers(clock)
    chain = cache._engine.chain
    a, b = cache.full_key("a"), cache.full_key("b")
    chain.write_many({a: 1, b: 2}, chain.begin(), ttl=30)
    assert (memory.get(a), memory.get(b)) == (1, 2)
    assert memory.remaining_ttl(a) == memory.remaining_ttl(b) == pytest.approx(30)
    assert l2.data[a][1] == clock() + 30


def test_a_batch_fill_replaces_what_it_saw_and_keeps_it_as_long_as_it_lives() -> None:
    clock = FakeClock()
    cache, _, l2, _ = three_tiers(clock)
    chain = cache._engine.chain
    key = cache.full_key("k")
    chain.generation.observe(1)
    cache.set("k", "old generation")
    chain.generation.observe(2)
    chain.generation.checked()
    trace = chain.begin()
    assert chain.read_many([key], trace) == {}  # an entry of generation 1: a miss, noted
    chain.write_many({key: "new"}, trace)
    record = chain.codec.decode(key, l2.data[key][0])
    assert (record.value, record.generation) == ("new", 2)
    assert l2.data[key][1] == clock() + 60


def test_a_tiers_own_ttl_wins_in_a_batch_and_the_batchs_ttl_elsewhere() -> None:
    clock = FakeClock()
    cache, memory, l2, _ = three_tiers(clock)
    l2.ttl = 10.0
    cache.set_many({"k": "v"}, ttl=5)
    key = cache.full_key("k")
    record = cache._engine.chain.codec.decode(key, l2.data[key][0])
    assert record.expires_at == clock() + 10
    assert memory.remaining_ttl(key) == pytest.approx(5)


def test_a_batch_written_signed_is_read_back_by_another_environment() -> None:
    clock = FakeClock()
    l2 = FakeSharedTier(clock)
    cache_over(clock, MemoryTier(timer=clock), l2, signing_key=b"s" * 32).set_many({"k": "v"})
    other = cache_over(clock, MemoryTier(timer=clock), l2, signing_key=b"s" * 32)
    assert other.get("k") == "v"


def test_a_batch_names_each_value_it_leaves_out_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock, max_value_bytes=100)
    with caplog.at_level("WARNING", logger="stratacache"):
        cache.set_many({"big": "x" * 1000})
        cache.set_many({"thing": object()})
    big, unshareable = messages(caplog)
    assert big.startswith(f"stratacache left {cache.full_key('big')} uncached: the serialized ")
    assert unshareable.startswith(
        f"stratacache left {cache.full_key('thing')} out of the shared tiers, in memory only: "
        "cannot serialize"
    )
    assert shared.data == {}


def test_without_freshness_a_record_carries_no_computing_time() -> None:
    clock = FakeClock()
    cache, shared = two_tiers(clock)
    chain = cache._engine.chain
    key = cache.full_key("k")
    chain.write(key, "v", chain.begin(), delta=2.0)
    assert chain.codec.decode(key, shared.data[key][0]).delta == 0.0


def test_a_memory_only_cache_never_serializes_and_keeps_what_its_limit_allows() -> None:
    clock = FakeClock()

    class CountingJson(JsonSerializer):
        dumped = 0

        def dumps(self, value: object) -> bytes:
            CountingJson.dumped += 1
            return super().dumps(value)

    cache = cache_over(clock, MemoryTier(timer=clock), serializer=CountingJson())
    cache.set("k", "x" * 1000)
    cache.set_many({"m": "x" * 1000})
    assert CountingJson.dumped == 0
    assert cache.get("k") == cache.get("m") == "x" * 1000
    limited = cache_over(clock, MemoryTier(timer=clock, max_value_bytes=100))
    limited.set("k", "x" * 1000)
    limited.set_many({"m": "x" * 1000})
    assert limited.get("k") is None
    assert limited.get("m") is None


def test_every_memory_tier_takes_a_batch() -> None:
    clock = FakeClock()
    first, second = MemoryTier(timer=clock), MemoryTier(timer=clock, name="L1b")
    cache = cache_over(clock, first, second, FakeSharedTier(clock))
    cache.set_many({"k": "v"})
    cache._engine.chain.write_many({cache.full_key("f"): "w"}, cache._engine.chain.begin())
    assert first.get(cache.full_key("k")) == second.get(cache.full_key("k")) == "v"
    assert first.get(cache.full_key("f")) == second.get(cache.full_key("f")) == "w"


def test_a_tier_that_failed_earlier_in_an_operation_is_neither_written_nor_measured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    memory, l3 = MemoryTier(timer=clock), FakeSharedTier(clock, "L3")
    l2 = FaultyTier(clock, "L2", max_value_bytes=100)
    cache = cache_over(clock, memory, l2, l3)
    chain = cache._engine.chain
    cache_over(clock, MemoryTier(timer=clock), l3).set("found", "x" * 300)
    l2.failing = {"get", "get_many", "get_with_counter", "read_counter"}
    with caplog.at_level("WARNING", logger="stratacache"):
        trace = chain.begin()
        assert chain.read(cache.full_key("k"), trace) is None
        chain.write(cache.full_key("k"), "x" * 300, trace)
        trace = chain.begin()
        assert chain.read_many([cache.full_key("m")], trace) == {}
        chain.write_many({cache.full_key("m"): "x" * 300}, trace)
        assert cache.get("found") == "x" * 300  # promoted past L2
    assert not [line for line in messages(caplog) if "exceed its limit" in line]
    assert l2.data == {}


class SetFailingMemory(MemoryTier):
    """A memory tier whose writes fail (a custom tier's, say); ``sets`` counts them."""

    def __init__(self, timer: FakeClock) -> None:
        super().__init__(timer=timer)
        self.sets = 0

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.sets += 1
        raise RuntimeError("no room")

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        self.sets += 1
        raise RuntimeError("no room")


def test_a_memory_tier_that_failed_a_promotion_is_not_written_again_by_the_refresh() -> None:
    clock = FakeClock()
    memory = SetFailingMemory(clock)
    cache = cache_over(clock, memory, FakeSharedTier(clock), freshness=Freshness(grace=30))
    cache.set("k", "v")
    clock.advance(61)  # stale in L2
    memory.sets = 0
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert memory.sets == 1  # the promotion's; the refresh's write skips the failed tier


def test_a_tier_that_failed_a_batch_write_is_not_asked_by_the_next_batch_of_the_operation() -> None:
    clock = FakeClock()
    memory, shared = SetFailingMemory(clock), FaultyTier(clock)
    cache = cache_over(clock, memory, shared)
    chain = cache._engine.chain
    shared.failing = {"swap_many"}
    trace = chain.begin()
    chain.write_many({cache.full_key("a"): 1, cache.full_key("b"): 2}, trace)
    chain.write_many({cache.full_key("c"): None, cache.full_key("d"): None}, trace, ttl=5)
    assert shared.calls.count("swap_many") == 1
    assert memory.sets == 1


class KeepRecordingTier(FaultyTier):
    """Notes how long each write asks it to keep its record: like DynamoDB, whose ttl is
    what the write says, it keeps no record longer on its own."""

    def __init__(self, clock: FakeClock, name: str = "L2") -> None:
        super().__init__(clock, name)
        self.keeps: dict[str, float | None] = {}

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        self.keeps[key] = keep
        return super().swap(key, blob, keep, expect)


def test_what_replaces_a_tombstone_is_kept_at_least_as_long_as_the_tombstone() -> None:
    clock = FakeClock()
    memory, l2, l3 = MemoryTier(timer=clock), KeepRecordingTier(clock), FakeSharedTier(clock, "L3")
    cache = cache_over(clock, memory, l2, l3, lock=False)
    chain = cache._engine.chain
    for name in ("one", "many", "promoted"):
        cache.invalidate(name)  # a tombstone kept 900 s
    assert cache.get_or_compute("one", lambda: "v") == "v"
    assert l2.keeps[cache.full_key("one")] == 900
    trace = chain.begin()
    assert chain.read_many([cache.full_key("many")], trace) == {}
    chain.write_many({cache.full_key("many"): "v"}, trace)
    assert l2.keeps[cache.full_key("many")] == 900
    cache_over(clock, MemoryTier(timer=clock), l3).set("promoted", "v")  # L3 only
    assert cache.get("promoted") == "v"
    assert l2.keeps[cache.full_key("promoted")] == 900
