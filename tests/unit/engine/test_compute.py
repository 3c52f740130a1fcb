"""The compute-once algorithm and its two drivers, against an in-memory fake tier: no server.

Two environments share one fake shared tier. The generators are driven by
hand where an interleaving matters: environment A takes the lease and stops at
the computation; B's first pause lets A finish.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine import compute
from stratacache._engine.compute import COMPUTE, Io
from stratacache.freshness import Freshness
from stratacache.keys import lock_key
from stratacache.metrics import MetricsRecorder
from tests.support import FakeClock, FakeSharedTier


def environment(shared: FakeSharedTier, clock: FakeClock, **options: Any) -> TieredCache:
    return TieredCache(
        [MemoryTier(timer=clock), shared], namespace="compute", ttl=60, clock=clock,
        monotonic=clock, sleep=clock.advance, recorder=MetricsRecorder(interval=3600),
        **options,
    )  # fmt: skip


def until_compute(steps: compute.Steps) -> compute.Steps:
    """Drive ``steps`` by hand up to the user's function (a flight led inline); the
    generator that waits for the function's value."""
    send: Any = None
    while True:
        effect = steps.send(send)
        if effect is COMPUTE:
            return steps
        if type(effect) is Io:
            send = effect.fn(*effect.args)
        else:  # a Flight: lead it here
            steps = effect.steps()
            send = None


def finish(steps: compute.Steps, value: object) -> object:
    send: Any = value
    while True:
        try:
            effect = steps.send(send)
        except StopIteration as stop:
            return stop.value
        send = effect.fn(*effect.args)


def test_a_cold_key_is_computed_once_across_environments() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock), environment(shared, clock)
    origin: list[str] = []
    steps = until_compute(  # A holds the lease and computes...
        compute.get_or_compute(a._engine.chain, a._engine.lease, a.full_key("k"))
    )
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # ...while B waits: its first pause lets A finish
        pauses.append(seconds)
        clock.advance(seconds)
        if len(pauses) == 1:
            origin.append("a")
            finish(steps, "from a")

    b._engine.sleep = pause

    def from_b() -> str:
        origin.append("b")
        return "from b"

    assert b.get_or_compute("k", from_b) == "from a"
    assert origin == ["a"]
    assert len(pauses) == 1
    assert a.get("k") == b.get("k") == "from a"


def test_a_waiter_computes_itself_once_the_wait_is_up() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock), environment(shared, clock, lock_wait=1)
    started = clock.now
    steps = until_compute(compute.get_or_compute(a._engine.chain, a._engine.lease, a.full_key("k")))
    assert b.get_or_compute("k", lambda: "from b") == "from b"  # A has not finished
    assert clock.now - started >= 1  # B paused (on the fake clock) for its whole wait
    assert finish(steps, "late a") == "late a"  # A's write expects its lease: B's value stays
    assert environment(shared, clock).get("k") == "from b"


def test_a_failed_computation_gives_the_lease_back() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)

    def fails() -> str:
        raise RuntimeError("origin down")

    with pytest.raises(RuntimeError, match="origin down"):
        cache.get_or_compute("k", fails)
    assert cache.full_key("k") not in shared.data
    assert shared.calls.count("delete_if") == 1


def test_should_cache_keeps_a_value_out_of_every_tier_and_gives_the_lease_back() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)
    values = iter(["error page", "good"])

    def answer() -> str:
        return next(values)

    def keep(value: object) -> bool:
        return value != "error page"

    assert cache.get_or_compute("k", answer, should_cache=keep) == "error page"
    assert cache.full_key("k") not in shared.data  # neither the value nor the lease
    assert not cache.has("k")
    assert cache.get_or_compute("k", answer, should_cache=keep) == "good"
    assert cache.get("k") == "good"


def test_a_stale_entry_is_served_while_another_environment_refreshes_it() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    grace = Freshness(grace=600)
    a, b = environment(shared, clock, freshness=grace), environment(shared, clock, freshness=grace)
    a.set("k", "old")
    clock.advance(61)  # stale, within its grace
    engine = a._engine
    refresher = engine.chain.begin()
    guard = engine.lease.guard(refresher)
    assert guard is not None
    held = engine.lease.acquire(guard, lock_key(a.full_key("k")), refresher, b"aaaaaaaa")
    assert held == "held"  # A refreshes it (the same lease as a fill's, beside the entry)
    assert b.get_or_compute("k", lambda: "new") == "old"  # B serves the stale value
    engine.lease.give_up(guard, lock_key(a.full_key("k")), refresher, b"aaaaaaaa")
    assert b.get_or_compute("k", lambda: "new") == "new"  # free again: B refreshes it
    assert lock_key(a.full_key("k")) not in shared.data  # and gave the lease back


def test_the_async_driver_takes_the_same_steps() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = environment(shared, clock), environment(shared, clock)
    steps = until_compute(compute.get_or_compute(a._engine.chain, a._engine.lease, a.full_key("k")))
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds)
        if len(pauses) == 1:
            finish(steps, "from a")

    async def from_b() -> str:
        return "from b"

    engine = b._engine
    got = asyncio.run(
        compute.arun(
            compute.get_or_compute(engine.chain, engine.lease, b.full_key("k")),
            from_b,
            engine.chain.flights,
            offload=False,
            sleep=pause,
        )
    )
    assert got == "from a"
    assert len(pauses) == 1


def test_a_refresh_writes_over_only_its_own_tombstones() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)
    cache.set("k", "v1")
    stale_fill = cache._engine.chain.begin()
    assert cache._engine.chain.read(cache.full_key("k"), stale_fill) is not None
    assert cache._engine.refresh(cache.full_key("k"), lambda: "v2") == "v2"
    cache._engine.chain.write(cache.full_key("k"), "v1 again", stale_fill)  # began before
    assert cache.get("k") == "v2"
