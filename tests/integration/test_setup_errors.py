"""Setup mistakes say what to fix, once per environment, and never break the cached function.

Against moto over HTTP and a real Valkey server. Every tier here has no circuit
breaker, so each call really reaches the broken tier: the single log line is
the cache's doing, not a breaker's silence.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from devkit.servers import RedisServer

import stratacache
from stratacache import MemoryTier, cached_tiered
from stratacache.errors import ConfigurationError, SetupError
from stratacache.health import health_check
from stratacache.tiers import DynamoDBTier, RedisTier

CALLS = 6


def run_cached(tier: Any) -> tuple[list[str], list[str], int]:
    """``CALLS`` distinct calls cached in L1 and ``tier``: answers, origin calls, tier errors."""
    origin: list[str] = []

    @cached_tiered(ttl=60, tiers=[MemoryTier(), tier])
    def quote(symbol: str) -> str:
        origin.append(symbol)
        return f"quote of {symbol}"

    answers = [quote(f"S{i}") for i in range(CALLS)]
    return answers, origin, quote.cache.stats()[tier.name]["errors"]


def setup_lines(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "stratacache" and all(w in r.getMessage() for w in words)
    ]


def fails_open_with_one_line(tier: Any, caplog: pytest.LogCaptureFixture, *words: str) -> str:
    """Run the calls; each answers, each reaches the origin, one warning holds every word."""
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        answers, origin, errors = run_cached(tier)
    assert answers == [f"quote of S{i}" for i in range(CALLS)]
    assert origin == [f"S{i}" for i in range(CALLS)]
    assert errors >= CALLS  # every call counts its failure (CacheError), logged or not
    lines = setup_lines(caplog, "SetupError")
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ---------------------------------------------------------------- DynamoDB


def test_a_missing_table_names_the_table_and_the_variable(
    dynamodb_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    tier = DynamoDBTier(name, client=dynamodb_client, breaker=False)
    line = fails_open_with_one_line(tier, caplog, repr(name), "STRATACACHE_TABLE_NAME")
    assert "was not found in region us-east-1" in line
    assert "String partition key 'pk'" in line


KEY_SCHEMAS: dict[str, tuple[list[dict[str, str]], list[dict[str, str]]]] = {
    "another partition key": (
        [{"AttributeName": "id", "AttributeType": "S"}],
        [{"AttributeName": "id", "KeyType": "HASH"}],
    ),
    "a Number partition key": (
        [{"AttributeName": "pk", "AttributeType": "N"}],
        [{"AttributeName": "pk", "KeyType": "HASH"}],
    ),
    "a sort key": (
        [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    ),
}


def table_keyed(client: Any, schema: str) -> str:
    name = f"keyed-{uuid.uuid4().hex[:8]}"
    attributes, key_schema = KEY_SCHEMAS[schema]
    client.create_table(
        TableName=name,
        AttributeDefinitions=attributes,
        KeySchema=key_schema,
        BillingMode="PAY_PER_REQUEST",
    )
    return name


EXPECTED_SCHEMA = (
    "a String partition key 'pk' and no sort key",
    "STRATACACHE_TABLE_KEY_ATTRIBUTE",
    "sort_key=",
)


@pytest.mark.parametrize("schema", sorted(KEY_SCHEMAS))
def test_a_table_with_another_key_schema_names_the_schema_expected(
    schema: str, dynamodb_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = table_keyed(dynamodb_client, schema)
    tier = DynamoDBTier(name, client=dynamodb_client, breaker=False)
    fails_open_with_one_line(tier, caplog, repr(name), *EXPECTED_SCHEMA)


def test_a_sort_key_setting_is_named_in_the_schema_expected(
    dynamodb_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = table_keyed(dynamodb_client, "another partition key")
    tier = DynamoDBTier(name, client=dynamodb_client, sort_key=("sk", "cache"), breaker=False)
    fails_open_with_one_line(tier, caplog, "a String partition key 'pk' and a String sort key 'sk'")


def test_health_check_reports_the_key_schema_expected_once(dynamodb_client: Any) -> None:
    name = table_keyed(dynamodb_client, "a sort key")
    tier = DynamoDBTier(name, client=dynamodb_client, breaker=False)
    before = _dynamodb_calls(dynamodb_client)
    report = health_check(stratacache.TieredCache([MemoryTier(), tier]))
    assert report["L1"]["status"] == "ok"
    assert report["L3"]["status"] == "error"
    error = report["L3"]["error"]
    assert error.startswith("SetupError: ")
    assert all(word in error for word in (repr(name), *EXPECTED_SCHEMA))
    assert _dynamodb_calls(dynamodb_client) - before == 1  # the probe stops at the first refusal


_CALLS: dict[int, int] = {}


def _dynamodb_calls(client: Any) -> int:
    """Requests ``client`` has sent since it was first counted here."""
    if id(client) not in _CALLS:
        _CALLS[id(client)] = 0

        def count(**_: Any) -> None:
            _CALLS[id(client)] += 1

        client.meta.events.register("before-send.dynamodb", count)
    return _CALLS[id(client)]


def test_no_region_names_both_variables_is_found_once_and_fails_open(
    monkeypatch: pytest.MonkeyPatch,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # no profile region
    import boto3

    built: list[str] = []
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return real_client(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting_client)
    tier = DynamoDBTier(table_name, breaker=False)
    fails_open_with_one_line(tier, caplog, repr(table_name), "AWS_REGION", "AWS_DEFAULT_REGION")
    assert built == ["dynamodb"]  # found once, not once per call
    with pytest.raises(SetupError, match="AWS_DEFAULT_REGION"):
        tier.get("k")  # a tier used directly says the same
    assert built == ["dynamodb"]


# ---------------------------------------------------------------- Redis over TLS


def test_rediss_against_a_plain_server_hints_at_tls(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url.replace("redis://", "rediss://")
    monkeypatch.setenv("STRATACACHE_REDIS_URL", url)
    tier = RedisTier(breaker=False, connect_timeout=0.3, socket_timeout=0.3)
    line = fails_open_with_one_line(
        tier, caplog, "TLS handshake", "STRATACACHE_REDIS_URL starts with rediss://", "redis://;"
    )
    assert url in line
    tier.close()


def test_a_plain_server_over_redis_url_is_no_setup_error(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The hint is for TLS failures only: a working redis:// tier logs nothing."""
    tier = RedisTier(redis_server.url, breaker=False)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        answers, _, errors = run_cached(tier)
    assert len(answers) == CALLS
    assert errors == 0
    assert setup_lines(caplog, "SetupError") == []
    tier.close()


def test_a_setup_error_is_still_a_configuration_error() -> None:
    """Code that catches ConfigurationError around a tier keeps catching a setup problem."""
    assert issubclass(SetupError, ConfigurationError)
