"""A fleet of execution environments on one cache: origin calls, latency and monthly cost.

``python -m devkit.fleet`` (part of ``make bench``) runs N simulated Lambda execution
environments as threads of one process, each with its own L1 (``MemoryTier``), its
own Redis connection pool (L2) and its own ``DynamoDBTier`` (L3, one boto3 client
shared, as botocore allows), against a real Redis-compatible server and moto. Each
environment asks for Zipf-distributed keys at random (Poisson) times; the origin
takes ``origin_ms`` and every entry lives ``ttl`` seconds. Each N runs twice: with the
lease (one environment computes a missing key while the others wait) and without.

Reported per run: origin calls against the ideal, the p50/p99/p99.9 latency of a
call, Redis commands and DynamoDB requests per second, and what that load would cost
a month at the prices of :class:`stratacache.report.Prices`.

The ideal is computed from the requests themselves: the fewest origin calls that
serve every request with a value stored at most ``ttl`` before, one call per key per
``ttl`` (a key's first request calls the origin; its value is stored a fill time
later, the median this run measured from a request to its value stored, and serves
that key's requests for ``ttl`` from then).

``--quick`` runs small fleets for a few seconds (the test suite runs it); ``--png``
draws origin calls and latency against the number of environments.

Example:
    $ python -m devkit.fleet --png docs/fleet.png
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

FULL_ENVIRONMENTS = (1, 8, 64, 256)
QUICK_ENVIRONMENTS = (1, 8)


@dataclass(frozen=True)
class Settings:
    """One fleet run."""

    environments: int
    lease: bool
    keys: int = 1_000
    zipf: float = 1.0
    """The Zipf exponent: the key of rank r is asked for in proportion to 1 / r**zipf."""
    ttl: float = 10.0
    duration: float = 30.0
    rate: float = 1.0
    """Calls per second of each environment, at random (Poisson) times; an environment
    serves one call at a time, as Lambda's do, so a slow call delays its next ones."""
    origin_ms: float = 50.0
    seed: int = 7


