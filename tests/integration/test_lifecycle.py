"""SnapStart hooks and warm starts against a real Redis server and moto.

The hooks are called in-process as the runtime calls them (the ``snapstart``
fixture's stand-in for ``snapshot_restore_py``). Connections are counted at
the Redis server: the tiers' connections carry a client name (``CLIENT LIST``),
and ``total_connections_received`` counts every connection it ever accepted.
Warm starts run in fresh interpreters, which report what the first request
imported and which sockets it connected (an audit hook on ``socket.connect``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devkit.roundtrips import redis_round_trips
from devkit.servers import MotoServer, RedisServer, free_port

from stratacache import (
    DynamoDBTier,
    MemoryTier,
    RedisTier,
    cached,
    cached_tiered,
    metrics,
    warm,
)
from stratacache.tiers import Tier, shared_tier
from tests.support import FakeClock, FakeSnapshotRuntime, KeepAliveProxy, wait_until

NAME = "stratacache-lifecycle"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app" / "handler.py"


@pytest.fixture
def env(
    remote_env: dict[str, str], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """``remote_env`` whose Redis connections carry a name the server lists them by."""
    url = f"{redis_server.url}?client_name={NAME}"
    monkeypatch.setenv("STRATACACHE_REDIS_URL", url)
    return {**remote_env, "STRATACACHE_REDIS_URL": url}


@pytest.fixture
def proxy(
    env: dict[str, str], moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KeepAliveProxy]:
    """DynamoDB (moto) behind a proxy that keeps connections open and counts them."""
    with KeepAliveProxy(moto_server.endpoint) as front:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", front.endpoint)
        env["AWS_ENDPOINT_URL_DYNAMODB"] = front.endpoint
        yield front


def named(redis_client: Any) -> list[int]:
    """Ids of the server's connections that the tiers opened."""
    return [int(c["id"]) for c in redis_client.client_list() if c["name"] == NAME]


def accepted(redis_client: Any) -> int:
    """How many connections the server has accepted since it started."""
    return int(redis_client.info("stats")["total_connections_received"])


def gone(redis_client: Any, ids: list[int]) -> bool:
    """Whether the server stops listing ``ids`` (it learns of a close when it reads it)."""
    wait_until(lambda: not set(ids) & set(named(redis_client)))
    return True


def test_a_restored_copy_shares_no_connection_has_no_l1_and_reads_l2(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], proxy: KeepAliveProxy, redis_client: Any
) -> None:
    wall = FakeClock(time.time())
    calls: list[str] = []
    redis, dynamodb = shared_tier("redis"), shared_tier("dynamodb")

    @cached_tiered(ttl=300, tiers=[MemoryTier(timer=wall), redis, dynamodb])
    def quote(symbol: str) -> dict[str, str]:
        calls.append(symbol)
        return {"symbol": symbol}

    quote("AMZN")  # computed during initialisation, kept in L1, L2 and L3
    before = named(redis_client)
    assert (len(before), proxy.accepted) == (1, 1)
    old_redis, old_dynamodb = redis.client, dynamodb.client  # type: ignore[attr-defined]

    snapstart.snapshot()
    assert gone(redis_client, before)  # the pool was closed: the server saw it
    since = accepted(redis_client)
    wall.advance(30)  # restored 30 s later: the L1 entry had 270 s left
    snapstart.restore()

    l1 = quote.cache._engine.chain.l1
    assert l1 is not None
    assert len(l1) == 0
    stats = quote.cache.stats()
    with redis_round_trips() as trips:
        assert quote("AMZN") == {"symbol": "AMZN"}
    assert calls == ["AMZN"]
    after = quote.cache.stats()
    assert after["L1"]["hits"] == stats["L1"]["hits"]
    assert after["L2"]["hits"] == stats["L2"]["hits"] + 1
    assert trips[0] == ["MGET", "XRANGE"]  # the entry, its generation and the feed, from L2
    assert accepted(redis_client) == since + 1  # a new connection of its own
    (now,) = named(redis_client)
    assert now not in before
    assert redis.client is not old_redis  # type: ignore[attr-defined]
    assert dynamodb.client is not old_dynamodb  # type: ignore[attr-defined]
    dynamodb.get("anything")
    assert proxy.accepted == 2  # a new client, on a new connection


def test_an_invalidate_all_made_while_the_snapshot_slept_is_seen_by_the_first_call(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], redis_client: Any
) -> None:
    calls: list[str] = []

    @cached_tiered(ttl=300)
    def quote(symbol: str) -> str:
        calls.append(symbol)
        return f"{symbol}-{len(calls)}"

    assert quote("AMZN") == "AMZN-1"
    snapstart.snapshot()
    # Meanwhile another environment bumps the generation (the same function's cache).
    quote.cache._engine.chain.check_generation()
    redis_client.incr(quote.cache._layout.generation_key)
    snapstart.restore()

    assert quote("AMZN") == "AMZN-2"  # not the entry of the old generation
    assert calls == ["AMZN", "AMZN"]


