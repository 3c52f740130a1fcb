"""The one lease, against an in-memory fake of our tier protocol: no server."""

from __future__ import annotations

from typing import Any

from stratacache import MemoryTier, TieredCache
from stratacache._engine.lease import HELD, WAIT
from stratacache.envelope import Record
from stratacache.keys import lock_key
from stratacache.metrics import MetricsRecorder
from tests.support import FakeClock, FakeSharedTier


def environment(shared: FakeSharedTier, clock: FakeClock, **options: Any) -> TieredCache:
    return TieredCache(
        [MemoryTier(timer=clock), shared], namespace="lease", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), **options,
    )  # fmt: skip


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
