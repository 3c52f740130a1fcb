"""The DynamoDB Streams handler invalidates what changed items feed, and reports failures."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from stratacache import MemoryTier, RedisTier, cached_many, cached_tiered
from stratacache.streams import Change, Target, streams_invalidator
from tests.support import stream_records

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


# ---------------------------------------------------------------- binary values, @cached_many


@pytest.fixture
def binary_table(dynamodb_client: Any) -> tuple[str, str]:
    """A table keyed by a Binary id, with a stream of new and old images: (name, stream ARN)."""
    name = f"blobs-{uuid.uuid4().hex[:8]}"
    created = dynamodb_client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "B"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name, created["TableDescription"]["LatestStreamArn"]


IDS = [b"\x00\x01", b"\xff\xfe\x80", b"plain"]


def test_a_batch_of_binary_items_on_a_binary_keyed_table_is_fully_invalidated(
    binary_table: tuple[str, str],
    dynamodb_client: Any,
    moto_server: Any,
    redis_client: Any,
) -> None:
    table, stream_arn = binary_table
    reads: list[bytes] = []

    @cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="b")
    def blob(item_id: bytes) -> str:
        reads.append(item_id)
        return f"{item_id.hex()}:{len(reads)}"

    for item_id in IDS:
        blob(item_id)
    # Binary everywhere: the key, a set, inside a map and a list.
    for item_id in IDS:
        dynamodb_client.put_item(
            TableName=table,
            Item={
                "id": {"B": item_id},
                "parts": {"BS": [b"\x00", b"\xff"]},
                "meta": {"M": {"digest": {"B": b"\x01\x02"}, "size": {"N": "5"}}},
                "chunks": {"L": [{"B": b"\x03"}, {"S": "text"}]},
            },
        )
    dynamodb_client.update_item(
        TableName=table,
        Key={"id": {"B": IDS[1]}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
    )
    dynamodb_client.delete_item(TableName=table, Key={"id": {"B": IDS[2]}})
    event = {"Records": stream_records(moto_server.endpoint, stream_arn)}
    assert [r["eventName"] for r in event["Records"]] == ["INSERT"] * 3 + ["MODIFY", "REMOVE"]
    assert event["Records"][0]["dynamodb"]["NewImage"]["id"] == {"B": "AAE="}  # base64 text

    seen: list[Change] = []

    def affected(change: Change) -> list[Target]:
        seen.append(change)
        return [(blob, (change.image["id"],))]

    assert streams_invalidator(affected)(event, None) == {"batchItemFailures": []}
    assert [c.image["id"] for c in seen] == [*IDS, IDS[1], IDS[2]]
    first = seen[0].image
    assert first["parts"] == {b"\x00", b"\xff"}
    assert first["meta"] == {"digest": b"\x01\x02", "size": Decimal(5)}
    assert first["chunks"] == [b"\x03", "text"]
    assert seen[3].new_image is not None
    assert type(seen[3].new_image["n"]) is Decimal
    before = len(reads)
    for item_id in IDS:
        blob(item_id)
    assert reads[before:] == IDS  # every entry was dropped, none left stale


def test_binary_keys_as_lambda_documents_them_reach_affected_as_bytes(quote: Any) -> None:
    seen: list[Change] = []
    event = {"Records": [record("REMOVE", "500", "AMZN")]}
    body = event["Records"][0]["dynamodb"]
    body["Keys"] = {"id": {"B": "AAE="}, "sort": {"BS": ["/w==", "AA=="]}}
    body["OldImage"]["id"] = {"B": "AAE="}

    def affected(change: Change) -> list[Target]:
        seen.append(change)
        return [(quote, (change.image["symbol"],))]

    assert streams_invalidator(affected)(event, None) == {"batchItemFailures": []}
    assert seen[0].keys == {"id": b"\x00\x01", "sort": {b"\xff", b"\x00"}}
    assert seen[0].image["id"] == b"\x00\x01"


def test_a_cached_many_target_is_invalidated_per_id(redis_client: Any) -> None:
    asked: list[list[str]] = []

    @cached_many(ttl=300, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="m")
    def prices(skus: list[str]) -> dict[str, int]:
        asked.append(sorted(skus))
        return {sku: len(asked) for sku in skus}

    assert prices(["a", "b", "c", "d"]) == {"a": 1, "b": 1, "c": 1, "d": 1}
    handler = streams_invalidator(lambda change: [(prices, ([change.keys["symbol"]],))])
    event = {"Records": [record("MODIFY", "600", "a"), record("REMOVE", "601", "c")]}
    assert handler(event, None) == {"batchItemFailures": []}
    assert prices(["a", "b", "c", "d"]) == {"a": 2, "b": 1, "c": 2, "d": 1}
    assert asked == [["a", "b", "c", "d"], ["a", "c"]]  # only the changed ids again


def test_numbers_arrive_as_decimal_which_keys_differently_from_int(quote: Any) -> None:
    seen: list[Change] = []

    def affected(change: Change) -> list[Target]:
        seen.append(change)
        return []

    streams_invalidator(affected)({"Records": [record("MODIFY", "700", "AMZN", price="5")]}, None)
    price = seen[0].image["price"]
    assert price == Decimal(5)
    assert type(price) is Decimal
    assert quote.cache_key(price) != quote.cache_key(5)  # convert: int(price)
    assert quote.cache_key(int(price)) == quote.cache_key(5)
