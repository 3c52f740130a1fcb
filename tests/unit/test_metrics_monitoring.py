"""The monitoring signals of the EMF lines: context reuse, function name, kill switches,
breaker openings, origin calls, and a user's Powertools ``Metrics`` and ``Logger``."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics import functions as powertools_functions
from aws_lambda_powertools.metrics.provider import cold_start as powertools_cold_start

from stratacache import (
    CircuitBreaker,
    ConfigurationError,
    TieredCache,
    cached,
    cached_many,
    log_cache_metrics,
)
from stratacache import metrics as stratacache_metrics
from stratacache.config import powertools_metrics_disabled
from stratacache.logs import set_logger
from stratacache.metrics import MetricsRecorder, publish_metrics, set_metrics
from stratacache.tiers import MemoryTier
from tests.support import BrokenTier, cache_counts, emf_lines, tier_lines, value


def dimensions(doc: dict[str, Any]) -> list[str]:
    """The names of the document's only dimension set."""
    (dimension_set,) = dimension_sets(doc)
    return dimension_set


def dimension_sets(doc: dict[str, Any]) -> list[list[str]]:
    return [sorted(names) for names in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]]


@pytest.fixture
def user_metrics() -> Iterator[None]:
    """Leaves no user ``Metrics`` behind: Powertools keeps default dimensions class-wide."""
    yield
    set_metrics(None)
    Metrics().clear_default_dimensions()


@pytest.fixture
def stratacache_logger() -> Iterator[logging.Logger]:
    """The ``stratacache`` logger, put back as it was (handlers, level, propagation)."""
    log = logging.getLogger("stratacache")
    saved = (list(log.handlers), log.level, log.propagate)
    yield log
    log.handlers, log.level, log.propagate = list(saved[0]), saved[1], saved[2]


# ------------------------------------------------------------------ context reuse


def publish_one_lookup(recorder: MetricsRecorder, capsys: pytest.CaptureFixture[str]) -> Any:
    TieredCache([MemoryTier()], recorder=recorder).get("k")
    recorder.publish()
    (doc,) = tier_lines(emf_lines(capsys.readouterr().out))
    return doc


def test_the_first_publication_of_a_cold_environment_says_context_not_reused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    recorder = MetricsRecorder(interval=3600)
    first = publish_one_lookup(recorder, capsys)
    second = publish_one_lookup(recorder, capsys)
    assert (first["contextReused"], second["contextReused"]) == (False, True)
    assert "contextReused" not in dimensions(first)  # a property: no extra metric streams


def test_an_environment_whose_first_request_makes_no_lookup_reports_its_cold_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    monkeypatch.setattr(stratacache_metrics, "recorder", MetricsRecorder(interval=3600))

    @cached
    def f() -> int:
        return 1

    @log_cache_metrics
    def handler(event: dict[str, Any], context: object) -> int | None:
        return f() if event.get("lookup") else None  # a health check touches no cache

    handler({}, None)
    assert emf_lines(capsys.readouterr().out) == []
    handler({"lookup": True}, None)
    handler({"lookup": True}, None)
    first, second = tier_lines(emf_lines(capsys.readouterr().out))
    assert (first["contextReused"], second["contextReused"]) == (False, True)


@pytest.mark.parametrize(
    "initialization", [None, "on-demand", "provisioned-concurrency", "snap-start"]
)
def test_cold_starts_are_decided_as_powertools_decides_its_cold_start_metric(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, initialization: str | None
) -> None:
    if initialization is None:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", initialization)
    try:
        importlib.reload(powertools_cold_start)  # Powertools reads the variable at import
        powertools_says_cold = powertools_cold_start.is_cold_start
    finally:
        monkeypatch.undo()
        importlib.reload(powertools_cold_start)
    if initialization is not None:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", initialization)
    doc = publish_one_lookup(MetricsRecorder(interval=3600), capsys)
    assert doc["contextReused"] is not powertools_says_cold
    assert doc["contextReused"] is (initialization == "provisioned-concurrency")


# ------------------------------------------------------------------ function name


def lookup_and_publish(emf: pytest.CaptureFixture[str]) -> dict[str, Any]:
    @cached
    def f() -> int:
        return 1

    f()
    publish_metrics()
    (doc,) = [d for d in emf_lines(emf.readouterr().out) if d.get("tier") == "L1"]
    return doc


def test_the_function_name_dimension_is_off_by_default(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "quotes-prod")
    assert dimensions(lookup_and_publish(emf)) == ["tier"]


