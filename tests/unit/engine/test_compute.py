"""The compute-once algorithm and its two drivers, against an in-memory fake tier: no server.

Two environments share one fake shared tier. The generators are driven by
hand where an interleaving matters: environment A takes the lease and stops at
the computation; B's first pause lets A finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine import compute
from stratacache._engine.compute import COMPUTE, Io
from stratacache.envelope import version_of
from stratacache.freshness import Freshness
from stratacache.keys import lock_key
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import FOREIGN, MISS, Foreign
from tests.support import (
    FakeClock,
    FakeSharedTier,
    FaultyTier,
    all_waiting,
    cache_over,
    memory_over,
    wait_until,
)


def environment(shared: FakeSharedTier, clock: FakeClock, **options: Any) -> TieredCache:
    """:func:`~tests.support.memory_over` whose lock waits advance the fake clock."""
    return memory_over(shared, clock, namespace="compute", sleep=clock.advance, **options)


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
    assert environment(shared, clock).get("k") == "v2"  # in the shared tier too


# ------------------------------------------------------------ refreshes and waits, exactly


def stale_environment(shared: FakeSharedTier, clock: FakeClock, **options: Any) -> TieredCache:
    return environment(shared, clock, freshness=Freshness(grace=600), **options)


def test_a_refresh_that_fails_serves_the_stale_entry_once_it_is_stale_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    cache.set("k", "old")
    clock.advance(60)  # exactly its ttl: stale

    def fails() -> str:
        raise RuntimeError("origin down")

    with caplog.at_level("WARNING", logger="stratacache"):
        assert cache.get_or_compute("k", fails) == "old"
    assert [r.getMessage() for r in caplog.records if r.name == "stratacache"] == [
        f"stratacache served a stale {cache.full_key('k')}: refreshing it failed:"
        " RuntimeError: origin down"
    ]
    assert cache._engine.chain.stale_served == 1
    assert lock_key(cache.full_key("k")) not in shared.data  # the refresh lease given back
    assert cache._engine.chain.flights._flights == {}


def test_an_early_refresh_that_fails_raises_and_serves_nothing_stale() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    early = Freshness(grace=600, early_refresh=1.0, rng=lambda: 0.999999)
    cache = environment(shared, clock, freshness=early)

    def slow() -> str:
        clock.advance(5)  # a 5 s computation: XFetch refreshes it well before its ttl
        return "old"

    assert cache.get_or_compute("k", slow) == "old"
    clock.advance(50)  # fresh still, but due for an early refresh

    def fails() -> str:
        raise RuntimeError("origin down")

    with pytest.raises(RuntimeError, match="origin down"):
        cache.get_or_compute("k", fails)
    assert cache._engine.chain.stale_served == 0
    assert cache._engine.chain.flights._flights == {}


def test_a_stale_entry_is_served_without_a_computation_while_this_environment_refreshes_it() -> (
    None
):
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    cache.set("k", "old")
    clock.advance(61)
    calls: list[str] = []

    def new() -> str:
        calls.append("new")
        return "new"

    assert cache._engine.chain.flights.try_lead(cache.full_key("k"))  # a refresh under way
    assert cache.get_or_compute("k", new) == "old"
    assert calls == []
    assert cache._engine.chain.stale_served == 1


def test_serving_while_another_environment_refreshes_counts_it_and_touches_no_lease() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a, b = stale_environment(shared, clock), stale_environment(shared, clock)
    a.set("k", "old")
    clock.advance(61)
    engine = a._engine
    refresher = engine.chain.begin()
    guard = engine.lease.guard(refresher)
    assert guard is not None
    assert engine.lease.acquire(guard, lock_key(a.full_key("k")), refresher, b"aaaaaaaa")
    calls = len(shared.calls)
    assert b.get_or_compute("k", lambda: "new") == "old"
    assert b._engine.chain.stale_served == 1
    assert "delete_if" not in shared.calls[calls:]  # not its lease: nothing to give back
    assert b._engine.chain.flights._flights == {}


def test_a_refresh_honours_should_cache() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    cache.set("k", "old")
    clock.advance(61)
    assert cache.get_or_compute("k", lambda: "error page", should_cache=lambda v: False) == (
        "error page"
    )
    assert cache.get("k") == "old"  # still the stale entry
    assert lock_key(cache.full_key("k")) not in shared.data


def test_without_the_lock_should_cache_still_keeps_a_value_out() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock, lock=False)
    assert cache.get_or_compute("k", lambda: "error page", should_cache=lambda v: False) == (
        "error page"
    )
    assert not cache.has("k")
    assert shared.data == {}


def test_a_waiter_backs_off_from_5_ms_doubling_to_100_ms_for_exactly_its_wait() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds)

    a = environment(shared, clock, lock_lease=30)
    b = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="compute", ttl=60, clock=clock,
        monotonic=clock, sleep=sleep, recorder=MetricsRecorder(interval=3600), lock_wait=1,
    )  # fmt: skip
    steps = until_compute(compute.get_or_compute(a._engine.chain, a._engine.lease, a.full_key("k")))
    assert b.get_or_compute("k", lambda: "from b") == "from b"
    assert [round(p, 6) for p in pauses[:7]] == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1]
    assert sum(pauses) == pytest.approx(1.0, abs=1e-5)  # the last pause ends at the deadline
    assert finish(steps, "late a") == "late a"


def test_a_fill_under_the_lease_leaves_its_value_and_releases_nothing_else() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock, freshness=Freshness(early_refresh=1.0))

    def slow() -> str:
        clock.advance(2)
        return "v"

    assert cache.get_or_compute("k", slow) == "v"
    assert "delete_if" not in shared.calls  # the value replaced the lease: nothing to give back
    record = cache._engine.chain.codec.decode(
        cache.full_key("k"), shared.data[cache.full_key("k")][0]
    )
    assert record.value == "v"
    assert record.delta == 2.0  # how long computing took, for early refresh


def test_a_value_the_shared_tier_cannot_take_gives_the_lease_back() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)
    unshareable = object()
    assert cache.get_or_compute("k", lambda: unshareable) is unshareable
    assert cache.full_key("k") not in shared.data  # no value, and no lease left behind
    assert shared.calls.count("delete_if") == 1


class ThreadedSharedTier(FakeSharedTier):
    """A FakeSharedTier that notes the thread and a context variable of every read."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.readers: list[tuple[int, str]] = []

    def get(self, key: str) -> object:
        self.readers.append((threading.get_ident(), REQUEST.get()))
        return super().get(key)

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        self.readers.append((threading.get_ident(), REQUEST.get()))
        return super().swap(key, blob, keep, expect)


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_async_tier_io_runs_in_a_worker_thread_with_the_callers_context() -> None:
    clock = FakeClock()
    shared = ThreadedSharedTier(clock)
    cache = environment(shared, clock)

    async def value() -> str:
        return "v"

    async def main() -> tuple[str, int]:
        REQUEST.set("request-1")
        return await cache.aget_or_compute("k", value), threading.get_ident()

    got, loop_thread = asyncio.run(main())
    assert got == "v"
    assert len(shared.readers) >= 2  # the lookup, and the lease and write of the fill
    assert all(reader != loop_thread for reader, _ in shared.readers)
    assert {request for _, request in shared.readers} == {"request-1"}


