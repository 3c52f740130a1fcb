"""Stampede protection: one computation per cold key, in a process and across processes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from devkit.servers import RedisServer

from stratacache import DynamoDBTier, MemoryTier, RedisTier, TieredCache, cached, cached_tiered
from stratacache._engine.lease import HELD, WAIT
from stratacache.keys import lock_key
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS
from tests.support import FakeClock, FakeTime, Gate, GatedRedis, all_waiting, entry_keys, wait_until

ROOT = Path(__file__).resolve().parents[2]

# A worker is a fresh interpreter with a fresh L1, like a separate Lambda environment.
# It announces itself, waits for the starting gun, then asks for the same cold key.
WORKER = """
import json, sys, time
import redis
from stratacache import MemoryTier, RedisTier, cached_tiered

url, lock, lease, work = sys.argv[1], sys.argv[2] == "on", float(sys.argv[3]), float(sys.argv[4])
mode, wait = sys.argv[5], float(sys.argv[6])
control = redis.Redis.from_url(url)

def origin(day):
    control.incr("origin-calls")
    control.set("computing", 1)
    time.sleep(work)
    return {"day": day, "rows": 42}

options = dict(ttl=300, tiers=[MemoryTier(), RedisTier(url)], lock=lock, lock_lease=lease,
               lock_wait=wait, namespace="herd")
if mode == "async":
    import asyncio

    @cached_tiered(**options)
    async def report(day):
        return await asyncio.to_thread(origin, day)

    ask = lambda day: asyncio.run(report(day))
else:
    report = cached_tiered(**options)(origin)
    ask = report

control.incr("ready")
while not control.exists("go"):
    time.sleep(0.005)