def test_the_function_name_dimension_is_opt_in(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "quotes-prod")
    monkeypatch.setenv("STRATACACHE_METRICS_FUNCTION_NAME", "1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "quotes")
    doc = lookup_and_publish(emf)
    # The aggregate stays, for dashboards and alarms; the per-function set comes in addition.
    assert dimension_sets(doc) == [["service", "tier"], ["function_name", "service", "tier"]]
    assert (doc["function_name"], doc["service"], doc["tier"]) == ("quotes-prod", "quotes", "L1")


def test_the_function_name_is_taken_as_powertools_takes_it(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, user_metrics: None
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "from-lambda")
    monkeypatch.setenv("STRATACACHE_METRICS_FUNCTION_NAME", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_FUNCTION_NAME", "from-powertools-variable")
    assert lookup_and_publish(emf)["function_name"] == "from-powertools-variable"
    set_metrics(Metrics(function_name="from-metrics"))
    assert lookup_and_publish(emf)["function_name"] == "from-metrics"


def test_a_bad_function_name_setting_fails_at_decoration_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_METRICS_FUNCTION_NAME", "sometimes")
    with pytest.raises(ConfigurationError, match="STRATACACHE_METRICS_FUNCTION_NAME"):
        log_cache_metrics(lambda event, context: None)


# ------------------------------------------------------------------ kill switches


@pytest.mark.parametrize(
    ("settings", "printed"),
    [
        ({}, True),
        ({"STRATACACHE_METRICS_DISABLED": "1"}, False),
        ({"STRATACACHE_METRICS_DISABLED": "0"}, True),
        ({"POWERTOOLS_METRICS_DISABLED": "true"}, False),
        ({"POWERTOOLS_METRICS_DISABLED": "false"}, True),
        ({"POWERTOOLS_DEV": "true"}, False),
        ({"POWERTOOLS_DEV": "1", "POWERTOOLS_METRICS_DISABLED": "false"}, True),
        ({"POWERTOOLS_DEV": "false", "POWERTOOLS_METRICS_DISABLED": "yes"}, False),
        ({"POWERTOOLS_DEV": "true", "STRATACACHE_METRICS_DISABLED": "0"}, False),
    ],
)
def test_cache_metrics_follow_the_kill_switches(
    emf: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
    printed: bool,
) -> None:
    for name, setting in settings.items():
        monkeypatch.setenv(name, setting)

    @cached
    def f() -> int:
        return 1

    f()
    assert publish_metrics() == (2 if printed else 0)  # L1's line and the origin's
    assert len(emf_lines(emf.readouterr().out)) == (2 if printed else 0)
    assert stratacache_metrics.recorder.pending() == {}  # taken either way: never sent later
    assert f.cache.stats()["L1"]["misses"] == 1  # counting goes on


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"POWERTOOLS_METRICS_DISABLED": "true"},
        {"POWERTOOLS_METRICS_DISABLED": "0"},
        {"POWERTOOLS_DEV": "true"},
        {"POWERTOOLS_DEV": "t"},
        {"POWERTOOLS_DEV": "true", "POWERTOOLS_METRICS_DISABLED": "false"},
        {"POWERTOOLS_DEV": "false", "POWERTOOLS_METRICS_DISABLED": "true"},
        {"POWERTOOLS_DEV": "off"},
    ],
)
def test_powertools_switches_are_read_exactly_as_powertools_reads_them(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    for name, setting in settings.items():
        monkeypatch.setenv(name, setting)
    assert powertools_metrics_disabled() is powertools_functions.is_metrics_disabled()


def test_the_stratacache_kill_switch_warns_once(
    emf: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("STRATACACHE_METRICS_DISABLED", "1")
    recorder = MetricsRecorder(interval=3600)
    cache = TieredCache([MemoryTier()], recorder=recorder)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for key in ("a", "b"):
            cache.get(key)
            recorder.publish()
    warnings = [r.getMessage() for r in caplog.records if "metrics are off" in r.getMessage()]
    assert warnings == ["stratacache cache metrics are off (STRATACACHE_METRICS_DISABLED)"]


@pytest.mark.parametrize(
    "setting", ["STRATACACHE_METRICS_DISABLED", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"]
)
def test_a_bad_kill_switch_value_fails_at_decoration_naming_it(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv(setting, "perhaps")
    with pytest.raises(ConfigurationError, match=setting):
        log_cache_metrics(lambda event, context: None)


def test_the_stratacache_kill_switch_leaves_the_applications_metrics_alone(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATACACHE_METRICS_DISABLED", "1")
    app_metrics = EphemeralMetrics(namespace="Shop")

    @cached
    def f() -> int:
        return 1

    @app_metrics.log_metrics
    @log_cache_metrics
    def handler(event: dict[str, Any], context: object) -> int:
        app_metrics.add_metric(name="OrdersPlaced", unit="Count", value=1)
        return f()

    handler({}, None)
    (doc,) = emf_lines(emf.readouterr().out)
    assert "OrdersPlaced" in doc


# ------------------------------------------------------------------ breakers and origin


class BrokenRemote(BrokenTier):
    """A failing tier with a circuit breaker, as a remote tier has."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        super().__init__()
        self.breaker = breaker


def test_breaker_openings_are_published_with_their_tier(
    emf: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cache = TieredCache([MemoryTier(), BrokenRemote(CircuitBreaker(threshold=2, cooldown=3600))])
    with caplog.at_level(logging.CRITICAL, logger="stratacache"):
        for key in ("a", "b", "c"):
            cache.get(key)  # two failures open the breaker, the third call skips the tier
    publish_metrics()
    counts = cache_counts(emf_lines(emf.readouterr().out))
    assert counts["broken"] == {
        "CacheHit": 0,
        "CacheMiss": 0,
        "CacheError": 3,
        "CacheBreakerOpened": 1,
    }
    assert "CacheBreakerOpened" not in counts["L1"]
    cache.get("d")
    publish_metrics()
    assert "CacheBreakerOpened" not in cache_counts(emf_lines(emf.readouterr().out))["broken"]


def test_every_call_of_the_origin_is_counted_once(emf: pytest.CaptureFixture[str]) -> None:
    @cached
    def f(x: int) -> int:
        return x

    @cached_many
    def many(ids: list[int]) -> dict[int, int]:
        return {i: i for i in ids}

    f(1)
    f(1)  # an L1 hit: no origin call
    f(2)
    many([1, 2])
    many([1, 2, 3])  # one call, for the id no tier has
    publish_metrics()
    assert cache_counts(emf_lines(emf.readouterr().out))["origin"]["CacheOriginCall"] == 4


def test_origin_calls_are_published_on_a_line_of_their_own(
    emf: pytest.CaptureFixture[str],
) -> None:
    stratacache_metrics.recorder.origin_call()
    stratacache_metrics.recorder.origin_call()
    assert publish_metrics() == 1
    (doc,) = emf_lines(emf.readouterr().out)
    assert doc["tier"] == "origin"
    assert value(doc, "CacheOriginCall") == 2
    assert publish_metrics() == 0


# ------------------------------------------------------------------ a user's Powertools


def test_a_users_metrics_give_namespace_service_and_default_dimensions(
    emf: pytest.CaptureFixture[str], user_metrics: None
) -> None:
    app_metrics = Metrics(namespace="Shop", service="checkout")
    app_metrics.set_default_dimensions(stage="prod")
    set_metrics(app_metrics)
    doc = lookup_and_publish(emf)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Shop"
    assert dimensions(doc) == ["service", "stage", "tier"]
    assert (doc["service"], doc["stage"], doc["tier"]) == ("checkout", "prod", "L1")


def test_a_users_default_dimensions_are_in_the_per_function_set_too(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, user_metrics: None
) -> None:
    monkeypatch.setenv("STRATACACHE_METRICS_FUNCTION_NAME", "1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout-prod")
    app_metrics = Metrics(namespace="Shop", service="checkout")
    app_metrics.set_default_dimensions(stage="prod")
    set_metrics(app_metrics)
    assert dimension_sets(lookup_and_publish(emf)) == [
        ["service", "stage", "tier"],
        ["function_name", "service", "stage", "tier"],
    ]


def test_log_cache_metrics_takes_the_users_metrics_and_keeps_their_set_apart(
    emf: pytest.CaptureFixture[str], user_metrics: None
) -> None:
    app_metrics = Metrics(namespace="Shop", service="checkout")

    @cached
    def f() -> int:
        return 1

    @app_metrics.log_metrics
    @log_cache_metrics(metrics=app_metrics)
    def handler(event: dict[str, Any], context: object) -> int:
        app_metrics.add_metric(name="OrdersPlaced", unit="Count", value=1)
        return f()

    handler({}, None)
    docs = emf_lines(emf.readouterr().out)
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in docs} == {"Shop"}
    (cache_line,) = tier_lines(docs)
    (app_line,) = [d for d in docs if "OrdersPlaced" in d]
    assert "CacheMiss" not in app_line
    assert cache_line["service"] == "checkout"


def test_an_explicit_namespace_beats_the_users_metrics(
    emf: pytest.CaptureFixture[str], user_metrics: None
) -> None:
    set_metrics(EphemeralMetrics(namespace="Shop"))

    @cached
    def f() -> int:
        return 1

    f()
    publish_metrics(namespace="Caches")
    (doc,) = tier_lines(emf_lines(emf.readouterr().out))
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Caches"


def test_a_users_logger_writes_stratacache_log_lines(
    capsys: pytest.CaptureFixture[str], stratacache_logger: logging.Logger
) -> None:
    set_logger(Logger(service="checkout"))
    breaker = CircuitBreaker(threshold=1, cooldown=5, name="L2")
    breaker.failure()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [entry for entry in lines if "circuit open" in entry.get("message", "")]
    assert (line["level"], line["service"], line["name"]) == ("WARNING", "checkout", "stratacache")
    assert stratacache_logger.propagate is False  # written once, not again by the root logger


def test_log_cache_metrics_takes_the_users_logger(
    capsys: pytest.CaptureFixture[str], stratacache_logger: logging.Logger
) -> None:
    # A service of its own: Powertools Loggers of one service share one handler and stream.
    app_logger = Logger(service="payments")

    @log_cache_metrics(logger=app_logger)
    def handler(event: dict[str, Any], context: object) -> None:
        logging.getLogger("stratacache").warning("probe %s", 1)

    handler({}, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "probe" in line]
    assert [(entry["message"], entry["service"]) for entry in lines] == [("probe 1", "payments")]
