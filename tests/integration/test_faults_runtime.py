"""The runtime around a cached call: fork() mid-computation, an event loop that ends during a
lease write, and threads that share a hung Redis.

Every test here starts its own Redis server, because it pauses it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import redis
from devkit.faults import Proxy, paused
from devkit.roundtrips import redis_round_trips
from devkit.servers import RedisServer

from stratacache import CircuitBreaker, TieredCache, cached_tiered
from stratacache.freshness import Freshness
from stratacache.tiers import MemoryTier, RedisTier
from tests.support import FakeClock

pytestmark = pytest.mark.slow

HANG_GUARD = 30.0
"""Seconds after which a test gives up on something that should have ended long before."""


# ---------------------------------------------------------------- fork()


def exit_code(pid: int) -> int:
    """The forked child's exit code; a child still running after :data:`HANG_GUARD` fails."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung: still running after {HANG_GUARD} s")


def test_a_child_forked_during_a_computation_computes_the_key_itself(
    own_redis_server: RedisServer,
) -> None:
    parent = os.getpid()
    computing, finish = threading.Event(), threading.Event()
    computed_in: list[int] = []

    # lock=False: a lease the parent holds in Redis would rightly make the child wait up to
    # lock_wait; what is under test is the in-process state the child inherits.
    @cached_tiered(
        tiers=[MemoryTier(), RedisTier(own_redis_server.url)], ttl=60, namespace="fork", lock=False
    )
    def report(day: str) -> str:
        computed_in.append(os.getpid())
        if os.getpid() == parent:
            computing.set()
            finish.wait(HANG_GUARD)
        return f"report of {day}"

    worker = threading.Thread(target=report, args=("monday",))
    worker.start()
    try:
        assert computing.wait(HANG_GUARD)
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a process with threads: that is the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: the flight of "monday" came along, its thread did not
            code = 2
            try:
                right = report("monday") == "report of monday"
                code = 0 if right and computed_in[-1] == os.getpid() else 1
            finally:
                os._exit(code)
        assert exit_code(pid) == 0  # 1: a wrong value, 2: an exception
    finally:
        finish.set()
        worker.join()
    assert computed_in == [parent]  # the parent's computation was left alone


# ---------------------------------------------------------------- an event loop that ends