def test_async_memory_only_io_stays_in_the_event_loop_thread() -> None:
    cache = TieredCache([MemoryTier()], namespace="compute-memory")
    chain = cache._engine.chain
    threads: list[int] = []
    read = chain.read

    def noted(full_key: str, trace: Any) -> Any:
        threads.append(threading.get_ident())
        return read(full_key, trace)

    chain.read = noted  # type: ignore[method-assign]

    async def value() -> str:
        return "v"

    async def main() -> tuple[str, int]:
        return await cache.aget_or_compute("k", value), threading.get_ident()

    got, loop_thread = asyncio.run(main())
    assert got == "v"
    assert threads == [loop_thread]


def test_an_async_computation_that_fails_reaches_the_caller_and_gives_the_lease_back() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = environment(shared, clock)

    async def fails() -> str:
        raise RuntimeError("origin down")

    with pytest.raises(RuntimeError, match="origin down"):
        asyncio.run(cache.aget_or_compute("k", fails))
    assert cache.full_key("k") not in shared.data
    assert shared.calls.count("delete_if") == 1


def test_concurrent_fills_of_two_keys_never_share_a_flight() -> None:
    clock = FakeClock()
    cache = environment(FakeSharedTier(clock), clock)
    gate = threading.Event()
    got: list[object] = []

    def slow() -> str:
        gate.wait(5)  # set by b's own computation; the timeout only ends a broken run
        return "a"

    def other() -> str:
        gate.set()
        return "b"

    first = threading.Thread(target=lambda: got.append(cache.get_or_compute("a", slow)))
    first.start()
    wait_until(lambda: all_waiting([first]))  # a's computation under way
    try:
        assert cache.get_or_compute("b", other) == "b"
    finally:
        gate.set()
        first.join(60)
    assert got == ["a"]


