"""A randomized history checker: invalidate() and refresh() hold under concurrency.

Several processes (execution environments), each with several threads, share one real
Valkey and one moto DynamoDB. Each thread, from a fixed seed, reads cached keys, bumps
a key's version at the origin and then invalidates or refreshes it, or bumps it without
telling the cache. Every operation is recorded with when it began and ended on its
environment's clock. The checker then asserts the guarantee the README states: no read
returns a version older than the newest invalidate() or refresh() of that key that
completed, in the same environment, before the read began.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devkit.servers import MotoServer, RedisServer, create_cache_table, fake_aws_environment

ROOT = Path(__file__).resolve().parents[2]

ENVIRONMENT = textwrap.dedent(
    """
    import json, random, sys, threading, time
    import redis
    from stratacache import DynamoDBTier, MemoryTier, RedisTier, cached_tiered

    url, table, seed, threads, ops, lock, origin_url, every = sys.argv[1:9]
    memory = [MemoryTier()] if every == "off" else []  # no L1: every read is a shared one
    origin = redis.Redis.from_url(origin_url)
    KEYS = ["a", "b", "c"]

    @cached_tiered(ttl=60, namespace="history", lock=lock == "on",
                   tiers=[*memory, RedisTier(url), DynamoDBTier(table)])
    def value(key):
        seen = int(origin.get("origin:" + key) or 0)
        time.sleep(random.random() / 500)  # widen the window a fill is in flight
        return seen

    history, guard = [], threading.Lock()

    def worker(number):
        rng = random.Random(f"{seed}-{number}")
        for _ in range(int(ops)):
            key, roll = rng.choice(KEYS), rng.random()
            began = time.monotonic()
            if roll < 0.7:
                kind, seen = "read", value(key)
            elif roll < 0.78:
                kind, seen = "invalidate", origin.incr("origin:" + key)
                value.invalidate(key)
            elif roll < 0.82 and every == "on":  # invalidate_all(): a promise for every key
                versions = [(k, origin.incr("origin:" + k)) for k in KEYS]
                value.invalidate_all()
                with guard:
                    history.extend(
                        ["invalidate", k, began, time.monotonic(), v] for k, v in versions
                    )
                continue
            elif roll < 0.9:
                kind, seen = "refresh", origin.incr("origin:" + key)
                got = value.refresh(key)
                assert got >= seen, (got, seen)
            else:
                kind, seen = "write", origin.incr("origin:" + key)
            with guard:
                history.append([kind, key, began, time.monotonic(), seen])

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(int(threads))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps(history))
    """
)


def violations(history: list[list[Any]]) -> list[str]:
    """Reads older than an invalidate or refresh of their key that ended before they began."""
    found: list[str] = []
    promised: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for kind, key, _, ended, seen in history:
        if kind in ("invalidate", "refresh"):
            promised[key].append((ended, seen))
    for kind, key, began, _, seen in history:
        if kind != "read":
            continue
        floor = max((version for ended, version in promised[key] if ended < began), default=0)
        if seen < floor:
            found.append(f"read of {key} began at {began:.6f} got v{seen}, after v{floor}")
    return found


@pytest.mark.parametrize("lock", ["on", "off"])
def test_no_read_is_older_than_an_invalidate_or_refresh_that_came_before_it(
    tmp_path: Path,
    redis_server: RedisServer,
    moto_server: MotoServer,
    dynamodb_client: Any,
    lock: str,
) -> None:
    table = f"history-{lock}"
    create_cache_table(dynamodb_client, table)
    histories = run_histories(tmp_path, redis_server, redis_server, moto_server, table, lock)
    for history in histories:
        assert violations(history) == []


@pytest.mark.parametrize("lock", ["on", "off"])
def test_the_bound_holds_through_flushes_and_evictions_with_invalidate_all(
    tmp_path: Path,
    redis_server: RedisServer,
    own_redis: Callable[..., RedisServer],
    moto_server: MotoServer,
    dynamodb_client: Any,
    lock: str,
) -> None:
    """The same history, with invalidate_all() too, on a small allkeys-lru Valkey that a
    disturber flushes and fills (evicting entries, tombstones and the generation).

    The environments keep no L1 and check the generation on every read, so the bound
    is the shared tiers' own: checked across environments, on one history.
    """
    import redis

    cache = own_redis("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru")
    table = f"history-disturbed-{lock}"
    create_cache_table(dynamodb_client, table)
    client = redis.Redis.from_url(cache.url)
    stop = threading.Event()
    flushes = 0

    def disturb() -> None:
        nonlocal flushes
        rng = random.Random(7)
        while not stop.wait(0.05):
            if rng.random() < 0.2:
                client.flushall()
                flushes += 1
            else:
                for i in range(60):
                    client.set(f"filler:{rng.random()}:{i}", b"x" * 10_000)

    disturber = threading.Thread(target=disturb)
    disturber.start()
    try:
        histories = run_histories(tmp_path, cache, redis_server, moto_server, table, lock, True)
    finally:
        stop.set()
        disturber.join(30)
    assert flushes > 0
    assert int(client.info("stats")["evicted_keys"]) > 0
    assert violations([op for history in histories for op in history]) == []


def run_histories(
    tmp_path: Path,
    cache: RedisServer,
    origin: RedisServer,
    moto_server: MotoServer,
    table: str,
    lock: str,
    every: bool = False,
) -> list[list[list[Any]]]:
    """Three environments' histories (processes of three threads, 100 operations each)."""
    script = tmp_path / "environment.py"
    script.write_text(ENVIRONMENT)
    env = {
        **os.environ,
        **fake_aws_environment(moto_server.endpoint),
        "PYTHONPATH": str(ROOT / "python"),
        "STRATACACHE_GENERATION_CHECK": "0.000001" if every else "5",
    }
    extra = [origin.url, "on" if every else "off"]
    environments = [
        subprocess.Popen(
            [sys.executable, str(script), cache.url, table, str(seed), "3", "100", lock, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in range(3)
    ]
    histories = []
    for process in environments:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        histories.append(json.loads(out))
    reads = sum(1 for history in histories for op in history if op[0] == "read")
    promises = sum(1 for h in histories for op in h if op[0] in ("invalidate", "refresh"))
    assert reads > 250
    assert promises > 30
    return histories


def test_the_checker_catches_a_stale_read() -> None:
    """The control: a history with a read older than a finished invalidate is refused."""
    history = [
        ["invalidate", "a", 1.0, 2.0, 5],
        ["read", "a", 2.5, 2.6, 4],  # began after v5's invalidate ended, got v4
        ["read", "a", 1.5, 3.0, 4],  # began before it ended: v4 is allowed
        ["read", "b", 2.5, 2.6, 0],
    ]
    assert violations(history) == ["read of a began at 2.500000 got v4, after v5"]
