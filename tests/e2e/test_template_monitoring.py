"""template.yaml's optional dashboard and CacheError alarm read what stratacache publishes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stratacache import cached, publish_metrics
from stratacache.metrics import BREAKER_OPENED, ERROR, HIT, MISS, ORIGIN, ORIGIN_CALL
from tests.support import emf_lines

REGION = "us-east-1"
STAGE = "dev"


def evaluate(expression: str, values: dict[str, float]) -> float:
    """A CloudWatch metric math expression of + - * / and FILL(x, 0), on numbers."""
    plain = re.sub(r"FILL\((\w+),\s*0\)", r"\1", expression)
    assert re.fullmatch(r"[\w\s+\-*/().]+", plain), plain
    result: float = eval(plain, {"__builtins__": {}}, values)
    return result


def defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body as deployed with the default parameters."""
    body, variables = template["Resources"]["CacheDashboard"]["Properties"]["DashboardBody"][
        "Fn::Sub"
    ]
    assert variables == {"Namespace": {"Fn::Sub": "stratacache-${Stage}"}}
    values = {
        **defaults(template),
        "Namespace": f"stratacache-{STAGE}",
        "AWS::Region": REGION,
    }
    rendered = re.sub(r"\$\{([\w:]+)\}", lambda m: values[m.group(1)], body)
    loaded: dict[str, Any] = json.loads(rendered)
    return loaded


def widget(template: dict[str, Any], title: str) -> dict[str, Any]:
    found: dict[str, Any]
    (found,) = [
        w["properties"]
        for w in dashboard(template)["widgets"]
        if title.lower() in w["properties"]["title"].lower()
    ]
    return found


