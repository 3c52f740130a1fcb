"""Hit, miss and error counts as the EMF JSON that Powertools prints for CloudWatch."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from stratacache import TieredCache, cached, cached_tiered, log_cache_metrics, publish_metrics
from stratacache.metrics import MetricsRecorder
from stratacache.tiers import MemoryTier
from tests.support import BrokenTier, cache_counts, emf_lines, tier_lines, value


def test_counts_are_published_as_emf_with_a_tier_dimension(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Shop")

    @cached
    def f(x: int) -> int:
        return x

    f(1)
    f(1)
    f(1)
    assert publish_metrics() == 2  # L1's line, and the origin's (one call)
    (doc,) = tier_lines(emf_lines(emf.readouterr().out))
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Shop"
    assert directive["Dimensions"] == [["tier"]]
    assert sorted(directive["Metrics"], key=lambda m: m["Name"]) == [
        {"Name": "CacheError", "Unit": "Count"},
        {"Name": "CacheHit", "Unit": "Count"},
        {"Name": "CacheMiss", "Unit": "Count"},
    ]
    assert doc["tier"] == "L1"
    assert [value(doc, m) for m in ("CacheHit", "CacheMiss", "CacheError")] == [2, 1, 0]


def test_the_service_dimension_is_added_when_set(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "checkout")

    @cached
    def f() -> int:
        return 1

    f()
    publish_metrics()
    (doc,) = tier_lines(emf_lines(emf.readouterr().out))
    assert doc["service"] == "checkout"
    assert sorted(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["service", "tier"]


def test_each_tier_gets_its_own_line_summed_over_caches(
    emf: pytest.CaptureFixture[str], remote_env: dict[str, str]
) -> None:
    @cached_tiered
    def a(x: int) -> int:
        return x

    @cached_tiered
    def b(x: int) -> int:
        return x

    a(1)  # L1, L2, L3 miss
    b(1)  # L1, L2, L3 miss
    a(1)  # L1 hit
    b.cache.tiers[0].clear("")
    b(1)  # L1 miss, L2 hit
    publish_metrics()
    assert cache_counts(emf_lines(emf.readouterr().out)) == {
        "L1": {"CacheHit": 1, "CacheMiss": 3, "CacheError": 0},
        "L2": {"CacheHit": 1, "CacheMiss": 2, "CacheError": 0},
        "L3": {"CacheHit": 0, "CacheMiss": 2, "CacheError": 0},
        "origin": {"CacheOriginCall": 2},  # a(1) and b(1), once each
    }


def test_errors_are_counted_as_cache_error(emf: pytest.CaptureFixture[str]) -> None:
    cache = TieredCache([MemoryTier(), BrokenTier()])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.getLogger("stratacache"), "disabled", True)
        cache.get("k")
    publish_metrics()
    counts = cache_counts(emf_lines(emf.readouterr().out))
    assert counts["broken"]["CacheError"] == 1


def test_nothing_is_published_twice(emf: pytest.CaptureFixture[str]) -> None:
    @cached
    def f() -> int:
        return 1

    f()
    assert publish_metrics() == 2  # L1's line and the origin's
    assert publish_metrics() == 0
    f()
    publish_metrics()
    (doc,) = emf_lines(emf.readouterr().out)[2:]  # an L1 hit: no origin line this time
    assert (value(doc, "CacheHit"), value(doc, "CacheMiss")) == (1, 0)


def test_log_cache_metrics_publishes_when_the_handler_returns(
    emf: pytest.CaptureFixture[str],
) -> None:
    @cached
    def f() -> int:
        return 1

    @log_cache_metrics
    def handler(event: dict[str, Any], context: object) -> int:
        return f()

    handler({}, None)
    handler({}, None)
    docs = tier_lines(emf_lines(emf.readouterr().out))
    assert [(value(d, "CacheHit"), value(d, "CacheMiss")) for d in docs] == [(0, 1), (1, 0)]


def test_log_cache_metrics_publishes_when_the_handler_raises(
    emf: pytest.CaptureFixture[str],
) -> None:
    @cached
    def f() -> int:
        return 1

    @log_cache_metrics(namespace="Custom")
    def handler(event: dict[str, Any], context: object) -> int:
        f()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        handler({}, None)
    (doc,) = tier_lines(emf_lines(emf.readouterr().out))
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Custom"


@pytest.mark.parametrize("order", ["powertools-outside", "powertools-inside"])
def test_log_cache_metrics_composes_with_powertools_log_metrics(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Shop")
    metrics = Metrics()

    @cached
    def f() -> int:
        return 1

    def body(event: dict[str, Any], context: object) -> int:
        metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        return f()

    if order == "powertools-outside":
        handler = metrics.log_metrics(log_cache_metrics(body))
    else:
        handler = log_cache_metrics(metrics.log_metrics(body))
    handler({}, None)
    docs = emf_lines(emf.readouterr().out)
    application = [d for d in docs if "OrdersPlaced" in d]
    assert len(application) == 1
    assert "tier" not in application[0]
    assert "CacheHit" not in application[0]
    assert cache_counts(docs) == {
        "L1": {"CacheHit": 0, "CacheMiss": 1, "CacheError": 0},
        "origin": {"CacheOriginCall": 1},
    }


def test_without_the_handler_decorator_counts_go_out_on_a_schedule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [0.0]
    recorder = MetricsRecorder(interval=60, clock=lambda: now[0])
    cache = TieredCache([MemoryTier()], recorder=recorder)
    cache.get("a")
    now[0] = 59
    cache.get("b")
    assert emf_lines(capsys.readouterr().out) == []
    now[0] = 60
    cache.get("c")  # the first lookup after the interval publishes
    (doc,) = tier_lines(emf_lines(capsys.readouterr().out))
    assert value(doc, "CacheMiss") == 3
    now[0] = 100
    cache.get("d")
    assert emf_lines(capsys.readouterr().out) == []
    assert recorder.pending() == {"L1": {"CacheHit": 0, "CacheMiss": 1, "CacheError": 0}}


def test_l1_hits_on_the_fast_path_also_trigger_the_schedule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratacache import metrics

    now = [0.0]
    recorder = MetricsRecorder(interval=60, clock=lambda: now[0])
    monkeypatch.setattr(metrics, "recorder", recorder)

    @cached(tier=MemoryTier(timer=lambda: now[0]))
    def f() -> int:
        return 1

    f()
    f()
    now[0] = 61
    f()
    (doc,) = tier_lines(emf_lines(capsys.readouterr().out))
    assert (value(doc, "CacheHit"), value(doc, "CacheMiss")) == (2, 1)


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_METRICS_INTERVAL", "5")
    assert MetricsRecorder().interval == 5


def test_a_failure_to_publish_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratacache import metrics

    def fail(*args: object) -> int:
        raise OSError("stdout closed")

    monkeypatch.setattr(metrics, "_write", fail)
    recorder = MetricsRecorder()
    recorder.register("L1").hits += 1
    with caplog.at_level(logging.WARNING):
        assert recorder.publish() == 0
    assert "could not publish" in caplog.text
