"""``make bench``: the per-call cost of a cache hit in each tier, next to the nearest plain tool.

Every comparison is measured side by side in one run: the cases of a row take
turns, round after round, and each reports the median of its rounds, so a
noisy neighbour slows both sides alike. The numbers are ratios to read, not
limits to enforce; nothing here fails on timing.

The cold-start rows come from ``devkit.coldstart`` (the built layer under the
Lambda runtime client). ``python -m devkit.bench --quick`` runs every row with
few iterations (for tests).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from devkit import coldstart, fleet
from devkit.servers import MotoProcess, RedisServer, create_cache_table, fake_aws_environment

VALUE = {"symbol": "AMZN", "price": 187.42, "currency": "USD", "tags": ["tech", "retail"]}


def per_call_ns(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls


def side_by_side(
    cases: dict[str, Callable[[], object]], rounds: int, calls: int
) -> dict[str, list[float]]:
    """Nanoseconds per call of each case in every round, the cases taking turns each round."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for name in names:  # warm-up: connections, lazy imports, CPU caches
        per_call_ns(cases[name], max(1, calls // 10))
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(per_call_ns(cases[name], calls))
    return samples


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the per-round ratios: each round's two cases ran back to back, so a
    slowdown that lasts a round (a neighbour, a timer) divides out."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def show(
    title: str, samples: dict[str, list[float]], ours: str, target: tuple[str, float] | None
) -> None:
    print(f"\n{title}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, ns in medians.items():
        unit = f"{ns:10.0f} ns" if ns < 10_000 else f"{ns / 1000:10.1f} us"
        versus = "" if name == ours else f"   ours / this = {medians[ours] / ns:5.2f}"
        print(f"  {name:<48}{unit}{versus}")
    if target is not None:
        against, limit = target
        ratio = paired_ratio(samples[ours], samples[against])
        verdict = "met" if ratio <= limit else "NOT met"
        print(
            f"  target: ours / {against} <= {limit:.2f}: {ratio:.2f} "
            f"(median of {len(samples[ours])} paired rounds), {verdict}"
        )


# ---------------------------------------------------------------- rows


def l1_row(rounds: int, calls: int) -> None:
    import cachetools

    from stratacache import cached

    @cached(ttl=300)
    def ours(symbol: str) -> dict[str, Any]:
        return VALUE

    @cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=300))
    def with_cachetools(symbol: str) -> dict[str, Any]:
        return VALUE

    @functools.lru_cache(maxsize=1024)
    def with_lru_cache(symbol: str) -> dict[str, Any]:
        return VALUE

    samples = side_by_side(
        {
            "stratacache @cached (L1 hit)": lambda: ours("AMZN"),
            "cachetools.cached(TTLCache)": lambda: with_cachetools("AMZN"),
            "functools.lru_cache": lambda: with_lru_cache("AMZN"),
        },
        rounds,
        calls,
    )
    show(
        "L1 hit: one call of a cached function whose entry is in memory",
        samples,
        "stratacache @cached (L1 hit)",
        ("cachetools.cached(TTLCache)", 1.0),
    )


def warm_batch_row(rounds: int, ids: int) -> None:
    """``@cached_many`` over ids all in L1 against a loop of single L1 hits, the same ids."""
    from stratacache import MemoryTier, cached, cached_many

    @cached_many(ttl=300, tiers=[MemoryTier(maxsize=2 * ids)])
    def many(item_ids: list[int]) -> dict[int, int]:
        return {i: i * i for i in item_ids}

    @cached(ttl=300, tier=MemoryTier(maxsize=2 * ids))
    def one(item_id: int) -> int:
        return item_id * item_id

    wanted = list(range(ids))
    samples = side_by_side(
        {
            f"@cached_many, {ids} ids in one call": lambda: many(wanted),
            f"@cached, a loop of {ids} calls": lambda: {i: one(i) for i in wanted},
        },
        rounds,
        calls=5,
    )
    show(
        f"Warm batch: {ids} ids, every one in L1 (time per batch)",
        samples,
        f"@cached_many, {ids} ids in one call",
        (f"@cached, a loop of {ids} calls", 1.2),
    )