def test_a_waiter_that_sees_the_lease_run_out_fills_under_its_own_lease() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    a = environment(shared, clock, lock_lease=1)
    b = environment(shared, clock, lock_wait=5)
    steps = until_compute(compute.get_or_compute(a._engine.chain, a._engine.lease, a.full_key("k")))
    assert b.get_or_compute("k", lambda: "from b") == "from b"
    assert "delete_if" not in shared.calls  # b's value replaced b's lease
    record = b._engine.chain.codec.decode(b.full_key("k"), shared.data[b.full_key("k")][0])
    assert record.value == "from b"
    assert finish(steps, "late a") == "late a"  # a's lease was taken over: its write fails
    assert environment(shared, clock).get("k") == "from b"


def test_a_fresh_hit_with_refresh_facts_is_served_without_a_computation() -> None:
    clock = FakeClock()
    cache = stale_environment(FakeSharedTier(clock), clock)
    calls: list[str] = []

    def value() -> str:
        calls.append("v")
        return "v"

    assert cache.get_or_compute("k", value) == "v"
    clock.advance(59)
    assert cache.get_or_compute("k", value) == "v"
    assert calls == ["v"]


def test_a_refresh_stores_its_value_and_counts_each_stale_serve() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    cache.set("k", "old")
    clock.advance(61)
    assert cache._engine.chain.flights.try_lead(cache.full_key("k"))
    assert cache.get_or_compute("k", lambda: "new") == "old"
    assert cache.get_or_compute("k", lambda: "new") == "old"
    assert cache._engine.chain.stale_served == 2
    cache._engine.chain.flights.release(cache.full_key("k"))
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert cache.get("k") == "new"


def test_async_fills_of_two_keys_never_share_a_task() -> None:
    clock = FakeClock()
    cache = environment(FakeSharedTier(clock), clock)

    async def main() -> list[str]:
        other_started = asyncio.Event()

        async def first() -> str:
            await other_started.wait()  # only b's own computation lets a finish
            return "a"

        async def second() -> str:
            other_started.set()
            return "b"

        together = asyncio.gather(
            cache.aget_or_compute("a", first), cache.aget_or_compute("b", second)
        )
        return list(await asyncio.wait_for(together, 30))

    assert asyncio.run(main()) == ["a", "b"]


# ------------------------------------------------ a refresh that began from memory's copy
# It has not read the shared tiers: it looks at each first, so its write replaces their
# stale copies instead of expecting nothing there.


def stale_in_memory(cache: TieredCache, clock: FakeClock) -> str:
    """``cache`` holds ``"old"`` in every tier, stale now (within its grace); its full key."""
    cache.set("k", "old")
    clock.advance(61)
    return cache.full_key("k")


def stored_value(cache: TieredCache, tier: FakeSharedTier) -> object:
    """The value of ``k``'s record as ``tier`` holds it."""
    full_key = cache.full_key("k")
    return cache._engine.chain.codec.decode(full_key, tier.data[full_key][0]).value


def test_a_refresh_from_memory_replaces_the_shared_tiers_stale_copy() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    stale_in_memory(cache, clock)
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"
    assert environment(shared, clock).get("k") == "new"


def test_a_refresh_from_memory_fills_a_shared_tier_that_lost_its_copy() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    del shared.data[stale_in_memory(cache, clock)]
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"