print(json.dumps(ask("monday")))
"""


def start_workers(
    tmp_path: Path,
    url: str,
    count: int,
    lock: bool,
    lease: float = 10,
    work: float = 0.5,
    mode: str = "sync",
    lock_wait: float = 20,
) -> list[subprocess.Popen[str]]:
    script = tmp_path / "herd_worker.py"
    flag = "on" if lock else "off"
    script.write_text(textwrap.dedent(WORKER))
    return [
        subprocess.Popen(
            [sys.executable, str(script), url, flag, str(lease), str(work), mode, str(lock_wait)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize(("mode", "count"), [("sync", 32), ("async", 16)])
def test_a_herd_of_environments_computes_a_cold_key_once(
    tmp_path: Path, redis_server: RedisServer, redis_client: Any, mode: str, count: int
) -> None:
    workers = start_workers(tmp_path, redis_server.url, count, lock=True, mode=mode)
    wait_until(lambda: int(redis_client.get("ready") or 0) == count)
    redis_client.set("go", 1)
    outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * count
    assert int(redis_client.get("origin-calls")) == 1
    assert set(outputs) == {'{"day": "monday", "rows": 42}'}


def test_without_the_lock_the_herd_reaches_the_origin_many_times(
    tmp_path: Path, redis_server: RedisServer, redis_client: Any
) -> None:
    """The control: the same herd with lock=False is what the lock prevents."""
    workers = start_workers(tmp_path, redis_server.url, 8, lock=False)
    wait_until(lambda: int(redis_client.get("ready") or 0) == 8)
    redis_client.set("go", 1)
    for worker in workers:
        worker.communicate(timeout=60)
    assert int(redis_client.get("origin-calls")) > 1


def test_a_holder_killed_mid_computation_blocks_others_only_for_the_lease(
    tmp_path: Path, redis_server: RedisServer, redis_client: Any
) -> None:
    (holder,) = start_workers(tmp_path, redis_server.url, 1, lock=True, lease=1.5, work=60)
    wait_until(lambda: redis_client.exists("ready"))
    redis_client.set("go", 1)
    wait_until(lambda: redis_client.exists("computing"))  # it holds the lease and hangs
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    (survivor,) = start_workers(
        tmp_path, redis_server.url, 1, lock=True, lease=1.5, work=0, lock_wait=600
    )
    output = survivor.communicate(timeout=60)[0]
    assert output.strip() == '{"day": "monday", "rows": 42}'
    assert int(redis_client.get("origin-calls")) == 2
    # Its lock_wait is 600 s: answering within the 60 s above means it took the dead
    # holder's lease over when the lease ran out, instead of waiting the wait out.


def test_the_lease_lives_in_redis_and_is_released_by_its_holder(redis_client: Any) -> None:
    cache = TieredCache([RedisTier(client=redis_client)], namespace="lease", lock_lease=5)
    lease = cache._engine.lease
    a, b = cache._engine.chain.begin(), cache._engine.chain.begin()
    guard = lease.guard(a)
    assert guard is not None
    key = lock_key(cache.full_key("k"))  # a refresh lease: the same lease, next to the entry
    assert lease.acquire(guard, key, a, b"token-a!") == HELD
    assert lease.acquire(guard, key, b, b"token-b!") == WAIT
    assert 4000 < redis_client.pttl(key) <= 5000
    lease.give_up(guard, key, b, b"token-b!")  # not the holder
    assert redis_client.exists(key) == 1
    lease.give_up(guard, key, a, b"token-a!")
    assert redis_client.exists(key) == 0


def hold_the_lease(cache: TieredCache, key: str, fail: bool = False) -> tuple[Any, Any]:
    """Start ``cache.get_or_compute(key)`` in a thread whose computation waits to be released.

    ``key`` is the user's key; the lease is taken on ``cache.full_key(key)``.
    """
    computing, release = threading.Event(), threading.Event()

    def compute() -> str:
        computing.set()
        assert release.wait(60)
        if fail:
            raise ValueError("origin down")
        return "holder's"

    def call() -> None:
        with contextlib.suppress(ValueError):
            cache.get_or_compute(key, compute)

    thread = threading.Thread(target=call)
    thread.start()
    assert computing.wait(30)
    return thread, release


def test_the_stampede_lease_lives_on_the_entrys_own_key_in_redis_until_the_value_replaces_it(
    redis_client: Any,
) -> None:
    cache = TieredCache(
        [MemoryTier(), RedisTier(client=redis_client)], namespace="lease", lock=True, lock_lease=7
    )
    key = cache.full_key("k")
    thread, release = hold_the_lease(cache, "k")
    try:
        lease = redis_client.get(key)
        assert lease is not None
        assert 6000 < redis_client.pttl(key) <= 7000  # lock_lease
        assert entry_keys(redis_client) == [key.encode()]  # no lock key of its own
    finally:
        release.set()
        thread.join(60)
    assert redis_client.get(key) != lease
    other = TieredCache([RedisTier(client=redis_client)], namespace="lease")
    assert other.get("k") == "holder's"  # the value replaced the lease


def test_a_holder_whose_computation_fails_gives_the_stampede_lease_back(
    redis_client: Any,
) -> None:
    cache = TieredCache(
        [MemoryTier(), RedisTier(client=redis_client)], namespace="lease", lock=True
    )
    key = cache.full_key("k")
    thread, release = hold_the_lease(cache, "k", fail=True)
    assert redis_client.exists(key)
    release.set()
    thread.join(60)
    assert not redis_client.exists(key)
    clock = FakeTime()
    next_caller = TieredCache(
        [MemoryTier(), RedisTier(client=redis_client)],
        namespace="lease",
        lock=True,
        monotonic=clock,
        sleep=clock.sleep,
    )
    assert next_caller.get_or_compute("k", lambda: "next") == "next"
    assert clock.slept == 0  # no lease left to wait for


def test_the_dynamodb_stampede_lease_is_taken_over_only_after_it_runs_out(
    dynamodb_client: Any, table_name: str
) -> None:
    wall = FakeClock()

    def environment(clock: FakeClock, waits: FakeTime | None = None) -> TieredCache:
        tier = DynamoDBTier(table_name, client=dynamodb_client, clock=clock)
        extra: dict[str, Any] = {} if waits is None else {"monotonic": waits, "sleep": waits.sleep}
        return TieredCache(
            [MemoryTier(), tier], namespace="lease", lock=True, lock_lease=10, clock=clock, **extra
        )

    holder = environment(wall)
    key = holder.full_key("k")
    thread, release = hold_the_lease(holder, "k")
    try:
        lease = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}})["Item"]
        assert int(lease["ttl"]["N"]) == math.ceil(wall.now + 10)  # kept for lock_lease
        within, waited = FakeClock(wall.now + 9), FakeTime()
        assert environment(within, waited).get_or_compute("k", lambda: "within") == "within"
        assert waited.slept >= 5  # the lease was live: it waited lock_wait out first
        # Put the live lease back (the waiter wrote its value), then come after it ran out.
        dynamodb_client.put_item(TableName=table_name, Item=lease)
        after, taken = FakeClock(wall.now + 11), FakeTime()
        assert environment(after, taken).get_or_compute("k", lambda: "after") == "after"
        assert taken.slept == 0  # taken over at once
    finally:
        release.set()
        thread.join(60)


def test_the_dynamodb_refresh_lease_is_taken_over_only_after_it_runs_out(
    dynamodb_client: Any, table_name: str
) -> None:
    now = [1000.0]
    tier = DynamoDBTier(table_name, client=dynamodb_client, clock=lambda: now[0])
    cache = TieredCache([tier], namespace="lease", lock_lease=5, clock=lambda: now[0])
    lease = cache._engine.lease
    a, b = cache._engine.chain.begin(), cache._engine.chain.begin()
    guard = lease.guard(a)
    assert guard is not None
    key = lock_key(cache.full_key("k"))
    assert lease.acquire(guard, key, a, b"token-a!") == HELD
    assert lease.acquire(guard, key, b, b"token-b!") == WAIT
    assert isinstance(tier.get(key), bytes)  # a lease record, never a value:
    assert cache.get("k") is None
    now[0] += 6
    assert lease.acquire(guard, key, b, b"token-b!") == HELD
    lease.give_up(guard, key, a, b"token-a!")  # no longer the holder: nothing happens
    assert tier.get(key) is not MISS
    lease.give_up(guard, key, b, b"token-b!")
    assert tier.get(key) is MISS


def test_two_environments_on_dynamodb_alone_compute_once(
    dynamodb_client: Any, table_name: str
) -> None:
    """No Redis: the DynamoDB conditional write elects the one computer."""
    calls: list[int] = []
    started = threading.Barrier(2)

    def environment() -> TieredCache:
        return TieredCache(
            [MemoryTier(), DynamoDBTier(table_name, client=dynamodb_client)],
            namespace="ddb-herd",
            recorder=MetricsRecorder(),
        )

    def slow() -> str:
        calls.append(1)
        time.sleep(0.5)
        return "value"

    results: list[object] = []

    def call(cache: TieredCache) -> None:
        started.wait()
        results.append(cache.get_or_compute("k", slow, (), {}))

    threads = [threading.Thread(target=call, args=(environment(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["value", "value"]
    assert len(calls) == 1


def test_fifty_threads_share_one_computation() -> None:
    calls: list[int] = []
    gate = threading.Event()

    @cached(ttl=60, namespace="t")
    def load(key: str) -> str:
        calls.append(1)
        gate.wait(60)
        return key.upper()

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(load("x"))) for _ in range(50)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(calls) == 1)
    wait_until(lambda: all_waiting(threads))  # the other 49 wait behind the first
    gate.set()
    for thread in threads:
        thread.join()
    assert results == ["X"] * 50
    assert len(calls) == 1


def test_fifty_tasks_share_one_computation() -> None:
    calls: list[int] = []

    @cached(ttl=60, namespace="t")
    async def load(key: str) -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return key.upper()

    async def herd() -> list[str]:
        return await asyncio.gather(*(load("x") for _ in range(50)))

    assert asyncio.run(herd()) == ["X"] * 50
    assert len(calls) == 1


def test_an_error_reaches_every_waiter_and_is_not_cached() -> None:
    calls: list[int] = []
    gate = threading.Event()

    @cached(ttl=60, namespace="t")
    def load() -> str:
        calls.append(1)
        gate.wait(60)
        raise ValueError("origin down")

    errors: list[str] = []

    def call() -> None:
        try:
            load()
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(calls) == 1)
    wait_until(lambda: all_waiting(threads))  # the other 4 wait behind the first
    gate.set()
    for thread in threads:
        thread.join()
    assert errors == ["origin down"] * 5
    assert len(calls) == 1
    with pytest.raises(ValueError, match="origin down"):
        load()
    assert len(calls) == 2


def test_the_lock_is_on_by_default_with_a_shared_tier_and_can_be_turned_off(
    remote_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @cached_tiered(namespace="t")
    def with_lock() -> int:
        return 1

    @cached_tiered(lock=False, namespace="t")
    def without() -> int:
        return 1

    @cached_tiered(tiers=[MemoryTier()], namespace="t")
    def memory_only() -> int:
        return 1

    assert with_lock.cache._engine.lease.enabled is True
    assert without.cache._engine.lease.enabled is False
    assert memory_only.cache._engine.lease.enabled is False
    monkeypatch.setenv("STRATACACHE_LOCK", "0")

    @cached_tiered(namespace="t")
    def from_env() -> int:
        return 1

    assert from_env.cache._engine.lease.enabled is False


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_value_that_lands_between_the_read_and_the_lease_is_served_not_recomputed(
    redis_client: Any, mode: str
) -> None:
    calls: list[str] = []

    def origin() -> str:
        calls.append("computed")
        return "v1"

    async def coroutine() -> str:
        return origin()

    gate = Gate()
    gated = GatedRedis(client=redis_client)
    gated.gate = gate
    late = TieredCache([MemoryTier(), gated], namespace="recheck", recorder=MetricsRecorder())
    early = TieredCache([MemoryTier(), RedisTier(client=redis_client)], namespace="recheck")
    key = "k"

    def ask() -> Any:
        if mode == "sync":
            return late.get_or_compute(key, origin)
        return asyncio.run(late.aget_or_compute(key, coroutine))

    gate.armed = True
    waiting = threading.Thread(target=lambda: results.append(ask()))
    results: list[Any] = []
    waiting.start()
    assert gate.stopped.wait(30)  # it has missed in L2 and not yet asked for the lease
    assert early.get_or_compute(key, origin) == "v1"  # another environment fills it
    gate.go.set()
    waiting.join(30)
    assert results == ["v1"]
    assert calls == ["computed"]  # the lease attempt found the value: no second computation
    assert late.stats()["L2"] == {"hits": 1, "misses": 1, "errors": 0}
