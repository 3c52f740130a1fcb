"""The one lease, against an in-memory fake of our tier protocol: no server."""

from __future__ import annotations

from typing import Any

from stratacache import CircuitBreaker, MemoryTier, TieredCache
from stratacache._engine.lease import HELD, WAIT
from stratacache.envelope import Record
from stratacache.keys import lock_key
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS, Capabilities
from tests.support import FakeClock, FakeSharedTier
from tests.support import memory_over as environment


def test_one_trace_holds_a_lease_and_the_others_wait() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock)._engine, environment(shared, clock)._engine
    key = a.chain.layout.key("k")
    guard_a, guard_b = a.lease.guard(a.chain.begin()), b.lease.guard(b.chain.begin())
    assert guard_a is not None
    assert guard_b is not None
    assert a.lease.acquire(guard_a, key, a.chain.begin(), b"aaaaaaaa") == HELD
    assert b.lease.acquire(guard_b, key, b.chain.begin(), b"bbbbbbbb") == WAIT
    assert shared.calls.count("swap") == 2  # one conditional write each, no extra read


def test_a_lease_is_taken_over_once_it_runs_out() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock, lock_lease=5)._engine, environment(shared, clock)._engine
    key = lock_key(a.chain.layout.key("k"))
    guard = a.lease.guard(a.chain.begin())
    assert guard is not None
    assert a.lease.acquire(guard, key, a.chain.begin(), b"aaaaaaaa") == HELD
    waiter = b.chain.begin()
    assert b.lease.acquire(guard, key, waiter, b"bbbbbbbb") == WAIT
    clock.advance(5.001)
    assert b.lease.acquire(guard, key, waiter, b"bbbbbbbb") == HELD


def test_only_the_holder_gives_a_lease_back() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    engine = environment(shared, clock)._engine
    key = engine.chain.layout.key("k")
    trace = engine.chain.begin()
    guard = engine.lease.guard(trace)
    assert guard is not None
    assert engine.lease.acquire(guard, key, trace, b"aaaaaaaa") == HELD
    engine.lease.give_up(guard, key, trace, b"bbbbbbbb")
    assert key in shared.data
    engine.lease.give_up(guard, key, trace, b"aaaaaaaa")
    assert key not in shared.data


def test_a_value_that_landed_first_is_what_the_lease_attempt_returns() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock), environment(shared, clock)
    trace = b._engine.chain.begin()
    assert b._engine.chain.read(b.full_key("k"), trace) is None  # b misses...
    a.set("k", "landed")  # ...then a's value lands
    guard = b._engine.lease.guard(trace)
    assert guard is not None
    got = b._engine.lease.acquire(guard, b.full_key("k"), trace, b"bbbbbbbb")
    assert isinstance(got, Record)
    assert got.value == "landed"


def test_with_the_lock_off_there_is_no_lease() -> None:
    clock = FakeClock()
    engine = environment(FakeSharedTier(clock), clock, lock=False)._engine
    assert engine.lease.guard(engine.chain.begin()) is None
    assert environment(FakeSharedTier(clock), clock)._engine.lease.enabled  # on by default
    memory_only = TieredCache([MemoryTier()], namespace="lease")._engine
    assert memory_only.lease.guard(memory_only.chain.begin()) is None


# ------------------------------------------------------------ what a waiter sees, exactly


class FailingSharedTier(FakeSharedTier):
    """A FakeSharedTier whose named operations raise, as a tier that timed out."""

    def __init__(self, clock: FakeClock, failing: tuple[str, ...] = ()) -> None:
        super().__init__(clock)
        self.failing = failing

    def get(self, key: str) -> object:
        if "get" in self.failing:
            raise ConnectionError("down")
        return super().get(key)

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        if "swap" in self.failing:
            raise ConnectionError("down")
        return super().swap(key, blob, keep, expect)

    def delete_if(self, key: str, expect: bytes) -> bool:
        if "delete_if" in self.failing:
            raise ConnectionError("down")
        return super().delete_if(key, expect)


class ChangingSharedTier(FakeSharedTier):
    """A tier where every conditional write loses to a record that is gone by the next look."""

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        from stratacache.tiers.base import MISS

        self.calls.append("swap")
        return False, MISS


