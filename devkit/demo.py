"""``make demo``: the example handler through cold start, warm calls, new environments, a flush.

It starts a real Redis-compatible server and a moto DynamoDB endpoint, points
the example function at them through the environment (as ``template.yaml``
does on AWS), and prints which tier answered each invocation, its latency, and
the EMF lines that Powertools printed.

``python -m devkit.demo --json`` prints the same story as JSON lines instead,
for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from devkit.servers import MotoServer, RedisServer, create_cache_table, fake_aws_environment

HANDLER_PATH = Path(__file__).resolve().parent.parent / "examples" / "app" / "handler.py"
TABLE = "stratacache-demo"
SYMBOL = "AMZN"


def load_environment() -> ModuleType:
    """A fresh copy of the handler module: what a new Lambda execution environment imports.

    It is loaded under the same module name every time, so the function's
    cache keys are the same in every "environment", as they are on Lambda.
    """
    spec = importlib.util.spec_from_file_location("handler", HANDLER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    return module


def answered_by(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> str:
    """The tier whose hit count moved, or ``origin`` when no tier had the entry."""
    for tier, stats in after.items():
        if stats["hits"] > before.get(tier, {}).get("hits", 0):
            return tier
    return "origin"


def invoke(env: ModuleType) -> tuple[str, float, dict[str, Any], list[dict[str, Any]]]:
    """One invocation: (tier that answered, milliseconds, response body, EMF documents)."""
    cache = env.fetch_quote.cache
    before = cache.stats()
    printed = io.StringIO()
    event = {"pathParameters": {"symbol": SYMBOL}}
    with contextlib.redirect_stdout(printed):
        start = time.perf_counter()
        response = env.handler(event, None)
        elapsed = (time.perf_counter() - start) * 1000
    emf = [json.loads(line) for line in printed.getvalue().splitlines() if line.startswith("{")]
    return answered_by(before, cache.stats()), elapsed, json.loads(response["body"]), emf


def run(as_json: bool) -> int:
    with RedisServer() as redis_server, MotoServer() as moto:
        os.environ.update(fake_aws_environment(moto.endpoint))
        os.environ.update(
            {
                "STRATACACHE_REDIS_URL": redis_server.url,
                "STRATACACHE_TABLE_NAME": TABLE,
                "STRATACACHE_METRICS_INTERVAL": "3600",
                "POWERTOOLS_SERVICE_NAME": "quotes",
                "POWERTOOLS_METRICS_NAMESPACE": "StratacacheDemo",
                "QUOTE_ORIGIN_DELAY": os.environ.get("QUOTE_ORIGIN_DELAY", "0.2"),
            }
        )
        import boto3
        import redis

        from stratacache import metrics  # after the environment above: it reads the settings

        create_cache_table(boto3.client("dynamodb"), TABLE)
        raw_redis = redis.Redis.from_url(redis_server.url)

        steps: list[tuple[str, str, ModuleType]] = []
        first = load_environment()
        steps += [("cold start, environment A", "", first)]
        steps += [("warm, environment A", "", first)] * 2
        second = load_environment()
        steps += [("new environment B (empty L1)", "", second)]
        steps += [("warm, environment B", "", second)]
        third = load_environment()
        steps += [("Redis flushed, new environment C", "flush", third)]
        steps += [("warm, environment C", "", third)]

        rows: list[dict[str, Any]] = []
        started: set[int] = set()
        for label, action, env in steps:
            if action == "flush":
                raw_redis.flushall()
            if id(env) not in started:  # a new environment's first invocation is a cold start
                started.add(id(env))
                metrics.recorder.cold = True
            tier, millis, body, emf = invoke(env)
            full_key = env.fetch_quote.cache.full_key(env.fetch_quote.cache_key(SYMBOL))
            rows.append(
                {
                    "step": label,
                    "tier": tier,
                    "ms": round(millis, 3),
                    "price": body["price"],
                    "redis_pttl_ms": raw_redis.pttl(full_key),
                    "emf": emf,
                }
            )
        raw_redis.close()

    if as_json:
        for row in rows:
            print(json.dumps(row))
        return 0
    _print_table(rows)
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    print("examples/app/handler.py, GET /quote/AMZN, with L1 + L2 (Valkey) + L3 (moto DynamoDB)")
    print()
    print(f"{'#':>2}  {'invocation':<34} {'answered by':<11} {'latency':>10}  {'L2 PTTL':>9}")
    for number, row in enumerate(rows, 1):
        pttl = f"{row['redis_pttl_ms'] / 1000:.2f} s" if row["redis_pttl_ms"] > 0 else "absent"
        print(f"{number:>2}  {row['step']:<34} {row['tier']:<11} {row['ms']:>7.2f} ms  {pttl:>9}")
    print()
    print("L2/L3 hits were copied into the faster tiers with the entry's remaining lifetime;")
    print("after the flush, L2 holds the key again (PTTL above) and the next call is an L1 hit.")
    print()
    print("EMF lines printed by Powertools (one per tier per invocation, plus the app's own):")
    for number, row in enumerate(rows, 1):
        for doc in row["emf"]:
            print(f"{number:>2}  {json.dumps(doc, separators=(',', ':'))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per invocation")
    return run(parser.parse_args(argv).json)


if __name__ == "__main__":
    raise SystemExit(main())
