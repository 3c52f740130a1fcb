"""Warm-up invocations are recognised, return early, and leave the hot keys in L1."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache, cached
from stratacache.warmup import WARMUP_EVENT, hot_calls, is_warmup, load_hot_keys, warmup
from tests.support import ROOT, http_v2_event, rest_v1_event

WARMUPS: dict[str, dict[str, Any]] = {
    "serverless-plugin-warmup": {"source": "serverless-plugin-warmup"},
    "warmer": {"warmer": True, "concurrency": 3},
    "our-marker": dict(WARMUP_EVENT),
    "eventbridge-schedule": {
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-03-10T14:25:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/quote-warmup"],
        "detail": dict(WARMUP_EVENT),
    },
}

NOT_WARMUPS: dict[str, object] = {
    "rest-v1": rest_v1_event(),
    "http-v2": http_v2_event(),
    "plain-schedule": {**WARMUPS["eventbridge-schedule"], "detail": {}},
    "warmer-string": {"warmer": "yes"},
    "other-source": {"source": "aws.events"},
    "a-list": [1, 2],
    "none": None,
}


@pytest.mark.parametrize("kind", list(WARMUPS))
def test_warmup_events_are_recognised(kind: str) -> None:
    assert is_warmup(WARMUPS[kind])


@pytest.mark.parametrize("kind", list(NOT_WARMUPS))
def test_other_events_are_not(kind: str) -> None:
    assert not is_warmup(NOT_WARMUPS[kind])


def test_the_plugin_s_client_context_counts_too() -> None:
    context = SimpleNamespace(
        client_context=SimpleNamespace(custom={"source": "serverless-plugin-warmup"})
    )
    assert is_warmup({}, context)
    assert not is_warmup({}, SimpleNamespace(client_context=None))


def two_tiers(shared: MemoryTier) -> TieredCache:
    """A fresh L1 in front of ``shared``, which stands in for Redis here."""
    return TieredCache([MemoryTier(), shared], ttl=60, namespace="warm")


@pytest.mark.parametrize("kind", list(WARMUPS))
def test_a_warmup_returns_early_with_the_hot_keys_in_l1(kind: str) -> None:
    shared = MemoryTier(name="L2")
    two_tiers(shared).set_many({"a": 1, "b": 2})
    cache = two_tiers(shared)
    calls: list[object] = []

    @warmup(hot=[(cache, ["a", "b", "absent"])])
    def handler(event: object, context: object) -> str:
        calls.append(event)
        return "real work"

    assert handler(WARMUPS[kind], None) == {"warmup": True, "loaded": 2}
    assert calls == []
    l1 = cache.tiers[0]
    assert sorted(l1.data) == sorted(cache.full_key(k) for k in "ab")  # type: ignore[attr-defined]
    assert handler(rest_v1_event(), None) == "real work"


def test_prepare_steps_run_first_and_one_that_fails_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    def broken() -> None:
        order.append("broken")
        raise ConnectionError("refused")

    @warmup(prepare=[broken, lambda: order.append("connect")])
    def handler(event: object, context: object) -> str:
        return "real work"

    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert handler({"warmer": True}, None) == {"warmup": True, "loaded": 0}
    assert order == ["broken", "connect"]
    assert "ConnectionError" in caplog.text


def test_hot_keys_may_be_computed_at_each_warmup() -> None:
    shared = MemoryTier(name="L2")
    two_tiers(shared).set("x", 1)
    cache = two_tiers(shared)
    asked: list[int] = []

    def hot() -> list[tuple[TieredCache, list[str]]]:
        asked.append(1)
        return [(cache, ["x"])]

    @warmup(hot=hot)
    def handler(event: object, context: object) -> str:
        return "real work"

    assert handler({"warmer": True}, None) == {"warmup": True, "loaded": 1}
    assert handler({"warmer": True}, None) == {"warmup": True, "loaded": 1}
    assert asked == [1, 1]


def test_hot_calls_names_a_cached_function_s_keys() -> None:
    @cached(ttl=60)
    def quote(symbol: str, currency: str = "USD") -> str:
        return f"{symbol}/{currency}"

    quote("AMZN")
    quote("NVDA", "EUR")
    cache, keys = hot_calls(quote, ["AMZN", ("NVDA", "EUR"), "MSFT"])
    assert cache is quote.cache
    assert load_hot_keys([(cache, keys)]) == 2
    with pytest.raises(TypeError, match="cached function"):
        hot_calls(SimpleNamespace(cache=object()), ["x"])


def test_the_decorator_works_bare_and_keeps_the_handler() -> None:
    @warmup
    def handler(event: object, context: object) -> str:
        """Docs."""
        return "real work"

    assert handler.__name__ == "handler"
    assert handler.__doc__ == "Docs."
    assert handler({"source": "serverless-plugin-warmup"}, None) == {"warmup": True, "loaded": 0}
    assert handler({}, None) == "real work"


def test_the_example_answers_a_warmup_from_its_hot_symbols(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    monkeypatch.setenv("QUOTE_ORIGIN_DELAY", "0")
    monkeypatch.setenv("QUOTE_HOT_SYMBOLS", "amzn,nvda")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "StratacacheTest")
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "app"))
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    app = importlib.import_module("handler")
    assert app.handler(dict(WARMUP_EVENT), None) == {"warmup": True, "loaded": 0}
    app.handler(http_v2_event("/quote/AMZN"), None)  # the hot key the warm-up names
    assert app.handler(dict(WARMUP_EVENT), None) == {"warmup": True, "loaded": 1}
    monkeypatch.delitem(sys.modules, "handler")
