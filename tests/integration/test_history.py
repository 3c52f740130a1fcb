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
    import json, random, sys, threading, time, traceback
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

    history, guard, errors = [], threading.Lock(), []

    def record_error(args):
        # An exception in a worker would otherwise be printed and lost: exit 0.
        errors.append("".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                         args.exc_traceback)))

    threading.excepthook = record_error

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
    if errors:
        sys.exit(f"{len(errors)} worker(s) failed:\\n" + "\\n".join(errors))
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


def start_environments(
    source: str,
    tmp_path: Path,
    redis_url: str,
    endpoint: str,
    table: str,
    ops: int,
    lock: str,
    origin_url: str | None = None,
    every: bool = False,
) -> list[subprocess.Popen[str]]:
    """Three environments running ``source``, three worker threads each.

    ``origin_url``: the Redis that keeps the origin's versions (default: the cache's);
    ``every``: no L1, a generation check on every read, and invalidate_all() too.
    """
    script = tmp_path / "environment.py"
    script.write_text(source)
    env = {
        **os.environ,
        **fake_aws_environment(endpoint),
        "PYTHONPATH": str(ROOT / "python"),
        "STRATACACHE_GENERATION_CHECK": "0.000001" if every else "5",
    }
    extra = [origin_url or redis_url, "on" if every else "off"]
    return [
        subprocess.Popen(
            [sys.executable, str(script), redis_url, table, str(seed), "3", str(ops), lock, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in range(3)
    ]


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
    environments = start_environments(
        ENVIRONMENT, tmp_path, redis_server.url, moto_server.endpoint, table, 100, lock
    )
    histories = []
    for process in environments:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        histories.append(json.loads(out))
    reads = sum(1 for history in histories for op in history if op[0] == "read")
    promises = sum(1 for h in histories for op in h if op[0] in ("invalidate", "refresh"))
    assert reads > 250
    assert promises > 30
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
        environments = start_environments(
            ENVIRONMENT, tmp_path, cache.url, moto_server.endpoint, table, 100, lock,
            origin_url=redis_server.url, every=True,
        )  # fmt: skip
        histories = []
        for process in environments:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            histories.append(json.loads(out))
    finally:
        stop.set()
        disturber.join(30)
    assert flushes > 0
    assert int(client.info("stats")["evicted_keys"]) > 0
    assert violations([op for history in histories for op in history]) == []


def test_a_failure_in_a_worker_thread_fails_its_environment(
    tmp_path: Path, redis_server: RedisServer, moto_server: MotoServer, dynamodb_client: Any
) -> None:
    """The control: the refresh check made to fail in every worker reaches the test."""
    broken = ENVIRONMENT.replace("assert got >= seen", "assert got < 0")
    assert broken != ENVIRONMENT
    create_cache_table(dynamodb_client, "history-broken")
    environments = start_environments(
        broken, tmp_path, redis_server.url, moto_server.endpoint, "history-broken", 40, "off"
    )
    for process in environments:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 1, err
        assert "3 worker(s) failed" in err
        assert err.count("AssertionError") == 3


def test_the_checker_catches_a_stale_read() -> None:
    """The control: a history with a read older than a finished invalidate is refused."""
    history = [
        ["invalidate", "a", 1.0, 2.0, 5],
        ["read", "a", 2.5, 2.6, 4],  # began after v5's invalidate ended, got v4
        ["read", "a", 1.5, 3.0, 4],  # began before it ended: v4 is allowed
        ["read", "b", 2.5, 2.6, 0],
    ]
    assert violations(history) == ["read of a began at 2.500000 got v4, after v5"]