SECRET = b"s" * 32  # signed entries: a record read or written under another key fails its MAC


def signed(shared: FakeSharedTier, clock: FakeClock, **options: Any) -> TieredCache:
    return environment(shared, clock, signing_key=SECRET, **options)


def test_a_waiter_polls_the_value_once_it_lands_counts_one_hit_and_promotes_it() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = signed(shared, clock), signed(shared, clock)
    key = b.full_key("k")
    trace = b._engine.chain.begin()
    guard = b._engine.lease.guard(trace)
    assert guard is not None
    assert a._engine.lease.acquire(guard, key, a._engine.chain.begin(), b"aaaaaaaa") == HELD
    assert b._engine.lease.poll(guard, key, trace, b"bbbbbbbb") == WAIT
    assert trace.seen[(guard.index, key)][2] > clock()  # the holder's lease, remembered
    a.set("k", "landed")
    guard.counts.hits = hits = 5
    calls = len(shared.calls)
    got = b._engine.lease.poll(guard, key, trace, b"bbbbbbbb")
    assert isinstance(got, Record)
    assert got.value == "landed"
    assert guard.counts.hits == hits + 1
    assert shared.calls[calls:] == ["get"]  # promoted into memory only
    assert b._engine.chain.guards[0].tier.get(key) is not MISS


def test_a_waiter_takes_the_lease_once_it_runs_out_and_holds_it_with_its_own_token() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = signed(shared, clock, lock_lease=5), signed(shared, clock, lock_lease=5)
    key = b.full_key("k")
    guard = b._engine.lease.guard(b._engine.chain.begin())
    assert guard is not None
    assert a._engine.lease.acquire(guard, key, a._engine.chain.begin(), b"aaaaaaaa") == HELD
    clock.advance(5.0)  # exactly the lease's end: free
    trace = b._engine.chain.begin()
    assert b._engine.lease.poll(guard, key, trace, b"bbbbbbbb") == HELD
    record = b._engine.chain.codec.decode(key, shared.data[key][0])
    assert record.version == b"bbbbbbbb"
    assert record.expires_at == clock() + 5.0
    assert record.keep_until == clock() + 5.0
    assert shared.data[key][1] == clock() + 5.0
    b._engine.lease.give_up(guard, key, trace, b"bbbbbbbb")
    assert key not in shared.data


def test_a_lease_this_trace_saw_blocks_it_without_a_round_trip_until_its_very_end() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = signed(shared, clock, lock_lease=5), signed(shared, clock, lock_lease=5)
    key = b.full_key("k")
    guard = b._engine.lease.guard(b._engine.chain.begin())
    assert guard is not None
    assert a._engine.lease.acquire(guard, key, a._engine.chain.begin(), b"aaaaaaaa") == HELD
    trace = b._engine.chain.begin()
    assert b._engine.lease.acquire(guard, key, trace, b"bbbbbbbb") == WAIT
    calls = len(shared.calls)
    clock.advance(4.999)
    assert b._engine.lease.acquire(guard, key, trace, b"bbbbbbbb") == WAIT
    assert len(shared.calls) == calls  # judged from what the trace saw: no round trip
    clock.advance(0.001)  # the lease's last instant is over
    assert b._engine.lease.acquire(guard, key, trace, b"bbbbbbbb") == HELD


def test_a_tombstone_is_no_lease_and_is_taken_over_by_its_version() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a = signed(shared, clock, tombstone_ttl=30, lock_lease=5)
    key = a.full_key("k")
    a.set("k", "old")
    a.invalidate("k")
    tombstone_until = shared.data[key][1]
    assert tombstone_until is not None
    trace = a._engine.chain.begin()
    guard = a._engine.lease.guard(trace)
    assert guard is not None
    calls = len(shared.calls)
    assert a._engine.lease.acquire(guard, key, trace, b"aaaaaaaa") == HELD
    assert shared.calls[calls:] == ["swap", "swap"]  # refused, then on the tombstone's version
    record = a._engine.chain.codec.decode(key, shared.data[key][0])
    assert record.expires_at == clock() + 5.0
    # kept as long as the tombstone it replaces, so older fills stay refused
    assert shared.data[key][1] == tombstone_until
    assert record.keep_until == clock() + 30.0  # the tombstone's own protection
    # The lease runs out (exactly now) while its record is still kept: it is free.
    clock.advance(5.0)
    other = a._engine.chain.begin()
    calls = len(shared.calls)
    assert a._engine.lease.acquire(guard, key, other, b"bbbbbbbb") == HELD
    assert shared.calls[calls:] == ["swap", "swap"]


