"""Grace periods, stale-if-error, XFetch early refresh and TTL jitter, on a fake clock.

Every test that computes (``usefixtures("driver")``) runs through both drivers of the
one algorithm: a plain call and a coroutine under an event loop; the others run once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import (
    ConfigurationError,
    DynamoDBTier,
    MemoryTier,
    RedisTier,
    TieredCache,
    cached,
)
from stratacache.envelope import Codec
from stratacache.freshness import Freshness
from stratacache.metrics import MetricsRecorder
from tests.support import FakeClock, wait_until


def make_cache(clock: FakeClock, *extra: Any, ttl: float = 10, **policy: Any) -> TieredCache:
    return TieredCache(
        [MemoryTier(timer=clock), *extra],
        ttl=ttl,
        namespace="fresh",
        clock=clock,
        recorder=MetricsRecorder(),
        freshness=Freshness(**policy),
    )


class Origin:
    """Counts computations; returns version numbers so a test sees which one it got."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: threading.Event | None = None

    def __call__(self) -> str:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(60)
        if self.fail:
            raise TimeoutError("origin timed out")
        return f"v{self.calls}"


DRIVER = "sync"


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which driver this test's ``get`` calls go through (only tests that compute ask)."""
    monkeypatch.setattr(__import__(__name__, fromlist=["DRIVER"]), "DRIVER", request.param)
    return str(request.param)


def get(cache: TieredCache, origin: Callable[[], str]) -> Any:
    if DRIVER == "sync":
        return cache.get_or_compute("k", origin, (), {})

    async def coroutine() -> str:
        return origin()

    return asyncio.run(cache.aget_or_compute("k", coroutine))


# ---------------------------------------------------------------- grace


@pytest.mark.usefixtures("driver")
def test_a_stale_entry_is_kept_for_the_grace_period() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, grace=30)
    origin = Origin()
    assert get(cache, origin) == "v1"
    assert cache.tiers[0].remaining_ttl("fresh|k") == pytest.approx(40)
    clock.advance(5)
    assert get(cache, origin) == "v1"  # fresh: no refresh
    assert origin.calls == 1


@pytest.mark.usefixtures("driver")
def test_a_stale_hit_is_refreshed_by_one_caller_while_the_others_get_it() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, grace=30)
    origin = Origin()
    get(cache, origin)
    clock.advance(15)  # stale, within grace
    origin.gate = threading.Event()
    refreshed: list[str] = []
    refresher = threading.Thread(target=lambda: refreshed.append(get(cache, origin)))
    refresher.start()
    wait_until(lambda: origin.calls == 2)  # the refresh is under way
    served_meanwhile = [get(cache, origin) for _ in range(5)]
    origin.gate.set()
    refresher.join()
    assert served_meanwhile == ["v1"] * 5
    assert refreshed == ["v2"]
    assert origin.calls == 2  # one refresh, not six
    assert cache._engine.chain.stale_served == 5
    assert get(cache, origin) == "v2"


@pytest.mark.usefixtures("driver")
def test_after_the_grace_period_the_entry_is_gone() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, grace=30)
    origin = Origin()
    get(cache, origin)
    clock.advance(41)
    assert get(cache, origin) == "v2"


@pytest.mark.usefixtures("driver")
def test_stale_if_error_serves_the_stale_value_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, grace=30)
    origin = Origin()
    get(cache, origin)
    clock.advance(20)
    origin.fail = True
    with caplog.at_level(logging.WARNING, "stratacache"):
        assert get(cache, origin) == "v1"
    assert cache._engine.chain.stale_served == 1
    assert "stale" in caplog.text
    assert "origin timed out" in caplog.text


@pytest.mark.usefixtures("driver")
def test_without_a_stale_value_the_origins_error_reaches_the_caller() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, grace=30)
    origin = Origin()
    get(cache, origin)
    clock.advance(41)
    origin.fail = True
    with pytest.raises(TimeoutError):
        get(cache, origin)


@pytest.mark.usefixtures("driver")
def test_grace_works_through_redis_for_another_environment(redis_client: Any) -> None:
    clock = FakeClock()
    first = make_cache(clock, RedisTier(client=redis_client), ttl=10, grace=30)
    origin = Origin()
    get(first, origin)
    assert 39_000 < redis_client.pttl("fresh|k") <= 40_000
    envelope = Codec().decode("fresh|k", redis_client.get("fresh|k"))
    assert envelope.stale_at == pytest.approx(clock.now + 10, abs=0.001)
    clock.advance(15)
    second = make_cache(clock, RedisTier(client=redis_client), ttl=10, grace=30)
    origin.fail = True
    assert get(second, origin) == "v1"  # a stale L2 hit, served because the refresh failed
    assert second._engine.chain.stale_served == 1


