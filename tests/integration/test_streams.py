"""The DynamoDB Streams handler invalidates what changed items feed, and reports failures."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, RedisTier, cached_tiered
from stratacache.streams import Change, Target, streams_invalidator

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/quotes/stream/2026-11-22T00:00:00.000"


def record(event: str, sequence: str, symbol: str, price: str = "1.5") -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda delivers it (NEW_AND_OLD_IMAGES)."""
    image = {"symbol": {"S": symbol}, "price": {"N": price}, "tags": {"SS": ["a", "b"]}}
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1795400000,
        "Keys": {"symbol": {"S": symbol}},
        "SequenceNumber": sequence,
        "SizeBytes": 59,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if event in ("INSERT", "MODIFY"):
        body["NewImage"] = image
    if event in ("MODIFY", "REMOVE"):
        body["OldImage"] = {**image, "price": {"N": "1.0"}}
    return {
        "eventID": f"id-{sequence}",
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": STREAM_ARN,
    }


@pytest.fixture
def quote(redis_client: Any) -> Any:
    reads: list[str] = []

    @cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="t")
    def fetch(symbol: str) -> str:
        reads.append(symbol)
        return f"{symbol}:{len(reads)}"

    fetch.reads = reads  # type: ignore[attr-defined]
    return fetch


def test_changes_invalidate_the_entries_they_feed(quote: Any, redis_client: Any) -> None:
    seen: list[Change] = []

    def affected(change: Change) -> list[Target]:
        seen.append(change)
        return [(quote, (change.image["symbol"],))]

    handler = streams_invalidator(affected)
    for symbol in ("AMZN", "NVDA", "MSFT", "KEEP"):
        quote(symbol)
    event = {
        "Records": [
            record("INSERT", "100", "AMZN"),
            record("MODIFY", "101", "NVDA", price="2.5"),
            record("REMOVE", "102", "MSFT"),
        ]
    }
    assert handler(event, None) == {"batchItemFailures": []}
    assert [c.event_name for c in seen] == ["INSERT", "MODIFY", "REMOVE"]
    assert seen[1].new_image == {"symbol": "NVDA", "price": 2.5, "tags": {"a", "b"}}
    assert seen[2].new_image is None
    assert seen[2].image["symbol"] == "MSFT"
    for symbol in ("AMZN", "NVDA", "MSFT", "KEEP"):
        quote(symbol)
    assert quote.reads == ["AMZN", "NVDA", "MSFT", "KEEP", "AMZN", "NVDA", "MSFT"]


def test_a_failing_record_is_reported_and_stops_the_batch(quote: Any) -> None:
    handled: list[str] = []

    def affected(change: Change) -> list[Target]:
        handled.append(change.sequence_number)
        if change.keys["symbol"] == "BAD":
            raise LookupError("no mapping for BAD")
        return [(quote, (change.keys["symbol"],))]

    handler = streams_invalidator(affected)
    event = {
        "Records": [
            record("MODIFY", "200", "AMZN"),
            record("MODIFY", "201", "BAD"),
            record("MODIFY", "202", "NVDA"),
        ]
    }
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "201"}]}
    assert handled == ["200", "201"]  # Lambda retries from 201; 202 comes again then


def test_a_tier_that_cannot_delete_fails_the_record(redis_client: Any) -> None:
    broken = RedisTier("redis://127.0.0.1:1/0", connect_timeout=0.05, breaker=False)

    @cached_tiered(ttl=300, tiers=[MemoryTier(), broken], namespace="t")
    def fetch(symbol: str) -> str:
        return symbol

    handler = streams_invalidator(lambda change: [(fetch, (change.keys["symbol"],))])
    result = handler({"Records": [record("MODIFY", "300", "AMZN")]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "300"}]}


def test_the_example_streams_handler_invalidates_fetch_quote(
    remote_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend("examples/app")
    monkeypatch.setenv("QUOTE_ORIGIN_DELAY", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    import handler as app
    import streams

    first = app.fetch_quote("AMZN")
    assert app.fetch_quote("AMZN") == first
    assert streams.handler({"Records": [record("MODIFY", "400", "amzn")]}, None) == {
        "batchItemFailures": []
    }
    assert app.fetch_quote("AMZN")["computed_at"] > first["computed_at"]
