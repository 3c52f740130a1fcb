"""The smallest stratacache handler: one ``@cached_tiered`` function, tiers from the
environment (L1, Redis, DynamoDB), hit and miss counts through Powertools, as the
hand-written handler publishes them."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from stratacache import cached_tiered, log_cache_metrics


@cached_tiered(ttl=float(os.environ.get("QUOTE_TTL", "300")))
def fetch_quote(symbol: str) -> dict[str, Any]:
    time.sleep(float(os.environ.get("QUOTE_ORIGIN_DELAY", "0.2")))
    cents = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:2], "big")
    return {"symbol": symbol, "price": cents / 100, "computed_at": time.time()}


@log_cache_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    symbol = str((event.get("pathParameters") or {}).get("symbol") or "AMZN").upper()[:16]
    return {"statusCode": 200, "body": json.dumps(fetch_quote(symbol))}
