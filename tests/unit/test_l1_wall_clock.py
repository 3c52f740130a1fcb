"""L1 expiry is measured on the wall clock, so no entry outlives it across freeze or restore.

A frozen Lambda microVM, or one restored from a SnapStart snapshot, need not
advance its monotonic clock while the wall clock moves on. Each scenario moves
an injected wall clock and an injected monotonic clock the way such an
environment would, and checks every way L1 is read: the tier, the cache and the
decorators' fast path (which reads ``cache.l1.entries`` and ``cache.l1.timer``
directly).
"""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from stratacache import MISS, MemoryTier, TieredCache, cached
from tests.support import FakeClock

TTL = 60.0

# (wall clock moves, monotonic clock moves) between the write and the read.
EXPIRED = {
    # Frozen after the write, thawed two minutes later: the monotonic clock stood still.
    "freeze-thaw": (120.0, 0.0),
    # Snapshot after the write, restored a day later on a host whose monotonic clock
    # reads earlier than the snapshot's did.
    "snapshot-restore": (86_400.0, -3_600.0),
}
# The other way round: the monotonic clock leaps, the wall clock barely moves.
ALIVE = {"monotonic-leap": (1.0, 10_000.0)}


def memory_cache(wall: FakeClock, monotonic: FakeClock) -> tuple[TieredCache, MemoryTier]:
    l1 = MemoryTier(timer=wall)
    return TieredCache([l1], ttl=TTL, clock=wall, monotonic=monotonic), l1


@pytest.mark.parametrize(("wall_moves", "monotonic_moves"), EXPIRED.values(), ids=EXPIRED)
def test_an_l1_entry_is_gone_once_the_wall_clock_passes_its_expiry(
    wall_moves: float, monotonic_moves: float
) -> None:
    wall, monotonic = FakeClock(), FakeClock(5_000.0)
    cache, l1 = memory_cache(wall, monotonic)
    cache.set("k", "v")
    full = cache.full_key("k")
    assert cache.get("k") == "v"

    wall.advance(wall_moves)
    monotonic.advance(monotonic_moves)

    assert l1.remaining_ttl(full) is MISS
    assert l1.get(full) is MISS
    assert cache.get("k", "default") == "default"
    assert cache.ttl("k") is None


@pytest.mark.parametrize(("wall_moves", "monotonic_moves"), ALIVE.values(), ids=ALIVE)
def test_an_l1_entry_lives_on_while_the_wall_clock_is_short_of_its_expiry(
    wall_moves: float, monotonic_moves: float
) -> None:
    wall, monotonic = FakeClock(), FakeClock(5_000.0)
    cache, l1 = memory_cache(wall, monotonic)
    cache.set("k", "v")

    wall.advance(wall_moves)
    monotonic.advance(monotonic_moves)

    assert cache.get("k") == "v"
    assert l1.remaining_ttl(cache.full_key("k")) == pytest.approx(TTL - wall_moves)


def test_the_memory_tier_measures_on_the_wall_clock_by_default() -> None:
    assert inspect.signature(MemoryTier).parameters["timer"].default is time.time
    assert MemoryTier().timer is time.time
    before = time.time()
    tier = MemoryTier()
    tier.set("k", "v", ttl=TTL)
    _, expires_at = tier.data["k"]
    # An epoch timestamp, not seconds since boot as time.monotonic() counts them.
    assert before + TTL <= expires_at <= time.time() + TTL


@pytest.mark.parametrize("wall_moves", [wall for wall, _ in EXPIRED.values()], ids=EXPIRED)
def test_the_decorator_fast_path_recomputes_once_the_wall_clock_passes_expiry(
    wall_moves: float,
) -> None:
    # The decorator's cache keeps the real monotonic clock, which barely moves during
    # the test: a fast path that measured on it would still serve the entry.
    wall = FakeClock(time.time())
    calls: list[int] = []

    @cached(ttl=TTL, tier=MemoryTier(timer=wall))
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square.cache._engine.chain.l1 is not None  # the fast path is in use
    assert (square(3), square(3)) == (9, 9)
    assert calls == [3]
    l1_hits = square.cache.stats()["L1"]["hits"]

    wall.advance(wall_moves)

    assert square(3) == 9
    assert calls == [3, 3]
    assert square.cache.stats()["L1"]["hits"] == l1_hits


@pytest.mark.parametrize("wall_moves", [wall for wall, _ in EXPIRED.values()], ids=EXPIRED)
def test_the_async_fast_path_recomputes_once_the_wall_clock_passes_expiry(
    wall_moves: float,
) -> None:
    wall = FakeClock(time.time())
    calls: list[int] = []

    @cached(ttl=TTL, tier=MemoryTier(timer=wall))
    async def square(x: int) -> int:
        calls.append(x)
        return x * x

    async def scenario() -> list[int]:
        first = [await square(3), await square(3)]
        wall.advance(wall_moves)
        return [*first, await square(3)]

    assert asyncio.run(scenario()) == [9, 9, 9]
    assert calls == [3, 3]


def test_the_decorator_fast_path_serves_an_entry_short_of_its_wall_clock_expiry() -> None:
    wall = FakeClock(time.time())
    calls: list[int] = []

    @cached(ttl=TTL, tier=MemoryTier(timer=wall))
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    square(3)
    wall.advance(TTL - 1)
    assert square(3) == 9
    assert calls == [3]