def test_breakers_open_at_the_snapshot_are_closed_after_restore(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], redis_client: Any
) -> None:
    @cached(ttl=300, tier="redis")
    def quote(symbol: str) -> str:
        return symbol

    quote("AMZN")
    breaker = shared_tier("redis").breaker
    assert breaker is not None
    for _ in range(breaker.threshold):
        breaker.failure()
    assert breaker.state == "open"
    snapstart.snapshot()
    snapstart.restore()

    assert breaker.state == "closed"
    hits = quote.cache.stats()["L2"]["hits"]
    quote("AMZN")
    assert quote.cache.stats()["L2"]["hits"] == hits + 1


def test_a_client_passed_in_is_left_to_its_owner(
    snapstart: FakeSnapshotRuntime,
    redis_server: RedisServer,
    redis_client: Any,
    dynamodb_client: Any,
    table_name: str,
) -> None:
    import redis

    owned = redis.Redis.from_url(redis_server.url)
    try:
        dynamodb = DynamoDBTier(table_name, client=dynamodb_client)
        tiers: list[Tier] = [RedisTier(client=owned), dynamodb]

        @cached_tiered(ttl=300, tiers=tiers)
        def quote(symbol: str) -> str:
            return symbol

        quote("AMZN")
        connection = owned.client_id()
        snapstart.snapshot()
        snapstart.restore()
        assert owned.client_id() == connection  # the same connection, still open
        assert dynamodb.client is dynamodb_client
    finally:
        owned.close()


def test_after_warm_a_restored_copy_reconnects_in_the_hook_not_in_the_first_request(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], proxy: KeepAliveProxy, redis_client: Any
) -> None:
    @cached_tiered(ttl=300)
    def quote(symbol: str) -> str:
        return symbol

    assert warm() == {"L2": True, "L3": True}
    before = named(redis_client)
    assert (len(before), proxy.accepted) == (1, 1)
    snapstart.snapshot()
    assert gone(redis_client, before)
    snapstart.restore()

    (reopened,) = named(redis_client)
    assert reopened not in before
    assert proxy.accepted == 2
    since = accepted(redis_client)
    quote("AMZN")
    assert (accepted(redis_client) - since, proxy.accepted) == (0, 2)
    assert named(redis_client) == [reopened]


def test_after_restore_an_explicit_chain_warmed_before_the_snapshot_is_open_already(
    snapstart: FakeSnapshotRuntime, redis_server: RedisServer, redis_client: Any
) -> None:
    chain: list[Tier] = [MemoryTier(), RedisTier(f"{redis_server.url}?client_name={NAME}")]

    @cached_tiered(ttl=300, tiers=chain)
    def quote(symbol: str) -> str:
        return symbol

    try:
        assert warm(quote.cache.tiers) == {"L2": True}
        before = named(redis_client)
        assert len(before) == 1
        snapstart.snapshot()
        assert gone(redis_client, before)
        snapstart.restore()

        (reopened,) = named(redis_client)  # by the after-restore hook
        assert reopened not in before
        since = accepted(redis_client)
        assert quote("AMZN") == "AMZN"
        assert accepted(redis_client) == since  # the first request opened no connection
        assert named(redis_client) == [reopened]
    finally:
        chain[1].close()


def test_a_tier_only_warm_was_given_is_closed_before_the_snapshot_and_reopened(
    snapstart: FakeSnapshotRuntime, redis_server: RedisServer, redis_client: Any
) -> None:
    tier = RedisTier(f"{redis_server.url}?client_name={NAME}", name="sessions")
    try:
        assert warm([tier]) == {"sessions": True}  # no cache holds it
        before = named(redis_client)
        assert len(before) == 1
        snapstart.snapshot()
        assert gone(redis_client, before)  # restored copies will not share its socket
        snapstart.restore()
        (reopened,) = named(redis_client)
        assert reopened not in before
    finally:
        tier.close()


# ---------------------------------------------------------------- warm()


def test_warm_opens_one_connection_to_each_shared_tier_and_requests_reuse_them(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], proxy: KeepAliveProxy, redis_client: Any
) -> None:
    @cached_tiered(ttl=300)
    def quote(symbol: str) -> str:
        return symbol

    assert (named(redis_client), proxy.accepted) == ([], 0)
    assert warm() == {"L2": True, "L3": True}
    assert (len(named(redis_client)), proxy.accepted) == (1, 1)
    since = accepted(redis_client)
    quote("AMZN")  # a full miss: L2 and L3 read, the lease taken, both written
    assert (accepted(redis_client) - since, proxy.accepted) == (0, 1)


def test_warm_opens_the_tiers_of_an_explicit_chain_too(
    snapstart: FakeSnapshotRuntime, env: dict[str, str], redis_client: Any
) -> None:
    tier = RedisTier(env["STRATACACHE_REDIS_URL"], name="sessions")
    try:
        assert warm([tier, MemoryTier()]) == {"L2": True, "L3": True, "sessions": True}
        assert len(named(redis_client)) == 2  # the shared tier's and this one's
    finally:
        tier.close()