def l2_row(url: str, rounds: int, calls: int) -> None:
    import redis

    from stratacache import RedisTier, cached

    client = redis.Redis.from_url(url)
    tier = RedisTier(client=client)

    @cached(tier=tier, ttl=300)
    def ours(symbol: str) -> dict[str, Any]:
        return VALUE

    ours("AMZN")
    client.set("raw:AMZN", json.dumps(VALUE))

    def raw() -> object:
        return json.loads(client.get("raw:AMZN"))  # type: ignore[arg-type]

    assert ours("AMZN") == raw()
    samples = side_by_side(
        {"stratacache @cached(tier=RedisTier) (L2 hit)": lambda: ours("AMZN"),
         "redis-py GET + json.loads": raw},
        rounds,
        calls,
    )  # fmt: skip
    show(
        "L2 hit: the same value from the same server, one client",
        samples,
        "stratacache @cached(tier=RedisTier) (L2 hit)",
        ("redis-py GET + json.loads", 1.05),
    )
    client.close()


def l3_row(endpoint: str, rounds: int, calls: int) -> None:
    import boto3

    from stratacache import DynamoDBTier, cached

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    create_cache_table(client, "bench")
    tier = DynamoDBTier("bench", client=client)

    @cached(tier=tier, ttl=300)
    def ours(symbol: str) -> dict[str, Any]:
        return VALUE

    ours("AMZN")
    # A hand-written DynamoDB cache needs the value and a TTL attribute: without one the
    # table never expires anything. The bare item (the value alone) is shown as well.
    expires = str(int(time.time()) + 300)
    for name, extra in (("raw:AMZN", {"ttl": {"N": expires}}), ("bare:AMZN", {})):
        client.put_item(
            TableName="bench",
            Item={"pk": {"S": name}, "v": {"B": json.dumps(VALUE).encode()}, **extra},
        )

    def get(name: str) -> object:
        item = client.get_item(TableName="bench", Key={"pk": {"S": name}})["Item"]
        return json.loads(item["v"]["B"])

    assert ours("AMZN") == get("raw:AMZN") == get("bare:AMZN")
    samples = side_by_side(
        {"stratacache @cached(tier=DynamoDBTier) (L3 hit)": lambda: ours("AMZN"),
         "boto3 get_item + json.loads (value, ttl)": lambda: get("raw:AMZN"),
         "boto3 get_item + json.loads (value alone)": lambda: get("bare:AMZN")},
        rounds,
        calls,
    )  # fmt: skip
    show(
        "L3 hit: the same value from the same moto endpoint, one boto3 client",
        samples,
        "stratacache @cached(tier=DynamoDBTier) (L3 hit)",
        ("boto3 get_item + json.loads (value, ttl)", 1.05),
    )


_IMPORT_PROBE = """
{prelude}
import sys, time
start = time.thread_time()  # CPU time: steadier than the wall clock on a shared machine
{statement}
elapsed = time.thread_time() - start
heavy = sorted(m for m in ("boto3", "botocore", "redis", "aws_lambda_powertools")
               if m in sys.modules)
print(elapsed * 1000, ",".join(heavy) or "-")
"""

# What the Lambda Python runtime has loaded before it imports a handler, and a
# handler that uses Powertools Metrics (as the example does).
_RUNTIME = "import awslambdaric.bootstrap"
_RUNTIME_AND_POWERTOOLS = _RUNTIME + "; import aws_lambda_powertools.metrics"
# What a handler that uses the tiers by hand has loaded: what stratacache adds after it.
_CLIENTS = _RUNTIME_AND_POWERTOOLS + "; import boto3, redis"
TARGET_IMPORT_MS = 3.0


