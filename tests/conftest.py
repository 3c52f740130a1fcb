"""Shared fixtures: one real Redis-compatible server and one moto server per test session.

Each test gets an empty Redis database and a DynamoDB table of its own, so
tests never see each other's entries.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devkit.faults import RedisClusterServers
from devkit.servers import MotoServer, RedisServer, create_cache_table, fake_aws_environment

# boto3 must never find real credentials or a real region from the machine.
os.environ.update(fake_aws_environment())
for _name in list(os.environ):
    if _name.startswith(("STRATACACHE_", "POWERTOOLS_")) or _name == "AWS_ENDPOINT_URL_DYNAMODB":
        del os.environ[_name]

import stratacache.tiers  # noqa: E402 - after the environment is made safe
from stratacache import lifecycle, metrics  # noqa: E402
from stratacache.tiers import DynamoDBTier, RedisTier  # noqa: E402
from tests.support import REDIS_SECRET, FakeClock, FakeSnapshotRuntime  # noqa: E402


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def locked_redis() -> Iterator[RedisServer]:
    """A server that wants ``REDIS_SECRET`` as the default user's password, with an ACL user
    ``app`` whose password is ``REDIS_SECRET + "-app"``."""
    import redis

    with RedisServer(None, "--requirepass", REDIS_SECRET) as server:
        admin = redis.Redis(host="127.0.0.1", port=server.port, password=REDIS_SECRET)
        admin.acl_setuser(
            "app", enabled=True, passwords=[f"+{REDIS_SECRET}-app"], keys=["~*"], commands=["+@all"]
        )
        admin.close()
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of this test's own, to kill or pause."""
    with RedisServer() as server:
        yield server
        if server.proc is not None:  # not killed by the test
            os.kill(server.pid, signal.SIGCONT)  # whatever a failed test left paused


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster of three primaries, started once for the session."""
    with RedisClusterServers(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster of three primaries of this test module's own, to pause or fill
    without disturbing the session's :func:`redis_cluster`."""
    with RedisClusterServers(3) as own:
        yield own


@pytest.fixture
def own_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start a Redis-compatible server of this test's own configuration, stopped after it.

    ``own_redis("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")``
    """
    started: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        server = RedisServer(None, *args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.close()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """A redis-py client on an emptied database of the session's server."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def dynamodb_client(moto_server: MotoServer) -> Any:
    """A boto3 DynamoDB client that talks HTTP to the session's moto server."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=moto_server.endpoint, region_name="us-east-1")


@pytest.fixture
def table_name(dynamodb_client: Any) -> str:
    """A fresh cache table (``pk`` String key, TTL on ``ttl``) for this test alone."""
    name = f"cache-{uuid.uuid4().hex[:12]}"
    create_cache_table(dynamodb_client, name)
    return name


@pytest.fixture
def redis_tier(redis_client: Any) -> Iterator[RedisTier]:
    tier = RedisTier(client=redis_client)
    yield tier
    tier.close()


@pytest.fixture
def dynamodb_tier(dynamodb_client: Any, table_name: str) -> DynamoDBTier:
    return DynamoDBTier(table_name, client=dynamodb_client)


@pytest.fixture
def remote_env(
    monkeypatch: pytest.MonkeyPatch,
    redis_client: Any,
    redis_server: RedisServer,
    moto_server: MotoServer,
    table_name: str,
) -> dict[str, str]:
    """Environment that makes ``tiers_from_env()`` build L1, L2 and L3 on the test servers."""
    env = {
        **fake_aws_environment(moto_server.endpoint),
        "STRATACACHE_REDIS_URL": redis_server.url,
        "STRATACACHE_TABLE_NAME": table_name,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def clock() -> FakeClock:
    """A fake wall clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def emf(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    """``capsys`` after publishing what was pending, so a test's EMF lines hold only its counts."""
    metrics.publish_metrics()
    capsys.readouterr()
    return capsys


@pytest.fixture
def snapstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSnapshotRuntime]:
    """A runtime that offers SnapStart hooks, in an environment whose lifecycle starts now.

    Only the caches and shared tiers built during the test are known to the hooks;
    the shared tiers built are closed afterwards.
    """
    runtime = FakeSnapshotRuntime()
    monkeypatch.setitem(sys.modules, lifecycle.RUNTIME_MODULE, runtime)
    monkeypatch.setattr(lifecycle, "_state", lifecycle._State())
    shared: dict[Any, Any] = {}
    monkeypatch.setattr(stratacache.tiers, "_shared", shared)
    yield runtime
    for tier in shared.values():
        tier.close()