def test_a_value_without_expiry_that_landed_is_returned() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = signed(shared, clock), signed(shared, clock)
    trace = b._engine.chain.begin()
    assert b._engine.chain.read(b.full_key("k"), trace) is None
    a.set("k", "forever", ttl=None)
    guard = b._engine.lease.guard(trace)
    assert guard is not None
    got = b._engine.lease.acquire(guard, b.full_key("k"), trace, b"bbbbbbbb")
    assert isinstance(got, Record)
    assert got.value == "forever"


def test_three_lost_races_in_a_row_make_a_waiter() -> None:
    clock = FakeClock()
    shared = ChangingSharedTier(clock)
    engine = signed(shared, clock)._engine
    trace = engine.chain.begin()
    guard = engine.lease.guard(trace)
    assert guard is not None
    assert engine.lease.acquire(guard, "k", trace, b"aaaaaaaa") == WAIT
    assert shared.calls == ["swap", "swap", "swap"]


def test_a_foreign_record_is_noted_and_taken_over() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    engine = signed(shared, clock)._engine
    key = engine.chain.layout.key("k")
    shared.data[key] = (b"not ours at all", None)
    trace = engine.chain.begin()
    guard = engine.lease.guard(trace)
    assert guard is not None
    assert engine.lease.acquire(guard, key, trace, b"aaaaaaaa") == HELD
    assert shared.calls == ["swap", "swap"]


def test_a_failing_tier_makes_the_trace_skip_it_for_the_rest_of_the_operation() -> None:
    clock = FakeClock()
    for operation in ("get", "swap", "delete_if"):
        shared = FailingSharedTier(clock, (operation,))
        engine = signed(shared, clock)._engine
        trace = engine.chain.begin()
        guard = engine.lease.guard(trace)
        assert guard is not None
        key = engine.chain.layout.key("k")
        if operation == "get":
            assert engine.lease.poll(guard, key, trace, b"aaaaaaaa") is None
        elif operation == "swap":
            assert engine.lease.acquire(guard, key, trace, b"aaaaaaaa") is None
        else:
            engine.lease.give_up(guard, key, trace, b"aaaaaaaa")
        assert guard.index in trace.sick, operation
        assert engine.lease.guard(trace) is None  # no lease from a tier that just failed


def test_an_explicit_lock_is_on_and_only_the_first_shared_tier_holds_leases() -> None:
    clock = FakeClock()
    first, second = FakeSharedTier(clock, "L2"), FakeSharedTier(clock, "L3")
    cache = TieredCache(
        [MemoryTier(timer=clock), first, second], namespace="lease", clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), lock=True,
    )  # fmt: skip
    engine = cache._engine
    assert engine.lease.enabled is True
    trace = engine.chain.begin()
    guard = engine.lease.guard(trace)
    assert guard is not None
    assert guard.tier is first
    trace.sick = frozenset({guard.index})
    assert engine.lease.guard(trace) is None  # never the second tier in its place


def test_a_memory_tier_that_claims_conditional_writes_holds_no_lease() -> None:
    class VersionedMemory(MemoryTier):
        capabilities = Capabilities(versioned=True)

    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = TieredCache(
        [VersionedMemory(timer=clock), shared], namespace="lease", clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    guard = cache._engine.lease.guard(cache._engine.chain.begin())
    assert guard is not None
    assert guard.tier is shared


def test_a_breaker_after_a_failure_keeps_leases_off_its_tier() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    breaker = CircuitBreaker(5, 5, clock=clock)
    shared.breaker = breaker  # type: ignore[assignment]
    engine = signed(shared, clock)._engine
    breaker.failure()  # one failure: reads go on, writes wait out the cooldown
    trace = engine.chain.begin()
    assert breaker.allow() is True
    assert engine.lease.guard(trace) is None