def import_ms(statement: str, prelude: str, runs: int) -> tuple[float, str]:
    """Median CPU milliseconds of ``statement`` after ``prelude``, and the heavy modules loaded."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    times: list[float] = []
    heavy = ""
    for _ in range(runs + 1):  # the first run writes bytecode caches, as a deployed layer has
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE.format(prelude=prelude, statement=statement)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1]
    return statistics.median(times[1:]), heavy


def import_row(runs: int) -> None:
    print(f"\nImport time (CPU), fresh interpreter each run (median of {runs} runs)")
    cached = "from stratacache import cached_tiered"
    rows = [
        ("import stratacache", "", "bare interpreter"),
        ("import stratacache", _RUNTIME, "after the Lambda runtime client"),
        ("import stratacache", _RUNTIME_AND_POWERTOOLS, "after the runtime client + Powertools"),
        ("import stratacache", _CLIENTS, "after runtime, Powertools, boto3, redis"),
        (cached, _CLIENTS, "after runtime, Powertools, boto3, redis"),
        ("import redis", _RUNTIME, "after the Lambda runtime client"),
        ("import boto3", _RUNTIME, "after the Lambda runtime client"),
    ]
    added = 0.0
    for statement, prelude, where in rows:
        ms, heavy = import_ms(statement, prelude, runs)
        if (statement, prelude) == ("import stratacache", _CLIENTS):
            added = ms
        print(f"  {statement:<38} {where:<40}{ms:7.1f} ms   heavy modules loaded: {heavy}")
    verdict = "met" if added <= TARGET_IMPORT_MS else "NOT met"
    print(
        f"  target: import stratacache adds <= {TARGET_IMPORT_MS:.0f} ms after boto3, redis-py"
        f" and Powertools: {added:.1f} ms, {verdict}"
    )


_HERD_WORKER = """
import sys, time
import redis
from stratacache import MemoryTier, RedisTier, cached_tiered

url, lock, namespace = sys.argv[1], sys.argv[2] == "on", sys.argv[3]
control = redis.Redis.from_url(url)

@cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(url)], lock=lock, namespace=namespace)
def report(day):
    control.incr(namespace + ":origin")
    time.sleep(0.3)
    return {"day": day}

control.incr(namespace + ":ready")
while not control.exists(namespace + ":go"):
    time.sleep(0.002)