@pytest.mark.usefixtures("driver")
@pytest.mark.parametrize("found_in", ["L1", "L2"])
def test_a_refresh_reaches_every_slower_tier_whichever_tier_served_the_stale_entry(
    found_in: str, redis_client: Any, dynamodb_client: Any, table_name: str
) -> None:
    clock = FakeClock()

    def environment() -> TieredCache:
        return make_cache(
            clock,
            RedisTier(client=redis_client),
            DynamoDBTier(table_name, client=dynamodb_client, clock=clock),
            ttl=10,
            grace=30,
        )

    first, origin = environment(), Origin()
    assert get(first, origin) == "v1"
    clock.advance(15)  # stale everywhere, within grace
    refresher = first if found_in == "L1" else environment()  # an empty L1: L2 serves it
    assert get(refresher, origin) == "v2"  # the finding caller refreshes it
    assert origin.calls == 2
    second = environment()
    assert get(second, origin) == "v2"  # from L2, fresh: not refreshed again
    redis_client.flushall()
    assert get(environment(), origin) == "v2"  # from L3, fresh too
    assert origin.calls == 2


def test_the_decorator_takes_the_grace_option() -> None:
    @cached(ttl=10, grace=60, namespace="t")
    def f() -> int:
        return 1

    assert f.cache._engine.chain.freshness.grace == 60
    assert f.cache._engine.chain.freshness.enabled


# ---------------------------------------------------------------- early refresh (XFetch)


def test_xfetch_refreshes_early_only_when_the_draw_says_so() -> None:
    policy = Freshness(early_refresh=1.0, rng=lambda: 0.0)  # -log(1 - 0) = 0: never early
    assert policy.refresh_due(stale_at=100, delta=2, now=99.9) is False
    policy = Freshness(early_refresh=1.0, rng=lambda: 1 - math.exp(-1))  # -log(...) = 1
    assert policy.refresh_due(stale_at=100, delta=2, now=97.9) is False  # 97.9 + 2 < 100
    assert policy.refresh_due(stale_at=100, delta=2, now=98.1) is True  # 98.1 + 2 >= 100
    assert policy.refresh_due(stale_at=100, delta=0, now=99.9) is False  # no cost, no hurry
    assert policy.refresh_due(stale_at=100, delta=2, now=100) is True  # stale anyway


def test_xfetch_scales_with_beta_and_with_the_cost_of_computing() -> None:
    draw = lambda: 1 - math.exp(-1)  # noqa: E731
    assert Freshness(early_refresh=2.0, rng=draw).refresh_due(100, 2, now=96.1) is True
    assert Freshness(early_refresh=1.0, rng=draw).refresh_due(100, 2, now=96.1) is False
    assert Freshness(early_refresh=1.0, rng=draw).refresh_due(100, 5, now=96.1) is True


@pytest.mark.usefixtures("driver")
def test_an_early_refresh_recomputes_before_expiry() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10, early_refresh=1.0, rng=lambda: 0.999)
    chain = cache._engine.chain
    chain.write("fresh|k", "v0", chain.begin(force=True), delta=1.0)  # took a second to compute
    origin = Origin()
    clock.advance(2)
    assert get(cache, origin) == "v0"  # 8 s left, 6.9 s of head start: not yet
    clock.advance(2)
    assert get(cache, origin) == "v1"  # 6 s left: this caller refreshes early
    assert origin.calls == 1


# ---------------------------------------------------------------- jitter


def test_jitter_shortens_lifetimes_by_a_random_fraction() -> None:
    assert Freshness(jitter=0.2, rng=lambda: 0.5).lifetimes(100) == (90.0, 90.0)
    assert Freshness(jitter=0.2, rng=lambda: 0.0).lifetimes(100) == (100.0, 100.0)
    assert Freshness(jitter=0.2, grace=5, rng=lambda: 0.5).lifetimes(100) == (90.0, 95.0)
    assert Freshness(jitter=0.2).lifetimes(None) == (None, None)


def test_jitter_applies_to_what_the_tiers_store(redis_client: Any) -> None:
    clock = FakeClock()
    cache = make_cache(clock, RedisTier(client=redis_client), ttl=100, jitter=0.5, rng=lambda: 0.4)
    cache.set("k", "v")
    assert cache.tiers[0].remaining_ttl("fresh|k") == pytest.approx(80)
    assert 79_000 < redis_client.pttl("fresh|k") <= 80_000
    assert cache._engine.chain.freshness.enabled is False  # jitter alone: no refresh facts stored
    assert Codec().decode("fresh|k", redis_client.get("fresh|k")).stale_at is None


@pytest.mark.parametrize(
    ("option", "bad"),
    [("jitter", 1.5), ("jitter", -0.1), ("early_refresh", 0), ("grace", -1), ("grace", "1m")],
)
def test_bad_freshness_options_name_the_setting(option: str, bad: object) -> None:
    with pytest.raises(ConfigurationError, match=option):
        cached(**{option: bad})  # type: ignore[call-overload]
