"""The session's servers are real and reachable."""

from __future__ import annotations

from typing import Any


def test_redis_server_answers_ping(redis_client: Any) -> None:
    assert redis_client.ping() is True


def test_moto_server_serves_the_cache_table(dynamodb_client: Any, table_name: str) -> None:
    ttl = dynamodb_client.describe_time_to_live(TableName=table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