def metric_ids(properties: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{id: (metric name, tier)}`` of a widget's metrics that have an id."""
    out = {}
    for row in properties["metrics"]:
        if isinstance(row[0], str) and "id" in row[-1]:
            out[row[-1]["id"]] = (row[1], row[row.index("tier") + 1])
    return out


def expressions(properties: dict[str, Any]) -> dict[str, str]:
    return {row[0]["id"]: row[0]["expression"] for row in properties["metrics"] if len(row) == 1}


def test_monitoring_is_off_by_default(template: dict[str, Any]) -> None:
    parameters, conditions = template["Parameters"], template["Conditions"]
    for parameter, condition, resource in [
        ("EnableCacheDashboard", "WithCacheDashboard", "CacheDashboard"),
        ("EnableCacheErrorAlarm", "WithCacheErrorAlarm", "CacheErrorAlarm"),
    ]:
        assert parameters[parameter]["Default"] == "false"
        assert conditions[condition] == {"Fn::Equals": [{"Ref": parameter}, "true"]}
        assert template["Resources"][resource]["Condition"] == condition
    assert template["Outputs"]["CacheDashboardUrl"]["Condition"] == "WithCacheDashboard"


def test_the_dashboard_and_the_alarm_are_named_after_the_stage(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["CacheDashboard"]["Properties"]["DashboardName"] == {
        "Fn::Sub": "stratacache-${Stage}"
    }
    assert resources["CacheErrorAlarm"]["Properties"]["AlarmName"] == {
        "Fn::Sub": "stratacache-${Stage}-cache-errors"
    }
    titles = [w["properties"]["title"] for w in dashboard(template)["widgets"]]
    assert titles == [
        "Hit rate per tier (%)",
        "CacheError per tier",
        "Circuit breaker openings",
        "Origin calls",
    ]


def test_the_dashboard_reads_the_namespace_and_service_the_function_publishes_in(
    template: dict[str, Any],
) -> None:
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "stratacache-${Stage}"}
    assert environment["POWERTOOLS_SERVICE_NAME"] == defaults(template)["MonitoredService"]
    rows = [
        row
        for w in dashboard(template)["widgets"]
        for row in w["properties"]["metrics"]
        if isinstance(row[0], str)
    ]
    assert {row[0] for row in rows} == {f"stratacache-{STAGE}"}
    assert {row[1] for row in rows} == {HIT, MISS, ERROR, BREAKER_OPENED, ORIGIN_CALL}
    assert {tuple(row[2:-1:2]) for row in rows} == {("service", "tier")}
    assert {row[5] for row in rows} == {"L1", "L2", "L3", ORIGIN}


def test_stratacache_publishes_the_dimension_set_the_dashboard_reads(
    emf: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, template: dict[str, Any]
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", defaults(template)["MonitoredService"])
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", f"stratacache-{STAGE}")

    @cached
    def f() -> int:
        return 1

    f()
    publish_metrics()
    docs = emf_lines(emf.readouterr().out)
    assert {doc["tier"] for doc in docs} == {"L1", ORIGIN}  # a lookup, and a call of the origin
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == f"stratacache-{STAGE}"
        assert [sorted(names) for names in directive["Dimensions"]] == [["service", "tier"]]


def test_the_hit_rate_widget_computes_each_tiers_hit_rate(template: dict[str, Any]) -> None:
    properties = widget(template, "hit rate")
    ids = metric_ids(properties)
    # make demo's counts: L1 4 hits 3 misses, L2 1 and 2, L3 1 and 1.
    counts = {(HIT, "L1"): 4, (MISS, "L1"): 3, (HIT, "L2"): 1, (MISS, "L2"): 2}
    counts |= {(HIT, "L3"): 1, (MISS, "L3"): 1}
    values = {metric_id: float(counts[key]) for metric_id, key in ids.items()}
    rates = {k: round(evaluate(e, values), 1) for k, e in expressions(properties).items()}
    assert rates == {"r1": 57.1, "r2": 33.3, "r3": 50.0, "all": 85.7}


def test_the_origin_widget_estimates_origin_calls_and_shows_the_counted_ones(
    template: dict[str, Any],
) -> None:
    properties = widget(template, "origin calls")
    ids = metric_ids(properties)
    counts = {(MISS, "L1"): 3, (HIT, "L2"): 1, (HIT, "L3"): 1}
    values = {metric_id: float(counts[key]) for metric_id, key in ids.items()}
    assert {k: evaluate(e, values) for k, e in expressions(properties).items()} == {"est": 1.0}
    counted = [row for row in properties["metrics"] if row[1:2] == [ORIGIN_CALL]]
    assert counted[0][5] == ORIGIN


def test_errors_and_breaker_openings_have_a_widget_per_tier(template: dict[str, Any]) -> None:
    errors = widget(template, "CacheError")["metrics"]
    assert [(row[1], row[5]) for row in errors] == [(ERROR, "L1"), (ERROR, "L2"), (ERROR, "L3")]
    openings = widget(template, "breaker")["metrics"]
    assert [(row[1], row[5]) for row in openings] == [
        (BREAKER_OPENED, "L2"),
        (BREAKER_OPENED, "L3"),
    ]


def test_the_alarm_fires_on_cache_errors_per_hundred_lookups(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["CacheErrorAlarm"]["Properties"]
    assert alarm["Threshold"] == {"Ref": "CacheErrorAlarmThreshold"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    (returned,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    ids: dict[str, tuple[str, str]] = {}
    for query in alarm["Metrics"]:
        if "MetricStat" not in query:
            continue
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == {"Fn::Sub": "stratacache-${Stage}"}
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims["service"] == {"Ref": "MonitoredService"}
        ids[query["Id"]] = (metric["MetricName"], dims["tier"])
        assert (query["MetricStat"]["Stat"], query["MetricStat"]["Period"]) == ("Sum", 300)
    # 7 lookups; Redis down: 3 L2 errors (its breaker skips count too), no other tier's.
    counts = {(ERROR, "L1"): 0, (ERROR, "L2"): 3, (ERROR, "L3"): 0, (HIT, "L1"): 4}
    counts[(MISS, "L1")] = 3
    values = {metric_id: float(counts[key]) for metric_id, key in ids.items()}
    assert round(evaluate(returned["Expression"], values), 2) == 42.86
    assert float(defaults(template)["CacheErrorAlarmThreshold"]) < 42.86


def test_the_alarm_notifies_only_a_topic_that_is_given(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["CacheErrorAlarm"]["Properties"]
    expected = {
        "Fn::If": ["WithCacheAlarmTopic", [{"Ref": "CacheAlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }
    assert alarm["AlarmActions"] == alarm["OKActions"] == expected
    assert template["Conditions"]["WithCacheAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CacheAlarmTopicArn"}, ""]}]
    }