@dataclass
class Result:
    """What one run measured."""

    settings: Settings
    calls: int
    origin_calls: int
    ideal: int
    latencies: list[float] = field(repr=False)
    """Seconds per call, sorted."""
    redis_commands: int
    dynamodb_requests: int
    read_units: float
    write_units: float
    elapsed: float

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the call latency, in milliseconds."""
        if not self.latencies:
            return 0.0
        index = min(len(self.latencies) - 1, math.ceil(q / 100 * len(self.latencies)) - 1)
        return self.latencies[max(index, 0)] * 1000

    def per_second(self, count: float) -> float:
        return count / self.elapsed if self.elapsed else 0.0

    def monthly_cost(self) -> dict[str, float]:
        """USD a month at this run's load, by :mod:`stratacache.report`'s prices."""
        from stratacache.report import HOURS_PER_MONTH, Prices

        prices = Prices()
        month = HOURS_PER_MONTH * 3600
        return {
            "redis": self.per_second(self.redis_commands) * month * prices.ecpu_per_million / 1e6
            + prices.storage_gb * HOURS_PER_MONTH * prices.storage_gb_hour,
            "dynamodb": month
            * (
                self.per_second(self.read_units) * prices.read_per_million
                + self.per_second(self.write_units) * prices.write_per_million
            )
            / 1e6,
            "origin": self.per_second(self.origin_calls) * month * prices.origin_call,
        }


# ---------------------------------------------------------------- the ideal


def ideal_origin_calls(requests: Sequence[tuple[float, int]], window: float) -> int:
    """The fewest origin calls for ``(time, key)`` requests when one call serves its key's
    requests for ``window`` seconds from the first request it serves.

    Example:
        >>> ideal_origin_calls([(0.0, 1), (0.5, 1), (1.2, 1), (0.1, 2)], window=1.0)
        3
    """
    calls = 0
    until: dict[int, float] = {}
    for at, key in sorted(requests):
        if at >= until.get(key, -math.inf):
            calls += 1
            until[key] = at + window
    return calls


def zipf_weights(keys: int, exponent: float) -> list[float]:
    """Cumulative weights of ranks 1..keys, for ``random.choices(cum_weights=...)``."""
    return list(itertools.accumulate(1 / rank**exponent for rank in range(1, keys + 1)))


# ---------------------------------------------------------------- counting


@contextmanager
def counted_redis_commands() -> Iterator[list[int]]:
    """Commands redis-py sends meanwhile (a pipeline's or a script's each count once)."""
    from devkit.roundtrips import redis_round_trips

    total = [0]
    with redis_round_trips() as trips:
        yield total
        total[0] = sum(len(trip) for trip in trips)


class DynamoDBCounter:
    """Requests a boto3 client makes, and the request units they would consume."""

    def __init__(self, client: Any, value_kb: float = 1.0) -> None:
        self.requests = 0
        self.read_units = 0.0
        self.write_units = 0.0
        self.value_kb = value_kb
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        read = math.ceil(self.value_kb / 4) * 0.5  # eventually consistent
        write = math.ceil(self.value_kb)
        reads = writes = 0.0
        match model.name:
            case "GetItem":
                reads = read * (2 if params.get("ConsistentRead") else 1)
            case "BatchGetItem":
                reads = read * sum(len(t["Keys"]) for t in params["RequestItems"].values())
            case "PutItem" | "DeleteItem" | "UpdateItem":
                writes = write
            case "BatchWriteItem":
                writes = write * sum(len(t) for t in params["RequestItems"].values())
            case "TransactWriteItems":
                writes = 2 * write * len(params["TransactItems"])  # transactions cost double
        with self._lock:
            self.requests += 1
            self.read_units += reads
            self.write_units += writes

    def reset(self) -> None:
        with self._lock:
            self.requests, self.read_units, self.write_units = 0, 0.0, 0.0


# ---------------------------------------------------------------- one run


def run(settings: Settings, redis_url: str, table: str, dynamodb: Any) -> Result:
    """One fleet: ``settings.environments`` threads for ``settings.duration`` seconds."""
    from stratacache import DynamoDBTier, MemoryTier, RedisTier, cached_tiered

    namespace = f"fleet-{uuid.uuid4().hex[:8]}"
    clock = time.monotonic
    origin_log: list[tuple[float, int]] = []
    requests: list[tuple[float, int]] = []
    latencies: list[float] = []
    fills: list[float] = []  # seconds from a request to its value stored, when it called the origin
    filling = threading.local()
    weights = zipf_weights(settings.keys, settings.zipf)
    keys = list(range(settings.keys))
    counter = _counter_of(dynamodb)
    counter.reset()

    def origin(key: int) -> dict[str, int]:
        filling.called = True
        origin_log.append((clock(), key))
        time.sleep(settings.origin_ms / 1000)
        return {"key": key, "value": key * 7}

    def environment(number: int, start: float, deadline: float) -> Callable[[], None]:
        l2 = RedisTier(redis_url)
        l3 = DynamoDBTier(table, client=dynamodb)

        @cached_tiered(
            tiers=[MemoryTier(), l2, l3],
            ttl=settings.ttl,
            namespace=namespace,
            lock=settings.lease,
        )
        def lookup(key: int) -> dict[str, int]:
            return origin(key)

        rng = random.Random(settings.seed * 100_003 + number)

        def loop() -> None:
            mine: list[float] = []
            asked: list[tuple[float, int]] = []
            due = start + rng.expovariate(settings.rate)
            while due < deadline:
                pause = due - clock()
                if pause > 0:
                    time.sleep(pause)
                elif clock() >= deadline:
                    break
                key = rng.choices(keys, cum_weights=weights)[0]
                began = clock()
                asked.append((began, key))
                filling.called = False
                lookup(key)
                mine.append(clock() - began)
                if filling.called:
                    fills.append(mine[-1])
                due += rng.expovariate(settings.rate)
            requests.extend(asked)
            latencies.extend(mine)
            l2.close()

        return loop

    with counted_redis_commands() as commands:
        start = clock() + 0.2  # every thread built before the first call
        deadline = start + settings.duration
        loops = [environment(n, start, deadline) for n in range(settings.environments)]
        threads = [threading.Thread(target=loop, daemon=True) for loop in loops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = settings.duration
    fill = statistics.median(fills) if fills else settings.origin_ms / 1000
    return Result(
        settings=settings,
        calls=len(requests),
        origin_calls=len(origin_log),
        ideal=ideal_origin_calls(requests, settings.ttl + fill),
        latencies=sorted(latencies),
        redis_commands=commands[0],
        dynamodb_requests=counter.requests,
        read_units=counter.read_units,
        write_units=counter.write_units,
        elapsed=elapsed,
    )


_counters: list[tuple[Any, DynamoDBCounter]] = []  # each client kept, so no id is reused


def _counter_of(client: Any) -> DynamoDBCounter:
    for known, counter in _counters:
        if known is client:
            return counter
    counter = DynamoDBCounter(client)
    _counters.append((client, counter))
    return counter


def dynamodb_client(endpoint: str | None = None, pool: int = 300) -> Any:
    """One boto3 client for the whole fleet, with a connection per environment."""
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=pool,
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=config)


def sweep(
    sizes: Sequence[int], base: Settings, redis_url: str, table: str, dynamodb: Any
) -> list[Result]:
    """Every fleet size, lease on and off."""
    return [
        run(replace(base, environments=size, lease=lease), redis_url, table, dynamodb)
        for size in sizes
        for lease in (True, False)
    ]


# ---------------------------------------------------------------- output


def show(results: Sequence[Result]) -> None:
    if not results:
        return
    base = results[0].settings
    print(
        f"\nFleet: {base.keys:,} Zipf({base.zipf}) keys, ttl {base.ttl:g} s, origin "
        f"{base.origin_ms:g} ms, {base.rate:g} calls/s per environment for "
        f"{base.duration:g} s; L1 + Redis + DynamoDB (moto), threads of one process"
    )
    print(
        f"  {'envs':>5} {'lease':>5} {'calls':>7} {'origin':>7} {'ideal':>6} {'ratio':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'Redis/s':>8} {'DDB/s':>6} "
        f"{'L2+L3 $/mo':>10} {'origin $/mo':>11}"
    )
    for result in results:
        s = result.settings
        cost = result.monthly_cost()
        ratio = result.origin_calls / result.ideal if result.ideal else 0.0
        print(
            f"  {s.environments:>5} {'on' if s.lease else 'off':>5} {result.calls:>7,} "
            f"{result.origin_calls:>7,} {result.ideal:>6,} {ratio:>6.2f} "
            f"{result.percentile(50):>7.2f} {result.percentile(99):>7.2f} "
            f"{result.percentile(99.9):>8.2f} {result.per_second(result.redis_commands):>8.0f} "
            f"{result.per_second(result.dynamodb_requests):>6.0f} "
            f"{cost['redis'] + cost['dynamodb']:>10,.2f} {cost['origin']:>11,.2f}"
        )
    print(
        "  ratio: origin calls / ideal (one per key per ttl, from the requests made).\n"
        "  $/mo: this load for a month at stratacache.report.Prices: ElastiCache Serverless "
        "ECPUs (a command each)\n  and its least storage, DynamoDB on-demand request units "
        "(a transactional write at twice), origin calls at Prices.origin_call."
    )


def chart(results: Sequence[Result], path: Path) -> None:
    """Origin calls against the ideal, and latency, by the number of environments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for lease, colour in ((True, "tab:blue"), (False, "tab:orange")):
        runs = [r for r in results if r.settings.lease is lease]
        sizes = [r.settings.environments for r in runs]
        label = "lease on" if lease else "lease off"
        ratios = [r.origin_calls / r.ideal if r.ideal else 0.0 for r in runs]
        left.plot(sizes, ratios, "o-", color=colour, label=label)
        for q, style in ((50, "o-"), (99, "s--")):
            latency = [r.percentile(q) for r in runs]
            right.plot(sizes, latency, style, color=colour, label=f"p{q}, {label}")
    left.axhline(1.0, color="grey", linewidth=0.8)
    sizes = sorted({r.settings.environments for r in results})
    for axes in (left, right):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sizes, [str(size) for size in sizes])
        axes.set_xlabel("execution environments")
        axes.legend()
    left.set_ylabel("origin calls / ideal")
    left.set_title("Origin calls against the ideal (one per key per ttl)")
    right.set_ylabel("ms per call")
    right.set_yscale("log")
    right.set_title("Latency of a call")
    base = results[0].settings
    figure.suptitle(
        f"{base.keys:,} Zipf keys, ttl {base.ttl:g} s, {base.rate:g} calls/s per environment, "
        f"origin {base.origin_ms:g} ms"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small fleets for a few seconds")
    parser.add_argument("--png", type=Path, help="draw origin calls and latency here")
    parser.add_argument("--environments", type=int, nargs="+", help="fleet sizes to run")
    for name in ("keys", "zipf", "ttl", "duration", "rate", "origin_ms"):
        kind = int if name == "keys" else float
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"Settings.{name}")
    args = parser.parse_args(argv)
    from devkit.servers import MotoProcess, RedisServer, create_cache_table, fake_aws_environment

    base = quick_settings() if args.quick else Settings(environments=1, lease=True)
    given = {
        name: getattr(args, name)
        for name in ("keys", "zipf", "ttl", "duration", "rate", "origin_ms")
        if getattr(args, name) is not None
    }
    base = replace(base, **given)
    sizes = args.environments or (QUICK_ENVIRONMENTS if args.quick else FULL_ENVIRONMENTS)
    os.environ.update(fake_aws_environment())
    os.environ["STRATACACHE_METRICS_DISABLED"] = "true"
    with ExitStack() as stack:
        redis_server = stack.enter_context(RedisServer(None, "--maxclients", "4096"))
        moto = stack.enter_context(MotoProcess())
        client = dynamodb_client(moto.endpoint, pool=max(sizes) + 10)
        create_cache_table(client, "fleet")
        results = sweep(sizes, base, redis_server.url, "fleet", client)
    show(results)
    if args.png:
        chart(results, args.png)
        print(f"  chart: {args.png}")
    return 0


def quick_settings() -> Settings:
    """What ``--quick`` and the test suite run: small, short, still a herd to avoid."""
    return Settings(
        environments=1, lease=True, keys=50, ttl=0.5, duration=2.0, rate=20.0, origin_ms=20.0
    )


if __name__ == "__main__":
    sys.exit(main())
