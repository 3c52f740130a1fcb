"""The example handler written by hand: what stratacache's tiers cost without stratacache.

Module-scope redis-py and boto3 clients, a dict with expiry times as L1, Redis
``GET`` then DynamoDB ``get_item``, the hit written back to the faster tiers
with its remaining lifetime, and the same hit and miss counts published through
Powertools (one EMF line per tier, dimension ``tier``), as the example does.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import boto3
import redis
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

metrics = Metrics()
cache = redis.Redis.from_url(os.environ["STRATACACHE_REDIS_URL"], socket_timeout=0.25)
dynamodb = boto3.client("dynamodb")
TABLE = os.environ["STRATACACHE_TABLE_NAME"]
TTL = float(os.environ.get("QUOTE_TTL", "300"))
memory: dict[str, tuple[float, dict[str, Any]]] = {}


def fetch_quote(symbol: str) -> dict[str, Any]:
    time.sleep(float(os.environ.get("QUOTE_ORIGIN_DELAY", "0.2")))
    cents = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:2], "big")
    return {"symbol": symbol, "price": cents / 100, "computed_at": time.time()}


def cached_quote(symbol: str, counts: dict[str, list[int]]) -> dict[str, Any]:
    key = f"handwritten:quote:{symbol}"
    now = time.time()
    held = memory.get(key)
    if held is not None and held[0] > now:
        counts["L1"][0] += 1
        return held[1]
    counts["L1"][1] += 1
    raw = cache.get(key)
    if raw is not None:
        counts["L2"][0] += 1
        value: dict[str, Any] = json.loads(raw)
        memory[key] = (now + max(cache.pttl(key), 1) / 1000, value)
        return value
    counts["L2"][1] += 1
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}}).get("Item")
    if item is not None and float(item["ttl"]["N"]) > now:
        counts["L3"][0] += 1
        expires = float(item["ttl"]["N"])
        value = json.loads(item["v"]["B"])
        cache.set(key, item["v"]["B"], px=int((expires - now) * 1000))
        memory[key] = (expires, value)
        return value
    counts["L3"][1] += 1
    value = fetch_quote(symbol)
    body = json.dumps(value).encode()
    cache.set(key, body, px=int(TTL * 1000))
    dynamodb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": key}, "v": {"B": body}, "ttl": {"N": str(int(now + TTL))}},
    )
    memory[key] = (now + TTL, value)
    return value


@metrics.log_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    symbol = str((event.get("pathParameters") or {}).get("symbol") or "AMZN").upper()[:16]
    counts: dict[str, list[int]] = {"L1": [0, 0], "L2": [0, 0], "L3": [0, 0]}
    try:
        quote = cached_quote(symbol, counts)
    finally:
        for tier, (hits, misses) in counts.items():
            if hits or misses:
                published = EphemeralMetrics(namespace=metrics.namespace)
                published.add_dimension(name="tier", value=tier)
                published.add_metric(name="CacheHit", unit=MetricUnit.Count, value=hits)
                published.add_metric(name="CacheMiss", unit=MetricUnit.Count, value=misses)
                published.add_metric(name="CacheError", unit=MetricUnit.Count, value=0)
                published.flush_metrics()
    metrics.add_metric(name="QuoteServed", unit=MetricUnit.Count, value=1)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(quote),
    }
