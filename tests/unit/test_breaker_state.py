"""The breaker's state as the hot path reads it: ``quiet``, the failure streak, the skip count,
and how a tier names its breaker (tests written for mutants that the others let live)."""

from __future__ import annotations

import pytest

from stratacache import CircuitBreaker, ConfigurationError
from stratacache.breaker import make_breaker
from tests.support import FakeClock


def test_quiet_says_whether_the_hot_path_may_skip_the_bookkeeping() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=FakeClock())
    assert breaker.quiet is True
    breaker.failure()
    assert breaker.quiet is False
    breaker.success()  # closed: the streak ends
    assert breaker.quiet is True
    assert breaker.failures == 0
    breaker.failure()
    breaker.failure()  # open
    assert breaker.quiet is False


def test_a_successful_probe_closes_with_a_clean_slate() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    breaker.failure()
    clock.advance(10)
    assert breaker.allow() is True  # the probe
    breaker.success()
    assert (breaker.state, breaker.failures, breaker.quiet) == ("closed", 0, True)
    breaker.failure()  # a new streak starts from nothing
    assert breaker.failures == 1


def test_every_skip_is_counted_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=clock)
    breaker.failure()  # closed, but writes wait after a failure
    assert breaker.allow(write=True) is False
    assert breaker.allow(write=True) is False
    assert breaker.skipped == 2
    assert breaker.allow() is True  # reads still go
    breaker.failure()  # open
    assert breaker.allow() is False
    assert breaker.allow() is False
    assert breaker.skipped == 4


def test_a_tier_names_an_unnamed_breaker_and_keeps_a_named_ones_name() -> None:
    unnamed = CircuitBreaker()
    assert make_breaker(unnamed, "L2") is unnamed
    assert unnamed.name == "L2"
    named = CircuitBreaker(name="shared")
    assert make_breaker(named, "L3") is named
    assert named.name == "shared"
    made = make_breaker(True, "L2")
    assert made is not None
    assert made.name == "L2"
    assert make_breaker(False, "L2") is None


def test_a_breaker_that_is_not_one_is_named_by_its_type() -> None:
    with pytest.raises(ConfigurationError, match=r"got str$"):
        make_breaker("yes", "L2")  # type: ignore[arg-type]


def test_reset_closes_the_breaker_and_forgets_the_streak() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=FakeClock())
    breaker.failure()
    assert breaker.state == "open"
    breaker.reset()
    assert (breaker.state, breaker.failures, breaker.quiet) == ("closed", 0, True)
    assert breaker.allow(write=True) is True
