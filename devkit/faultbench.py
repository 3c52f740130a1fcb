"""Added latency per cached call while a remote tier is sick: ``python -m devkit.faultbench``.

Each scenario calls a function that returns at once through a cache whose
only tier is the sick one, with the shipped defaults (Redis socket and
connect timeouts 0.25 s; DynamoDB 0.5 s, one attempt; breaker 5 failures,
5 s cool-down), so a call's time is the latency the cache adds.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from devkit.faults import BlackHole, DynamoDBFaults, kill_hard, paused
from devkit.servers import MotoServer, RedisServer, create_cache_table, fake_aws_environment


def _timed(call: Callable[[int], Any], args: range) -> list[float]:
    out = []
    for n in args:
        started = time.perf_counter()
        call(n)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _row(scenario: str, millis: list[float]) -> None:
    ordered = sorted(millis)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"{scenario:<58} {len(millis):>5} {statistics.median(millis):>10.3f} "
        f"{p99:>10.3f} {max(millis):>10.3f}"
    )


def _echo(tier: Any, namespace: str) -> Callable[[int], int]:
    from stratacache import cached_tiered

    @cached_tiered(tiers=[tier], ttl=600, namespace=namespace)
    def echo(n: int) -> int:
        return n

    return echo


@contextmanager
def _quiet() -> Iterator[None]:
    import logging

    logger = logging.getLogger("stratacache")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # the failure lines are the point, not the output
    try:
        yield
    finally:
        logger.setLevel(level)


def redis_rows() -> None:
    from stratacache.breaker import OPEN
    from stratacache.tiers import RedisTier

    with RedisServer() as server:
        tier = RedisTier(server.url)
        echo = _echo(tier, "bench-redis")
        assert tier.breaker is not None
        threshold = tier.breaker.threshold
        for n in range(200):
            echo(n)
        _row("Redis healthy: L2 hit", _timed(echo, range(200)))
        _row("Redis healthy: L2 miss, compute, write", _timed(echo, range(1000, 1200)))

        with paused(server):
            _row(
                f"Redis hung (SIGSTOP), breaker closed: first {threshold} calls",
                _timed(echo, range(threshold)),
            )
            assert tier.breaker.state == OPEN
            _row("Redis hung, breaker open", _timed(echo, range(200)))
            bare = RedisTier(server.url, breaker=False)
            _row("Redis hung, no breaker (breaker=False)", _timed(_echo(bare, "bare"), range(6)))

        tier.breaker.reset()
        kill_hard(server)
        _row(
            f"Redis killed (refused), breaker closed: first {threshold} calls",
            _timed(echo, range(threshold)),
        )
        assert tier.breaker.state == OPEN
        _row("Redis killed, breaker open", _timed(echo, range(200)))


def dynamodb_rows() -> None:
    import boto3

    from stratacache.breaker import OPEN
    from stratacache.tiers import DynamoDBTier

    with BlackHole() as hole:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = hole.endpoint
        tier = DynamoDBTier("hung-table")
        assert tier.breaker is not None
        threshold = tier.breaker.threshold
        echo = _echo(tier, "bench-ddb-hung")
        _row(
            f"DynamoDB hung, breaker closed: first {threshold} calls",
            _timed(echo, range(threshold)),
        )
        assert tier.breaker.state == OPEN
        _row("DynamoDB hung, breaker open", _timed(echo, range(200)))

    with MotoServer() as moto:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = moto.endpoint
        client = boto3.client("dynamodb")
        create_cache_table(client, "bench-table")
        tier = DynamoDBTier("bench-table")
        assert tier.breaker is not None
        echo = _echo(tier, "bench-ddb")
        for n in range(50):
            echo(n)
        _row("DynamoDB (moto) healthy: L3 hit", _timed(echo, range(50)))
        faults = DynamoDBFaults(tier.client)
        faults.fail(400, "ProvisionedThroughputExceededException")
        _row(
            f"DynamoDB throttled, breaker closed: first {tier.breaker.threshold} calls",
            _timed(echo, range(tier.breaker.threshold)),
        )
        _row("DynamoDB throttled, breaker open", _timed(echo, range(200)))
        faults.close()


def main() -> None:
    os.environ.update(fake_aws_environment())
    for name in list(os.environ):
        if name.startswith("STRATACACHE_"):
            del os.environ[name]
    print(f"{'scenario (added ms per cached call)':<58} {'calls':>5} {'median':>10} "
          f"{'p99':>10} {'max':>10}")  # fmt: skip
    with _quiet():
        redis_rows()
        dynamodb_rows()


if __name__ == "__main__":
    main()