report("monday")
"""


def herd_row(url: str, workers: int) -> None:
    """A herd of fresh interpreters on one cold key: origin calls with and without the lock."""
    import redis

    control = redis.Redis.from_url(url)
    print(f"\nHerd: {workers} fresh environments ask for one cold key at once (origin: 300 ms)")
    for lock in ("off", "on"):
        namespace = f"herd-{lock}"
        procs = [
            subprocess.Popen([sys.executable, "-c", _HERD_WORKER, url, lock, namespace])
            for _ in range(workers)
        ]
        while int(control.get(f"{namespace}:ready") or 0) < workers:
            time.sleep(0.01)
        started = time.perf_counter()
        control.set(f"{namespace}:go", 1)
        for proc in procs:
            proc.wait()
        took = time.perf_counter() - started
        origin = int(control.get(f"{namespace}:origin") or 0)
        answered = f"all answered in {took:5.2f} s"
        print(f"  lock={lock:<4} origin calls {origin:3d} of {workers}   {answered}")
    control.close()


def batch_row(url: str, endpoint: str, ids: int) -> None:
    """``@cached_many`` for many ids against a loop of single cached calls, L1 cold, L2 warm."""
    import boto3
    import redis

    from stratacache import DynamoDBTier, MemoryTier, RedisTier, cached_many, cached_tiered

    client = redis.Redis.from_url(url)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    create_cache_table(dynamodb, "bench-batch")
    wanted = list(range(ids))

    def chain() -> list[Any]:
        return [
            MemoryTier(),
            RedisTier(client=client),
            DynamoDBTier("bench-batch", client=dynamodb),
        ]

    def fresh_many() -> Callable[[list[int]], dict[int, int]]:
        @cached_many(ttl=300, tiers=chain(), namespace="bench")
        def squares(item_ids: list[int]) -> dict[int, int]:
            return {i: i * i for i in item_ids}

        return squares

    def fresh_single() -> Callable[[int], int]:
        @cached_tiered(ttl=300, tiers=chain(), namespace="bench")
        def square(item_id: int) -> int:
            return item_id * item_id

        return square

    fresh_many()(wanted)  # warm L2 and L3 for both
    single = fresh_single()
    for i in wanted:
        single(i)

    def commands() -> int:
        stats = client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")

    print(f"\nBatch: {ids} ids, L1 cold (a new environment), all in L2")
    print("  (each new environment also reads the function's generation once: one GET)")
    for label, run in (
        ("@cached_many, one call", lambda: fresh_many()(wanted)),
        (f"@cached_tiered, {ids} calls", lambda: [fresh_single()(i) for i in wanted]),
    ):
        before = commands()
        started = time.perf_counter()
        run()
        took = time.perf_counter() - started
        trips = commands() - before
        print(f"  {label:<30} Redis commands {trips:4d}   {took * 1000:8.1f} ms")
    client.close()


def round_trips_row(url: str, endpoint: str) -> None:
    """Network round trips per operation over L1 + L2 + L3, counted in this process."""
    import boto3

    from devkit.roundtrips import dynamodb_calls, redis_round_trips
    from stratacache import DynamoDBTier, MemoryTier, RedisTier, cached_tiered

    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    create_cache_table(dynamodb, "bench-trips")
    redis_tier = RedisTier(url)
    dynamodb_tier = DynamoDBTier("bench-trips", client=dynamodb)

    def environment(lock: bool = True) -> Any:
        @cached_tiered(ttl=300, tiers=[MemoryTier(), redis_tier, dynamodb_tier], lock=lock,
                       namespace="bench-trips")  # fmt: skip
        def quote(symbol: str) -> dict[str, Any]:
            return VALUE

        return quote

    def count(operation: Callable[[], object]) -> tuple[int, int]:
        calls = dynamodb_calls(dynamodb)
        with redis_round_trips() as trips:
            operation()
        return len(trips), len(calls)

    def nothing() -> None:
        return None

    def evict_l1() -> None:
        warm.cache.tiers[0].clear("")

    def check_due() -> None:
        warm.cache._engine.chain.generation.due = 0.0

    def flush_redis() -> None:
        redis_tier.client.flushall()

    warm = environment()
    rows: list[tuple[str, Callable[[], object], Callable[[], object], str]] = [
        ("full miss, lock on (new key)", nothing, lambda: warm("A"), "5"),
        ("full miss, lock off (new key)", nothing, lambda: environment(lock=False)("B"), ""),
        ("L1 hit", nothing, lambda: warm("A"), "0"),
        ("L1 hit, generation and feed check due", check_due, lambda: warm("A"), ""),
        ("L2 hit, new environment", nothing, lambda: environment()("A"), "2"),
        ("L2 hit, warm environment (L1 evicted)", evict_l1, lambda: warm("A"), "1"),
        (
            "L3 hit after a Redis flush, new environment",
            flush_redis,
            lambda: environment()("A"),
            "",
        ),
        ("invalidate()", nothing, lambda: warm.invalidate("A"), ""),
        ("refresh()", nothing, lambda: warm.refresh("A"), ""),
    ]
    print("\nRound trips per operation (L1 + L2 Redis + L3 DynamoDB), counted in this process")
    print(f"  {'operation':<46}{'Redis':>6}{'DynamoDB':>10}   before (issue 9)")
    for label, setup, operation, before in rows:
        setup()
        redis_trips, dynamodb_trips = count(operation)
        print(f"  {label:<46}{redis_trips:>6}{dynamodb_trips:>10}   {before}")
    redis_tier.close()


def fleet_rows(url: str, endpoint: str, quick: bool) -> None:
    """N environments on one cache, lease on and off (``devkit.fleet``; its chart: --png)."""
    client = fleet.dynamodb_client(endpoint)
    create_cache_table(client, "bench-fleet")
    sizes = fleet.QUICK_ENVIRONMENTS if quick else fleet.FULL_ENVIRONMENTS
    base = fleet.quick_settings() if quick else fleet.Settings(environments=1, lease=True)
    saved = os.environ.get("STRATACACHE_METRICS_DISABLED")
    os.environ["STRATACACHE_METRICS_DISABLED"] = "true"  # no EMF lines amid the table
    try:
        fleet.show(fleet.sweep(sizes, base, url, "bench-fleet", client))
    finally:
        if saved is None:
            del os.environ["STRATACACHE_METRICS_DISABLED"]
        else:
            os.environ["STRATACACHE_METRICS_DISABLED"] = saved


def following_row(url: str, environments: int = 1000) -> None:
    """The Redis load a fleet of busy environments adds by following generation and feed.

    Each busy environment makes one check per ``STRATACACHE_GENERATION_CHECK``, on an
    L1 hit as on any other call, and none while frozen: what one check sends is
    counted here, and multiplied out.
    """
    from devkit.roundtrips import redis_round_trips
    from stratacache import MemoryTier, RedisTier, TieredCache
    from stratacache.config import DEFAULT_GENERATION_CHECK

    tier = RedisTier(url)
    cache = TieredCache([MemoryTier(), tier], namespace="bench-fleet")
    cache.set("k", "v")
    cache.get("k")  # its place in the feed taken
    with redis_round_trips() as trips:
        cache._engine.chain.check_generation()
    commands = sum(len(trip) for trip in trips)
    print(f"\nFollowing invalidations: {environments} busy environments, each one check per")
    print(f"  interval of {len(trips)} round trip ({' + '.join(trips[0])}); frozen ones send none")
    for interval in sorted({1.0, 2.0, DEFAULT_GENERATION_CHECK, 10.0}):
        rate = environments * commands / interval
        default = "  (default)" if interval == DEFAULT_GENERATION_CHECK else ""
        print(
            f"  STRATACACHE_GENERATION_CHECK={interval:<5g}{rate:8.0f} commands/s"
            f"{environments * len(trips) / interval:8.0f} round trips/s{default}"
        )
    cache.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations: checks it runs")
    quick = parser.parse_args(argv).quick
    scale = 1 if quick else 20
    print(f"stratacache benchmarks: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("median per-call cost; the cases of each table take turns in every round")
    l1_row(rounds=3 if quick else 21, calls=200 * scale * 10)
    warm_batch_row(rounds=3 if quick else 21, ids=1000)
    # Both servers run as processes of their own, as Redis and DynamoDB would: a server
    # thread in this process would share its interpreter and its heap with what is measured.
    with RedisServer() as redis_server, MotoProcess() as moto:
        os.environ.update(fake_aws_environment())
        l2_row(redis_server.url, rounds=3 if quick else 41, calls=20 * scale)
        l3_row(moto.endpoint, rounds=3 if quick else 21, calls=5 * scale // 2 or 5)
        round_trips_row(redis_server.url, moto.endpoint)
        following_row(redis_server.url)
        batch_row(redis_server.url, moto.endpoint, ids=20 if quick else 100)
        herd_row(redis_server.url, workers=4 if quick else 16)
        fleet_rows(redis_server.url, moto.endpoint, quick)
        coldstart.show(
            coldstart.run(
                rounds=1 if quick else 15,
                warm=3 if quick else 9,
                redis_url=redis_server.url,
                endpoint=moto.endpoint,
            )
        )
    import_row(runs=2 if quick else 7)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