def test_a_refresh_from_memory_writes_over_a_fill_lease_another_environment_holds() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    full_key = stale_in_memory(cache, clock)
    del shared.data[full_key]  # gone there, and another environment is filling it
    other = stale_environment(shared, clock)._engine
    filler = other.chain.begin()
    guard = other.lease.guard(filler)
    assert guard is not None
    assert other.lease.acquire(guard, full_key, filler, b"bbbbbbbb") == "held"
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"  # the filler's write, expecting its lease, fails


def test_a_refresh_from_a_shared_hit_reads_that_tier_once() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = cache_over(clock, shared, freshness=Freshness(grace=600))
    stale_in_memory(cache, clock)
    shared.calls.clear()
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert shared.calls.count("get") + shared.calls.count("get_with_counter") == 1
    assert stored_value(cache, shared) == "new"


def test_a_refresh_from_memory_looks_past_a_shared_tier_that_fails() -> None:
    clock = FakeClock()
    failing, slowest = FaultyTier(clock, "L2"), FakeSharedTier(clock, "L3")
    cache = cache_over(
        clock, MemoryTier(timer=clock), failing, slowest, freshness=Freshness(grace=600)
    )
    stale_in_memory(cache, clock)
    failing.failing = {"get"}
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, slowest) == "new"


class ForeignTier(FakeSharedTier):
    """A :class:`FakeSharedTier` that answers for the keys in ``foreign`` what a real tier
    answers for something not ours there: a Redis value of another type (no version), a
    DynamoDB item whose version attribute does not match its value (that version)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.foreign: dict[str, Foreign] = {}

    def get(self, key: str) -> object:
        found = super().get(key)
        return self.foreign.get(key, found) if found is not MISS else found


def test_a_refresh_from_memory_replaces_something_not_ours_without_a_version() -> None:
    clock = FakeClock()
    shared = ForeignTier(clock)
    cache = stale_environment(shared, clock)
    full_key = stale_in_memory(cache, clock)
    shared.data[full_key] = (b"a list of another app", None)
    shared.foreign[full_key] = Foreign("a Redis value of another type")
    assert cache.get_or_compute("k", lambda: "new") == "new"
    del shared.foreign[full_key]
    assert stored_value(cache, shared) == "new"


def test_a_refresh_from_memory_replaces_something_not_ours_by_its_version() -> None:
    clock = FakeClock()
    shared = ForeignTier(clock)
    cache = stale_environment(shared, clock)
    full_key = stale_in_memory(cache, clock)
    blob = shared.data[full_key][0]
    shared.foreign[full_key] = Foreign("an item whose version does not match", version_of(blob))
    assert cache.get_or_compute("k", lambda: "new") == "new"
    del shared.foreign[full_key]
    assert stored_value(cache, shared) == "new"


class ViewTier(FakeSharedTier):
    """A :class:`FakeSharedTier` whose reads answer a ``memoryview``, as some clients do."""

    def get(self, key: str) -> object:
        found = super().get(key)
        return memoryview(found) if isinstance(found, bytes) else found


def test_a_refresh_from_memory_reads_a_record_answered_as_a_memoryview() -> None:
    clock = FakeClock()
    shared = ViewTier(clock)
    cache = stale_environment(shared, clock)
    stale_in_memory(cache, clock)
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"


def test_a_refresh_from_memory_replaces_a_signed_copy() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock, signing_key=b"a secret of sixteen bytes")
    stale_in_memory(cache, clock)
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"


def test_a_refresh_from_memory_replaces_a_truncated_record_by_its_version() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    full_key = stale_in_memory(cache, clock)
    shared.data[full_key] = (shared.data[full_key][0][:12], None)  # the header up to its version
    assert cache.get_or_compute("k", lambda: "new") == "new"
    assert stored_value(cache, shared) == "new"


def test_looking_notes_a_fragment_too_short_for_a_version_as_not_ours() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    cache = stale_environment(shared, clock)
    full_key = stale_in_memory(cache, clock)
    shared.data[full_key] = (shared.data[full_key][0][:11], None)
    trace = cache._engine.chain.begin()
    compute.look(cache._engine.chain, full_key, trace)
    assert trace.seen == {(1, full_key): (FOREIGN, None, 0.0)}  # no tombstone, no lease
