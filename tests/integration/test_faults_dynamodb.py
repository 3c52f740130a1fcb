"""DynamoDB faults: throttling and 500s injected at botocore's ``before-send``, a hung endpoint.

Counts are read from the EMF JSON that Powertools prints.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from devkit.faults import BlackHole, DynamoDBFaults
from devkit.roundtrips import dynamodb_calls
from devkit.servers import MotoServer

from stratacache import cached_tiered, publish_metrics
from stratacache.breaker import OPEN, CircuitBreaker
from stratacache.errors import ConfigurationError
from stratacache.tiers import DynamoDBTier, MemoryTier
from tests.support import cache_counts, emf_lines

pytestmark = pytest.mark.slow


@pytest.fixture
def endpoint_env(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> None:
    """Tiers build their own boto3 client (with stratacache's timeouts) against moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.endpoint)


@pytest.fixture
def l3(endpoint_env: None, table_name: str) -> Iterator[DynamoDBTier]:
    tier = DynamoDBTier(table_name, breaker=CircuitBreaker(threshold=100, cooldown=60))
    yield tier
    tier.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, "ProvisionedThroughputExceededException"), (500, "InternalServerError")],
)
def test_throttling_and_server_errors_fail_open_and_are_counted(
    l3: DynamoDBTier,
    emf: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: str,
) -> None:
    computed: Counter[int] = Counter()

    @cached_tiered(tiers=[MemoryTier(maxsize=1), l3], ttl=60, namespace=f"faults{status}")
    def double(n: int) -> int:
        computed[n] += 1
        return n * 2

    faults = DynamoDBFaults(l3.client)
    try:
        faults.fail(status, error)
        with caplog.at_level(logging.WARNING, logger="stratacache"):
            assert [double(n) for n in range(10)] == [n * 2 for n in range(10)]
        # One request per call, not retried: botocore gives up at once, the read
        # fails, and the write of the same call skips the tier (a counted error). The
        # first call reads the namespace generation in the same request as the entry.
        assert faults.injected == 10
        assert sum(error in r.getMessage() for r in caplog.records) == 10
        publish_metrics()
        counts = cache_counts(emf_lines(emf.readouterr().out))
        assert counts["L3"]["CacheError"] == 20
        assert counts["L3"]["CacheMiss"] == 0
        assert counts["L3"]["CacheHit"] == 0

        faults.heal()
        assert [double(n) for n in range(10)] == [n * 2 for n in range(10)]  # now stored
        assert [double(n) for n in range(10)] == [n * 2 for n in range(10)]  # from L3
        publish_metrics()
        counts = cache_counts(emf_lines(emf.readouterr().out))
        assert counts["L3"] == {"CacheHit": 10, "CacheMiss": 10, "CacheError": 0}
        assert set(computed.values()) == {2}
    finally:
        faults.close()


def test_a_failing_table_opens_the_breaker(endpoint_env: None, table_name: str) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=60)
    tier = DynamoDBTier(table_name, breaker=breaker)
    faults = DynamoDBFaults(tier.client)
    faults.fail(400, "ThrottlingException")

    @cached_tiered(tiers=[tier], ttl=60, namespace="breaker3")
    def ident(n: int) -> int:
        return n

    assert [ident(n) for n in range(50)] == list(range(50))
    assert faults.injected == 3
    assert breaker.state == OPEN
    # every call counts its read and its write: failed, or skipped without a wait
    assert ident.cache.stats()["L3"]["errors"] == 100
    faults.close()
    tier.close()


def test_a_hung_endpoint_costs_one_read_timeout_per_call_until_the_breaker_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with BlackHole() as hole:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hole.endpoint)
        breaker = CircuitBreaker(threshold=2, cooldown=60)
        tier = DynamoDBTier("hung-table", read_timeout=0.3, connect_timeout=0.3, breaker=breaker)

        @cached_tiered(tiers=[tier], ttl=60, namespace="hung")
        def ident(n: int) -> int:
            return n

        sent: list[str] = []
        tier.client.meta.events.register(
            "before-send.dynamodb", lambda request, **_: sent.append(request.url)
        )
        per_call = []
        for n in range(6):
            before = len(sent)
            assert ident(n) == n
            per_call.append(len(sent) - before)
        assert breaker.state == OPEN
        assert breaker.failures == 2
        # one request each (its read, which timed out; the write is skipped), then none
        assert per_call == [1, 1, 0, 0, 0, 0]
        tier.close()


def test_a_hung_table_costs_each_call_one_request_even_without_a_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with BlackHole() as hole:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hole.endpoint)
        tier = DynamoDBTier("hung-table", read_timeout=0.3, connect_timeout=0.3, breaker=False)

        @cached_tiered(tiers=[tier], ttl=60, namespace="hung-per-call")
        def ident(n: int) -> int:
            return n

        requests = dynamodb_calls(tier.client)
        per_call = []
        for n in range(3):
            sent = len(requests)
            assert ident(n) == n
            per_call.append(requests[sent:])
        # Each call's read times out, and neither its lease nor its value's write is sent
        # after it. (The first call reads the function's generation in the same request.)
        assert per_call == [["BatchGetItem"], ["GetItem"], ["GetItem"]]
        tier.close()


def test_the_default_client_has_short_timeouts_and_no_retries(
    endpoint_env: None, table_name: str
) -> None:
    tier = DynamoDBTier(table_name)
    config: Any = tier.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.5, 0.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    tier.close()


def test_timeouts_from_the_environment(
    endpoint_env: None, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATACACHE_DYNAMODB_TIMEOUT", "0.2")
    tier = DynamoDBTier(table_name)
    config: Any = tier.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.2, 0.2)
    assert DynamoDBTier(table_name, read_timeout=1.5).read_timeout == 1.5  # argument wins
    tier.close()
    monkeypatch.setenv("STRATACACHE_DYNAMODB_TIMEOUT", "-1")
    with pytest.raises(ConfigurationError, match="STRATACACHE_DYNAMODB_TIMEOUT must be a pos"):
        DynamoDBTier(table_name)
