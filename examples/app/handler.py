"""Example Lambda function: a slow quote lookup cached in L1, L2 and L3.

Deployed by ``template.yaml`` behind an HTTP API (``GET /quote/{symbol}``) and
run locally by ``make demo``. The tiers come from the environment:
``STRATACACHE_REDIS_URL`` adds Redis, ``STRATACACHE_TABLE_NAME`` adds DynamoDB.
Whole HTTP answers are cached too (``@http_cached``): they carry ``Cache-Control``
from the entry's remaining lifetime and an ``ETag``, and ``If-None-Match`` gets a 304,
so CloudFront or a browser in front can keep and revalidate them. A warm-up ping
(``template.yaml``'s ``WarmupSchedule``) loads the hot symbols' quotes into L1 and
returns before the handler runs (``@warmup``); it also pings Redis and DynamoDB
(``stratacache.warm``), so every ping uses both connections, even when every hot quote
was already in L1. Under provisioned concurrency or SnapStart, ``warm`` also runs by itself
when ``fetch_quote`` is decorated, during initialisation.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from stratacache import cached_tiered, log_cache_metrics, warm
from stratacache.http import http_cached
from stratacache.warmup import hot_calls, warmup

metrics = Metrics()
ORIGIN_DELAY = float(os.environ.get("QUOTE_ORIGIN_DELAY", "0.2"))
QUOTE_TTL = float(os.environ.get("QUOTE_TTL", "300"))
HOT_SYMBOLS = [s for s in os.environ.get("QUOTE_HOT_SYMBOLS", "AMZN").upper().split(",") if s]


@cached_tiered(ttl=QUOTE_TTL)
def fetch_quote(symbol: str) -> dict[str, Any]:
    """Stands in for a slow upstream API: the same symbol always gets the same quote."""
    time.sleep(ORIGIN_DELAY)
    cents = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:2], "big")
    return {"symbol": symbol, "price": cents / 100, "computed_at": time.time()}


def _symbol(event: dict[str, Any]) -> str:
    path = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    return str(path.get("symbol") or query.get("symbol") or "AMZN").upper()[:16]


@http_cached(ttl=QUOTE_TTL, grace=QUOTE_TTL / 10)
def quote_response(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The HTTP answer: ``{"statusCode": 200, "body": <quote JSON>}``, kept whole, or a 304."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(fetch_quote(_symbol(event))),
    }


@warmup(hot=[hot_calls(fetch_quote, HOT_SYMBOLS)], prepare=[warm])
@metrics.log_metrics
@log_cache_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """HTTP API handler: every answer, cached or not, counts as ``QuoteServed``."""
    metrics.add_metric(name="QuoteServed", unit=MetricUnit.Count, value=1)
    return quote_response(event, context)
