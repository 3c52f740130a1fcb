"""README promises that need no server, each pinned at its stated value.

Each test names the promise it holds; the numbers are the README's, typed here on
purpose, so that changing a default without changing the README fails a test.
"""

from __future__ import annotations

import logging
import re

import pytest

from stratacache import CircuitBreaker, ElastiCacheIAMProvider, MemoryTier, RedisTier, TieredCache
from tests.support import FakeClock

# ---------------------------------------------------------------- the circuit breaker


def test_the_breaker_opens_after_5_failures_in_a_row_by_default() -> None:
    breaker = CircuitBreaker(clock=FakeClock())
    for _ in range(4):
        breaker.failure()
    assert breaker.state == "closed"
    assert breaker.allow() is True
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.allow() is False


def test_an_open_breaker_lets_a_probe_through_after_5_seconds_by_default() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock)
    for _ in range(5):
        breaker.failure()
    clock.advance(4.999)
    assert breaker.allow() is False
    clock.advance(0.001)
    assert breaker.allow() is True
    assert breaker.state == "half-open"


def test_a_tiers_default_breaker_has_the_default_settings() -> None:
    tier = RedisTier("redis://127.0.0.1:6379/0")  # lazy: never connects here
    assert tier.breaker is not None
    assert (tier.breaker.threshold, tier.breaker.cooldown) == (5, 5.0)


def test_the_breaker_logs_circuit_closed_once_when_the_probe_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=1, clock=clock, name="L2")
    with caplog.at_level(logging.WARNING, "stratacache"):
        breaker.success()  # closed already: nothing to say
        breaker.failure()
        caplog.clear()
        clock.advance(1)
        assert breaker.allow() is True
        breaker.success()
        breaker.success()
    assert breaker.state == "closed"
    assert [r.getMessage() for r in caplog.records] == [
        "stratacache tier L2 is answering again; circuit closed"
    ]


# ---------------------------------------------------------------- keys


def test_a_namespace_of_256_characters_is_kept_and_a_longer_one_shortened() -> None:
    kept = TieredCache([MemoryTier()], namespace="n" * 256)
    assert kept.full_key("k") == "n" * 256 + "|k"
    long_a = TieredCache([MemoryTier()], namespace="n" * 257)
    long_b = TieredCache([MemoryTier()], namespace="n" * 256 + "m")
    prefix_a = long_a.full_key("k").removesuffix("|k")
    prefix_b = long_b.full_key("k").removesuffix("|k")
    assert len(prefix_a) <= 256
    assert prefix_a != prefix_b  # shortened "the same way": a digest of the whole
    for prefix in (prefix_a, prefix_b):
        start, sep, digest = prefix.partition("~")
        assert sep == "~"
        assert set(start) == {"n"}  # keeps its start
        assert re.fullmatch("[0-9a-f]+", digest)


def test_a_key_of_1024_bytes_is_kept_and_a_longer_one_shortened_under_its_namespace() -> None:
    cache = TieredCache([MemoryTier()], namespace="t")
    fits = "k" * (1024 - len("t|"))
    assert cache.full_key(fits) == "t|" + fits
    longer = cache.full_key(fits + "k")
    assert longer.startswith("t|~")
    assert len(longer.encode()) <= 1024
    assert longer != cache.full_key(fits + "j")


# ---------------------------------------------------------------- Redis timeouts


def _timeouts(tier: RedisTier) -> tuple[float, float]:
    """The timeouts the tier's redis-py client connects with (it builds lazily, no I/O)."""
    kwargs = tier.client.connection_pool.connection_kwargs
    return kwargs["socket_timeout"], kwargs["socket_connect_timeout"]


def test_redis_timeouts_argument_beats_url_option_beats_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = "redis://127.0.0.1:6379/0"
    with_options = plain + "?socket_timeout=0.75&socket_connect_timeout=0.5"
    assert _timeouts(RedisTier(plain)) == (0.25, 0.25)  # the default
    monkeypatch.setenv("STRATACACHE_REDIS_TIMEOUT", "2")
    assert _timeouts(RedisTier(plain)) == (2, 2)  # the environment beats the default
    assert _timeouts(RedisTier(with_options)) == (0.75, 0.5)  # the URL beats the environment
    explicit = RedisTier(with_options, socket_timeout=0.1, connect_timeout=0.2)
    assert _timeouts(explicit) == (0.1, 0.2)  # an argument beats the URL


# ---------------------------------------------------------------- IAM tokens


def test_an_iam_token_is_reused_for_10_minutes_by_default() -> None:
    import botocore.session

    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "SECRET-ACCESS-KEY")
    clock = FakeClock(0)
    provider = ElastiCacheIAMProvider("u", "c", region="eu-west-1", session=session, clock=clock)
    first = provider.get_credentials()
    clock.advance(599.9)
    assert provider.get_credentials() == first
    assert provider.signed == 1
    clock.advance(0.1)
    provider.get_credentials()
    assert provider.signed == 2
