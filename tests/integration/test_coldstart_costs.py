"""What a cold start pays for the tiers' clients: no collections while a client is
built, and no health-check ``PING`` on a connection just opened (issue 18)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from devkit.servers import RedisServer

from stratacache import DynamoDBTier, RedisTier


def _pings(control: Any) -> int:
    return int(control.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection the collector runs while the test does,
    with a threshold low enough that any build left to the collector would see some."""
    seen: list[int] = []
    thresholds = gc.get_threshold()

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    gc.set_threshold(50)
    try:
        yield seen
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(note)
        gc.unfreeze()


def test_a_new_redis_connection_is_used_without_a_ping_first(
    redis_server: RedisServer, redis_client: Any
) -> None:
    tier = RedisTier(redis_server.url)
    try:
        redis_client.config_resetstat()
        tier.set("k", b"v", ttl=60)
        assert tier.get("k") == b"v"
        assert _pings(redis_client) == 0
        # The health check itself still runs once a connection has been idle past its
        # interval: the freeze/thaw guard that replaces a connection closed meanwhile.
        for connection in tier.client.connection_pool._available_connections:
            connection.next_health_check = 0
        assert tier.get("k") == b"v"
        assert _pings(redis_client) == 1
    finally:
        tier.close()


def test_building_a_redis_client_runs_no_collection_and_freezes_what_it_made(
    redis_server: RedisServer, collections: list[int]
) -> None:
    tier = RedisTier(redis_server.url)
    try:
        gc.unfreeze()
        gc.collect()  # counts at zero: a collection now would be the build's
        collections.clear()
        tier.client  # noqa: B018  (the build under test)
        during = len(collections)
        assert during == 0
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    finally:
        tier.close()


def test_building_a_boto3_client_runs_no_collection(
    dynamodb_client: Any, table_name: str, remote_env: dict[str, str], collections: list[int]
) -> None:
    tier = DynamoDBTier(table_name)
    gc.unfreeze()
    gc.collect()
    collections.clear()
    tier.client  # noqa: B018
    during = len(collections)
    assert during == 0
    assert gc.get_freeze_count() > 0


def test_a_collector_the_user_disabled_stays_disabled(
    redis_server: RedisServer, collections: list[int]
) -> None:
    tier = RedisTier(redis_server.url)
    gc.disable()
    try:
        gc.unfreeze()
        tier.client  # noqa: B018
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0  # the user's collector, the user's choice
    finally:
        gc.enable()
        tier.close()
