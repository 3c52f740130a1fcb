"""``should_cache``: a computed value the caller refuses is returned but never stored."""

from __future__ import annotations

import asyncio
from typing import Any

from stratacache import MemoryTier, TieredCache
from stratacache.freshness import Freshness
from tests.support import FakeClock


class Origin:
    """Counts its calls and returns the values it is given, in order."""

    def __init__(self, *values: object) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.values.pop(0)


def keep_ints(value: object) -> bool:
    return isinstance(value, int)


def memory(clock: FakeClock | None = None, grace: float | None = None) -> TieredCache:
    clock = clock or FakeClock()
    return TieredCache(
        [MemoryTier(timer=clock)], ttl=60, clock=clock, freshness=Freshness(grace=grace)
    )


def test_a_refused_value_is_returned_and_not_stored() -> None:
    cache = memory()
    key = cache.full_key("k")
    origin = Origin("not an int", 7, 8)
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == "not an int"
    assert not cache.has("k")
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == 7
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == 7  # kept
    assert origin.calls == 2


def test_the_hook_sees_each_computed_value_once_and_never_a_hit() -> None:
    cache = memory()
    seen: list[object] = []

    def should_cache(value: object) -> bool:
        seen.append(value)
        return True

    key = cache.full_key("k")
    for _ in range(3):
        cache.get_or_compute(key, Origin(1), should_cache=should_cache)
    assert seen == [1]


def test_async_callers_get_the_same_hook() -> None:
    cache = memory()
    key = cache.full_key("k")
    origin = Origin("no", 5)

    async def compute() -> object:
        return origin()

    async def ask() -> Any:
        return await cache.aget_or_compute(key, compute, should_cache=keep_ints)

    assert asyncio.run(ask()) == "no"
    assert not cache.has("k")
    assert asyncio.run(ask()) == 5
    assert cache.get("k") == 5


def test_a_refused_refresh_of_a_stale_entry_leaves_the_stale_entry_in_place() -> None:
    clock = FakeClock()
    cache = memory(clock, grace=30)
    key = cache.full_key("k")
    origin = Origin(1, "refused", 2)
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == 1
    clock.advance(61)  # stale, within grace: the finding caller refreshes it
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == "refused"
    assert cache.get("k") == 1  # still the stale value, not the refused one
    assert cache.get_or_compute(key, origin, should_cache=keep_ints) == 2
    assert cache.get("k") == 2
    assert origin.calls == 3