def test_an_event_loop_that_ends_during_the_lease_write_gives_the_lease_back(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Proxy(own_redis_server.port) as proxy:
        tier = RedisTier(proxy.url, socket_timeout=HANG_GUARD)  # the lease write is slow, not lost
        calls: list[str] = []

        @cached_tiered(tiers=[tier], ttl=60, namespace="cancelled")
        async def quote(symbol: str) -> str:
            calls.append(symbol)
            return f"{symbol} 42"

        swap = tier.swap
        leases: list[bool] = []

        def slow_lease(key: str, blob: bytes, keep: Any, expect: Any) -> Any:
            proxy.hold_next()  # the lease write goes out and waits in the proxy
            done, current = swap(key, blob, keep, expect)
            leases.append(done)
            return done, current

        monkeypatch.setattr(tier, "swap", slow_lease)

        async def invocation() -> None:
            # Timers fire in deadline order: the write reaches Redis only after wait_for
            # gave up, and the event loop is ending. Meanwhile other connections flow, so
            # a lease given back without waiting for its write would be given back too early.
            asyncio.get_running_loop().call_later(1.0, proxy.release)
            await asyncio.wait_for(quote("AMZN"), 0.5)

        with pytest.raises(TimeoutError):
            asyncio.run(invocation())
        assert proxy.held == 1
        assert leases == [True]  # the lease did land in Redis
        assert calls == []  # before the function ran
        full_key = quote.cache.full_key(quote.cache_key("AMZN"))
        assert (
            redis.Redis.from_url(own_redis_server.url).get(full_key) is None
        )  # and was given back

        monkeypatch.setattr(tier, "swap", swap)
        with redis_round_trips() as trips:
            assert asyncio.run(quote("AMZN")) == "AMZN 42"
        assert calls == ["AMZN"]
        # The read, the lease, the value's write: no poll of a leftover lease.
        assert len(trips) == 3, trips


# ---------------------------------------------------------------- one timeout per call


class Operations:
    """Per thread, every operation a tier was asked for and how it ended.

    ``ops[thread name]`` is a list of ``(operation, "ok" | "timeout" | "error")``.
    """

    NAMES = (
        "get", "get_many", "get_with_counter", "read_counter", "get_with_feed",
        "read_with_feed", "publish", "set", "set_many", "swap", "swap_many", "delete",
        "delete_many", "delete_if",
    )  # fmt: skip

    def __init__(self, tier: RedisTier, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ops: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name in self.NAMES:
            monkeypatch.setattr(tier, name, self._recording(name, getattr(tier, name)))

    def _recording(self, name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            log = self.ops[threading.current_thread().name]
            try:
                result = operation(*args, **kwargs)
            except redis.TimeoutError:
                log.append((name, "timeout"))
                raise
            except Exception:
                log.append((name, "error"))
                raise
            log.append((name, "ok"))
            return result

        return recorded

    def outcomes(self, thread: str) -> list[str]:
        return [outcome for _, outcome in self.ops[thread]]


def test_each_call_waits_for_one_timeout_while_another_thread_resets_the_breaker(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A breaker that never opens here: the bound must hold without it.
    breaker = CircuitBreaker(threshold=100, cooldown=60)
    tier = RedisTier(own_redis_server.url, socket_timeout=0.3, connect_timeout=0.3, breaker=breaker)
    callers = 4
    computing = threading.Barrier(callers + 1, timeout=HANG_GUARD)
    resume = threading.Event()

    @cached_tiered(tiers=[tier], ttl=60, namespace="per-call")
    def square(n: int) -> int:
        if n:  # the callers of a cold key wait, mid-call, until told to finish
            computing.wait()
            resume.wait(HANG_GUARD)
        return n * n

    assert square(0) == 0  # cached while Redis is healthy
    operations = Operations(tier, monkeypatch)
    results: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.update({n: square(n)}), name=f"caller-{n}")
        for n in range(1, callers + 1)
    ]
    with paused(own_redis_server):
        for thread in threads:
            thread.start()
        computing.wait()  # every caller's read timed out; they are computing
    assert breaker.failures == callers

    assert square(0) == 0  # another thread's read succeeds meanwhile...
    assert operations.outcomes("MainThread") == ["ok"]
    assert breaker.failures == 0  # ...and resets the breaker, which now lets writes through

    with paused(own_redis_server):  # a write sent now would time out too
        resume.set()
        for thread in threads:
            thread.join(HANG_GUARD)
    assert results == {n: n * n for n in range(1, callers + 1)}
    for thread in threads:
        assert operations.outcomes(thread.name) == ["timeout"], operations.ops[thread.name]
    assert breaker.failures == 0  # nothing else was sent
    # Each caller's timed-out read, and its write, skipped without waiting, are CacheErrors.
    assert square.cache.stats()["L2"]["errors"] == 2 * callers


def test_a_stale_refresh_waits_for_one_timeout_when_writes_hang(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    # No breaker: the bound holds without one.
    tier = RedisTier(own_redis_server.url, socket_timeout=0.3, connect_timeout=0.3, breaker=False)
    cache = TieredCache(
        [tier], ttl=60, namespace="refresh", freshness=Freshness(grace=600), clock=clock
    )
    assert cache.get_or_compute("rate", lambda: "old") == "old"
    clock.advance(61)  # stale, within its grace: served while one caller refreshes it
    operations = Operations(tier, monkeypatch)
    admin = redis.Redis.from_url(own_redis_server.url)
    admin.client_pause(int(HANG_GUARD * 1000), all=False)  # reads answer, writes hang
    try:
        assert cache.get_or_compute("rate", lambda: "new") == "new"
    finally:
        admin.client_unpause()
    # The read of the stale entry, then the refresh lease's write timed out; its release
    # (a write to the same sick tier) and the value's write are skipped.
    assert operations.ops["MainThread"] == [("get_with_feed", "ok"), ("swap", "timeout")]


def test_a_batch_read_waits_for_one_timeout_with_its_generation_check(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = RedisTier(own_redis_server.url, socket_timeout=0.3, connect_timeout=0.3, breaker=False)
    cache = TieredCache([tier], ttl=60, namespace="batch")
    operations = Operations(tier, monkeypatch)
    with paused(own_redis_server):
        assert cache.get_many(["a", "b"]) == {}  # its first call reads the generation too
    assert operations.ops["MainThread"] == [("read_with_feed", "timeout")]
