"""A warm-up reads the hot keys with one MGET and one BatchGetItem, then returns early.

Redis round trips are counted in this process, at redis-py's connection; DynamoDB
calls by botocore's event hooks on a client talking HTTP to moto.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from devkit.roundtrips import redis_round_trips

from stratacache import DynamoDBTier, MemoryTier, RedisTier, TieredCache
from stratacache.warmup import WARMUP_EVENT, warmup
from tests.support import rest_v1_event

WARMUPS: dict[str, dict[str, Any]] = {
    "serverless-plugin-warmup": {"source": "serverless-plugin-warmup"},
    "warmer": {"warmer": True},
    "eventbridge-schedule": {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/quote-warmup"],
        "detail": dict(WARMUP_EVENT),
    },
}
IN_REDIS = {f"r{n}": {"n": n} for n in range(5)}
IN_DYNAMODB = {f"d{n}": {"n": n} for n in range(5)}


@pytest.mark.parametrize("kind", list(WARMUPS))
def test_a_warmup_costs_one_mget_one_batch_get_item_and_the_generation(
    kind: str, redis_client: Any, dynamodb_client: Any, table_name: str
) -> None:
    redis_tier = RedisTier(client=redis_client)
    dynamodb_tier = DynamoDBTier(table_name, client=dynamodb_client)
    TieredCache([redis_tier], ttl=300, namespace="warm").set_many(IN_REDIS)
    TieredCache([dynamodb_tier], ttl=300, namespace="warm").set_many(IN_DYNAMODB)
    cache = TieredCache([MemoryTier(), redis_tier, dynamodb_tier], ttl=300, namespace="warm")

    dynamodb_ops: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        dynamodb_ops[model.name] += 1

    dynamodb_client.meta.events.register("before-call.dynamodb", count)
    calls: list[object] = []

    @warmup(hot=[(cache, [*IN_REDIS, *IN_DYNAMODB, "nowhere"])])
    def handler(event: object, context: object) -> str:
        calls.append(event)
        return "real work"

    with redis_round_trips() as trips:
        answer = handler(WARMUPS[kind], None)

    assert answer == {"warmup": True, "loaded": len(IN_REDIS) + len(IN_DYNAMODB)}
    assert calls == []
    # The generation, the hot keys in one MGET, and DynamoDB's hits copied into Redis in
    # one script: never a hot key one by one.
    assert sorted(trip[0] for trip in trips) == ["EVAL", "GET", "MGET"]
    # and DynamoDB's generation, read before its entries (a flushed Redis lost Redis's)
    assert dynamodb_ops == Counter({"BatchGetItem": 1, "GetItem": 1})

    # Every hot key is now in L1: the next reads touch neither server.
    dynamodb_ops.clear()
    with redis_round_trips() as trips:
        assert cache.get_many([*IN_REDIS, *IN_DYNAMODB]) == {**IN_REDIS, **IN_DYNAMODB}
    assert trips == []
    assert dynamodb_ops == Counter()

    assert handler(rest_v1_event(), None) == "real work"
