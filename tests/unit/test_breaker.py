"""The circuit breaker on a fake clock, and TieredCache skipping a tier while it is open."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import pytest

from stratacache.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, make_breaker
from stratacache.errors import ConfigurationError
from stratacache.metrics import MetricsRecorder
from stratacache.tiered import TieredCache
from stratacache.tiers import MISS, MemoryTier
from stratacache.tiers.base import BaseTier, Missing
from tests.support import FakeClock


class FlakyTier(BaseTier):
    """A byte tier that fails while ``down`` is set; counts the calls that reached it."""

    stores_bytes = True
    ttl: float | None = None

    def __init__(self, breaker: CircuitBreaker | None) -> None:
        self.name = "L2"
        self.breaker = breaker
        self.data: dict[str, object] = {}
        self.down = False
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("server gone")

    def get(self, key: str) -> object | Missing:
        self._call()
        return self.data.get(key, MISS)

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        self._call()
        return [self.data.get(key, MISS) for key in keys]

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self._call()
        self.data[key] = value

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        self._call()
        self.data.update(items)

    def delete(self, key: str) -> bool:
        self._call()
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: Iterable[str]) -> int:
        self._call()
        return sum(self.data.pop(key, None) is not None for key in keys)

    def remaining_ttl(self, key: str) -> float | None | Missing:
        self._call()
        return None if key in self.data else MISS

    def clear(self, prefix: str) -> int:
        self._call()
        return 0


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=FakeClock(1000.0))
    breaker.failure()
    breaker.failure()
    breaker.success()  # the streak is broken
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN
    assert breaker.opened == 1
    assert breaker.allow() is False
    assert breaker.skipped == 1


def test_one_probe_after_cooldown_then_close_on_success() -> None:
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    breaker.failure()
    clock.now += 9.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.allow() is True  # the probe
    assert breaker.state == HALF_OPEN
    assert breaker.allow() is False  # only one probe at a time
    breaker.success()
    assert breaker.state == CLOSED
    assert breaker.allow() is True
    assert breaker.allow(write=True) is True


def test_failed_probe_opens_for_another_cooldown() -> None:
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(threshold=2, cooldown=5, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 5
    assert breaker.allow() is True
    breaker.failure()
    assert breaker.state == OPEN
    assert breaker.opened == 2
    clock.now += 4.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.allow() is True


def test_a_probe_that_never_reports_back_is_replaced_after_a_cooldown() -> None:
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow() is True  # this probe's caller dies without reporting
    clock.now += 4
    assert breaker.allow() is False
    clock.now += 1
    assert breaker.allow() is True


def test_writes_wait_after_a_failure_until_a_call_succeeds_or_cooldown_passes() -> None:
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(threshold=5, cooldown=5, clock=clock)
    breaker.failure()
    assert breaker.state == CLOSED
    assert breaker.allow() is True  # reads keep probing
    assert breaker.allow(write=True) is False
    clock.now += 5
    assert breaker.allow(write=True) is True
    breaker.failure()
    assert breaker.allow(write=True) is False
    breaker.success()
    assert breaker.allow(write=True) is True


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_BREAKER_THRESHOLD", "7")
    monkeypatch.setenv("STRATACACHE_BREAKER_COOLDOWN", "2.5")
    breaker = CircuitBreaker()
    assert (breaker.threshold, breaker.cooldown) == (7, 2.5)
    assert (CircuitBreaker(3, 1).threshold, CircuitBreaker(3, 1).cooldown) == (3, 1.0)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STRATACACHE_BREAKER_THRESHOLD", "zero", "STRATACACHE_BREAKER_THRESHOLD must be a whole"),
        ("STRATACACHE_BREAKER_THRESHOLD", "0", "STRATACACHE_BREAKER_THRESHOLD must be a positive"),
        ("STRATACACHE_BREAKER_COOLDOWN", "-1", "STRATACACHE_BREAKER_COOLDOWN must be a positive"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=message):
        CircuitBreaker()


def test_bad_arguments_name_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="threshold must be a positive"):
        CircuitBreaker(threshold=0)
    with pytest.raises(ConfigurationError, match="cooldown must be a positive"):
        CircuitBreaker(cooldown=0)
    with pytest.raises(ConfigurationError, match="breaker must be True, False or a Circuit"):
        make_breaker("yes", "L2")  # type: ignore[arg-type]
    assert make_breaker(False, "L2") is None
    assert make_breaker(True, "L2").name == "L2"  # type: ignore[union-attr]


def test_open_breaker_skips_the_tier_without_calling_it(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(1000.0)
    tier = FlakyTier(CircuitBreaker(threshold=2, cooldown=30, clock=clock))
    cache = TieredCache([MemoryTier(), tier], recorder=MetricsRecorder(interval=3600))
    tier.down = True
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for i in range(10):
            assert cache.get_or_compute(f"k{i}", lambda i: i * 2, (i,), {}) == i * 2
    # get fails, set is held back (the tier just failed), get fails: open after 2 calls.
    assert tier.calls == 2
    assert tier.breaker is not None
    assert tier.breaker.state == OPEN
    assert cache.stats()["L2"]["errors"] == 20  # every skipped call is still counted
    assert cache.stats()["L2"]["misses"] == 0  # a skipped tier is not a miss
    assert cache.stats()["L1"]["misses"] == 10
    opened = [r.getMessage() for r in caplog.records if "circuit open" in r.getMessage()]
    assert opened == [
        "stratacache tier L2 failed 2 times in a row; circuit open, skipping it for 30.0s"
    ]

    tier.down = False
    clock.now += 30
    assert cache.get("k0") == 0  # L1 still has it, L2 is not asked
    assert tier.calls == 2
    assert cache.get_or_compute("fresh", lambda: "v", (), {}) == "v"  # probe
    assert tier.breaker.state == CLOSED
    cache.tiers[0].clear("")
    assert cache.get("fresh") == "v"  # written to L2 once the breaker closed
    assert cache.stats()["L2"]["hits"] == 1


def test_a_poisoned_entry_does_not_count_against_the_tier() -> None:
    tier = FlakyTier(CircuitBreaker(threshold=1, cooldown=30, clock=FakeClock(1000.0)))
    cache = TieredCache([tier], recorder=MetricsRecorder(interval=3600))
    tier.data[cache.full_key("k")] = b"garbage"
    assert cache.get_or_compute("k", lambda: 5, (), {}) == 5
    assert tier.breaker is not None
    assert tier.breaker.state == CLOSED
    assert cache.get("k") == 5  # the poisoned entry was overwritten
    assert cache.stats()["L2"]["errors"] == 1


def test_invalidations_reach_a_tier_even_while_its_breaker_is_open() -> None:
    tier = FlakyTier(CircuitBreaker(threshold=1, cooldown=30, clock=FakeClock(1000.0)))
    cache = TieredCache([MemoryTier(), tier], recorder=MetricsRecorder(interval=3600))
    cache.set("k", 1)
    tier.down = True
    assert cache.get("k") == 1  # from L1
    cache.tiers[0].clear("")
    assert cache.get("k") is None  # L2 fails: the breaker opens
    assert tier.breaker is not None
    assert tier.breaker.state == OPEN
    tier.down = False
    calls = tier.calls
    assert cache.delete("k") is True  # attempted, and it worked: the breaker closes
    cache.delete_many(["a", "b"])
    cache.clear()
    assert tier.calls == calls + 3
    assert tier.breaker.state == CLOSED
    assert tier.data == {}
