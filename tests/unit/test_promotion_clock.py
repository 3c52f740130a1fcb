"""Promotion measures the remaining lifetime when it writes, not when the lookup began."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pytest

from stratacache import MISS, MemoryTier, TieredCache
from stratacache.tiers.base import BaseTier, Missing
from tests.support import FakeClock


class SlowByteTier(BaseTier):
    """A byte tier whose reads take ``delay`` seconds of the fake clock, like a far server."""

    stores_bytes = True

    def __init__(self, clock: FakeClock, delay: float) -> None:
        self.name = "slow"
        self.ttl: float | None = None
        self.clock = clock
        self.delay = delay
        self.data: dict[str, object] = {}

    def get(self, key: str) -> object | Missing:
        self.clock.now += self.delay
        return self.data.get(key, MISS)

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        self.clock.now += self.delay
        return [self.data.get(key, MISS) for key in keys]

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.data[key] = value

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        self.data.update(items)

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def remaining_ttl(self, key: str) -> float | None | Missing:
        return None if key in self.data else MISS

    def clear(self, prefix: str = "") -> int:
        doomed = [key for key in self.data if key.startswith(prefix)]
        for key in doomed:
            del self.data[key]
        return len(doomed)


@pytest.mark.parametrize("many", [False, True], ids=["get", "get_many"])
def test_a_slow_hit_is_promoted_with_the_lifetime_left_after_the_read(many: bool) -> None:
    clock = FakeClock(1000.0)
    l1 = MemoryTier(timer=clock)
    cache = TieredCache([l1, SlowByteTier(clock, delay=5.0)], ttl=60, clock=clock)
    cache.set("k", "v")  # expires at 1060 in both tiers
    l1.clear()
    clock.now = 1010.0  # 50 s left; the slow read then takes 5 of them

    found = cache.get_many(["k"]) if many else {"k": cache.get("k")}

    assert found == {"k": "v"}
    assert clock.now == 1015.0
    # 45 s from now is the entry's own expiry; 50 would let the copy outlive it.
    assert l1.remaining_ttl(cache.full_key("k")) == pytest.approx(45.0)
