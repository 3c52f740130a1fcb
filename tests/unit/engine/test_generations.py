"""The namespace generation on its own: when the counter is due, what a newer one does."""

from __future__ import annotations

import math

from stratacache._engine.generations import Generation
from tests.support import FakeClock


def test_with_a_shared_counter_the_first_read_is_due_at_once_and_then_every_check() -> None:
    clock = FakeClock()
    generation = Generation(5.0, clock=clock, shared=True)
    assert generation.value == 0
    assert generation.due == -math.inf
    clock.advance(100.0)
    generation.checked()
    assert generation.due == clock() + 5.0
    assert generation.check_every == 5.0
    assert generation.clock is clock


def test_without_a_shared_counter_nothing_is_ever_due() -> None:
    assert Generation(5.0, clock=FakeClock(), shared=False).due == math.inf


def test_only_a_newer_generation_is_adopted_and_told() -> None:
    generation = Generation(5.0, clock=FakeClock(), shared=True)
    told: list[tuple[str, int]] = []
    generation.on_change.append(lambda: told.append(("first", generation.value)))
    generation.on_change.append(lambda: told.append(("second", generation.value)))
    assert generation.observe(0) is False  # the same as now
    assert generation.observe(-1) is False
    assert told == []
    assert generation.observe(1) is True
    assert generation.value == 1
    assert told == [("first", 1), ("second", 1)]
    assert generation.observe(1) is False
    assert generation.observe(7) is True
    assert generation.observe(3) is False  # never back
    assert generation.value == 7
    assert told[-2:] == [("first", 7), ("second", 7)]
    assert len(told) == 4


def test_the_callbacks_run_outside_the_lock() -> None:
    generation = Generation(5.0, clock=FakeClock(), shared=True)
    held: list[bool] = []
    generation.on_change.append(lambda: held.append(generation._lock.locked()))
    generation.observe(2)
    assert held == [False]


def test_an_open_breaker_keeps_the_generation_check_off_its_tier_until_its_probe() -> None:
    from stratacache import CircuitBreaker, MemoryTier, TieredCache
    from stratacache.metrics import MetricsRecorder
    from tests.support import FakeSharedTier

    clock = FakeClock()
    shared = FakeSharedTier(clock)
    breaker = CircuitBreaker(2, 30, clock=clock)
    shared.breaker = breaker  # type: ignore[assignment]
    cache = TieredCache(
        [MemoryTier(timer=clock), shared], namespace="checks", clock=clock, monotonic=clock,
        generation_check=1, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    cache.set("k", "v", ttl=600)
    breaker.failure()
    breaker.failure()  # open: the tier is down as far as this environment knows
    shared.calls.clear()
    for _ in range(5):  # five check periods of memory hits
        clock.advance(2)
        assert cache.get("k") == "v"
    assert shared.calls == []  # no check waited on the open breaker's tier
    clock.advance(30)  # the cooldown is over: one check is the breaker's probe
    assert cache.get("k") == "v"
    assert shared.calls in (["read_counter"], ["read_with_feed"])
    assert breaker.state == "closed"