def test_warm_does_not_run_by_itself_when_caching_is_disabled(
    env: dict[str, str], redis_client: Any
) -> None:
    code = (
        "import sys\nfrom stratacache import cached_tiered\n"
        "@cached_tiered\ndef f(x): return x\nprint('redis' in sys.modules)\n"
    )
    env = {
        **env,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency",
        "STRATACACHE_DISABLED": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert named(redis_client) == []


def test_warm_never_raises_a_tier_that_does_not_answer_is_counted_and_logged(
    snapstart: FakeSnapshotRuntime,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    emf: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens there; the password must stay out of the log.
    monkeypatch.setenv("STRATACACHE_REDIS_URL", f"redis://app:s3cret@127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert warm() == {"L2": False, "L3": True}
    assert metrics.recorder.pending()["L2"]["CacheError"] == 1
    assert "stratacache tier L2 warm failed" in caplog.text
    assert "s3cret" not in caplog.text


def test_warm_never_raises_on_a_setting_it_cannot_use(
    snapstart: FakeSnapshotRuntime,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_URL", "redis://app:s3cret@127.0.0.1:99999/0")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert warm() == {"L3": False}
    assert "could not warm the redis tier" in caplog.text
    assert "STRATACACHE_REDIS_URL" in caplog.text
    assert "AWS_REGION" in caplog.text
    assert "s3cret" not in caplog.text


FIRST_REQUEST = """
import json, os, sys
connects = []
sys.addaudithook(lambda event, args: event == "socket.connect" and connects.append(str(args[1])))
import stratacache
from stratacache import cached_tiered

@cached_tiered(ttl=60)
def quote(symbol):
    return {"symbol": symbol}

answered = stratacache.warm() if os.environ.get("EXPLICIT") else None
before = set(sys.modules)
print(json.dumps({"warm": answered, "redis": "redis" in before, "connects": len(connects)}))
sys.stdout.flush()
sys.stdin.readline()  # the test reads the servers' connection counts meanwhile
del connects[:]
assert quote("AMZN") == {"symbol": "AMZN"}
print(json.dumps({"imported": sorted(set(sys.modules) - before), "connects": connects}))
"""


def first_request(
    env: dict[str, str],
    proxy: KeepAliveProxy,
    redis_client: Any,
    initialization: str,
    explicit: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Initialise a fresh interpreter, then make its first request: what each step did."""
    env = {
        **env,
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
        "EXPLICIT": "1" if explicit else "",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", FIRST_REQUEST],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        init = json.loads(child.stdout.readline())
        init["redis connections"] = len(named(redis_client))
        init["dynamodb connections"] = proxy.accepted
        redis_since, dynamodb_since = accepted(redis_client), proxy.accepted
        child.stdin.write("go\n")
        child.stdin.flush()
        request = json.loads(child.stdout.readline())
        request["redis connections"] = accepted(redis_client) - redis_since
        request["dynamodb connections"] = proxy.accepted - dynamodb_since
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    return init, request


@pytest.mark.parametrize(
    ("initialization", "explicit"),
    [("on-demand", True), ("provisioned-concurrency", False), ("snap-start", False)],
    ids=["warm()", "provisioned-concurrency", "snap-start"],
)
def test_after_warm_the_first_request_imports_nothing_and_connects_nothing(
    env: dict[str, str],
    proxy: KeepAliveProxy,
    redis_client: Any,
    initialization: str,
    explicit: bool,
) -> None:
    init, request = first_request(env, proxy, redis_client, initialization, explicit)
    assert init["warm"] == ({"L2": True, "L3": True} if explicit else None)
    assert init["redis"] is True
    assert init["redis connections"] == 1
    assert init["dynamodb connections"] == 1
    assert init["connects"] == 2
    assert request == {
        "imported": [],
        "connects": [],
        "redis connections": 0,
        "dynamodb connections": 0,
    }


def test_on_demand_without_warm_the_first_request_imports_and_connects(
    env: dict[str, str], proxy: KeepAliveProxy, redis_client: Any
) -> None:
    init, request = first_request(env, proxy, redis_client, "on-demand", explicit=False)
    assert init == {
        "warm": None,
        "redis": False,
        "connects": 0,
        "redis connections": 0,
        "dynamodb connections": 0,
    }
    assert {"redis", "boto3", "botocore"} <= set(request["imported"])
    assert len(request["connects"]) == 2
    assert request["redis connections"] == 1
    assert request["dynamodb connections"] == 1


def test_each_warmup_ping_of_the_example_handler_pings_the_shared_tiers(
    snapstart: FakeSnapshotRuntime,
    env: dict[str, str],
    proxy: KeepAliveProxy,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUOTE_ORIGIN_DELAY", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    spec = importlib.util.spec_from_file_location("lifecycle_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)  # a fresh import, as a new execution environment does

    def pings() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

    app.fetch_quote("AMZN")  # the connections are open, the hot quote in L1
    for _ in range(2):
        since, calls = pings(), len(proxy.operations)
        assert app.handler({"stratacache": "warmup"}, None) == {"warmup": True, "loaded": 1}
        assert pings() == since + 1
        assert proxy.operations[calls:] == ["GetItem"]  # warm()'s: the hot quote came from L1
