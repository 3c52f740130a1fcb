"""What each tier does beyond the shared protocol: storage layout, limits, configuration."""

from __future__ import annotations

import math
from typing import Any

import pytest

from stratacache import ConfigurationError
from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier, shared_tier, tiers_from_env

# ---------------------------------------------------------------- memory


def test_memory_tier_evicts_the_least_recently_used() -> None:
    tier = MemoryTier(maxsize=2)
    tier.set("a", 1, ttl=None)
    tier.set("b", 2, ttl=None)
    tier.get("a")  # now "b" is the least recently used
    tier.set("c", 3, ttl=None)
    assert tier.get_many(["a", "b", "c"]) == [1, MISS, 3]
    assert len(tier) == 2


def test_memory_tier_keeps_python_objects_as_they_are() -> None:
    value = {"nested": [1, 2]}
    tier = MemoryTier()
    tier.set("k", value, ttl=None)
    assert tier.get("k") is value


def test_memory_tier_maxsize_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_L1_MAXSIZE", "7")
    assert MemoryTier().maxsize == 7
    assert MemoryTier(maxsize=3).maxsize == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_memory_tier_rejects_a_bad_maxsize(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="maxsize"):
        MemoryTier(maxsize=bad)


def test_a_bad_maxsize_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_L1_MAXSIZE", "lots")
    with pytest.raises(ConfigurationError, match="STRATACACHE_L1_MAXSIZE"):
        MemoryTier()


@pytest.mark.parametrize("bad", [0, -5, math.inf, math.nan, "60"])
def test_every_tier_rejects_a_bad_ttl(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        MemoryTier(ttl=bad)
    with pytest.raises(ConfigurationError, match="ttl"):
        RedisTier("redis://localhost", ttl=bad)
    with pytest.raises(ConfigurationError, match="ttl"):
        DynamoDBTier("table", ttl=bad)


# ---------------------------------------------------------------- redis


def test_redis_tier_sets_a_millisecond_expiry(redis_client: Any) -> None:
    RedisTier(client=redis_client).set("k", b"v", ttl=1.5)
    assert 1400 < redis_client.pttl("k") <= 1500


def test_redis_tier_stores_under_its_key_prefix(redis_client: Any) -> None:
    tier = RedisTier(client=redis_client, key_prefix="app:")
    tier.set("k", b"v", ttl=60)
    assert redis_client.get("app:k") == b"v"
    assert redis_client.get("k") is None
    assert tier.clear("") == 1


def test_redis_tier_builds_its_client_lazily_from_the_url(redis_server: Any) -> None:
    tier = RedisTier(redis_server.url)
    assert tier._client is None
    tier.set("k", b"v", ttl=60)
    assert tier.get("k") == b"v"
    tier.close()
    assert tier._client is None
    assert tier.get("k") == b"v"  # reconnects on next use
    tier.close()


def test_redis_tier_reads_its_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: Any, redis_client: Any
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_URL", redis_server.url)
    tier = RedisTier()
    tier.set("k", b"v", ttl=60)
    assert redis_client.get("k") == b"v"
    tier.close()


def test_redis_tier_without_a_url_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="STRATACACHE_REDIS_URL"):
        RedisTier()


def test_redis_tier_rejects_a_url_of_another_scheme() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisTier("http://user:secret@cache:6379")


def test_redis_tier_repr_hides_the_password() -> None:
    text = repr(RedisTier("redis://user:s3cret@cache.example:6379/0"))
    assert "s3cret" not in text
    assert "cache.example:6379/0" in text


def test_redis_tier_leaves_a_passed_in_client_open(redis_client: Any) -> None:
    tier = RedisTier(client=redis_client)
    tier.close()
    assert redis_client.ping() is True


# ---------------------------------------------------------------- dynamodb


def test_dynamodb_item_has_the_documented_shape(dynamodb_client: Any, table_name: str) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client, clock=lambda: 1_000.25)
    tier.set("k", b"SC\x03\x01versions", ttl=10)
    item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "k"}})["Item"]
    assert item == {
        "pk": {"S": "k"},
        "v": {"B": b"SC\x03\x01versions"},
        "ver": {"B": b"versions"},  # the envelope's version, for conditional writes
        "ttl": {"N": "1011"},
    }


def test_dynamodb_item_without_ttl_has_no_ttl_attribute(
    dynamodb_client: Any, table_name: str
) -> None:
    DynamoDBTier(table_name, client=dynamodb_client).set("k", b"v", ttl=None)
    item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "k"}})["Item"]
    assert "ttl" not in item


def test_an_item_past_its_ttl_is_a_miss_though_dynamodb_still_has_it(
    dynamodb_client: Any, table_name: str
) -> None:
    now = [1_000.0]
    tier = DynamoDBTier(table_name, client=dynamodb_client, clock=lambda: now[0])
    tier.set("k", b"v", ttl=5)
    now[0] += 6
    assert tier.get("k") is MISS
    assert tier.get_many(["k"]) == [MISS]
    assert "Item" in dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "k"}})


def test_dynamodb_tier_shares_a_single_table_design(dynamodb_client: Any) -> None:
    """A cache can live beside business items: its own key attribute, prefix and sort key."""
    table = "single-table"
    dynamodb_client.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    business = {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "PROFILE"}, "name": {"S": "Ada"}}
    dynamodb_client.put_item(TableName=table, Item=business)
    tier = DynamoDBTier(
        table, client=dynamodb_client, key_attribute="PK", key_prefix="CACHE#", sort_key=("SK", "-")
    )
    tier.set_many({"a": b"1", "b": b"2"}, ttl=60)
    assert tier.get_many(["a", "b"]) == [b"1", b"2"]
    assert tier.clear("") == 2
    assert tier.get("a") is MISS
    items = dynamodb_client.scan(TableName=table)["Items"]
    assert items == [business]
    dynamodb_client.delete_table(TableName=table)


def test_dynamodb_tier_without_a_table_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="STRATACACHE_TABLE_NAME"):
        DynamoDBTier()


@pytest.mark.parametrize("bad", ["ab", "has space", "x" * 256])
def test_dynamodb_tier_rejects_an_impossible_table_name(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="table_name"):
        DynamoDBTier(bad)


def test_dynamodb_tier_attribute_names_must_differ() -> None:
    with pytest.raises(ConfigurationError, match="attribute names must differ"):
        DynamoDBTier("table", key_attribute="ttl")


def test_dynamodb_tier_without_a_region_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        _ = DynamoDBTier("table").client


def test_dynamodb_tier_honours_the_boto3_endpoint_setting(
    monkeypatch: pytest.MonkeyPatch, moto_server: Any, dynamodb_client: Any, table_name: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.endpoint)
    tier = DynamoDBTier(table_name)  # builds its own client from boto3's settings
    tier.set("k", b"v", ttl=60)
    assert dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "k"}})["Item"]
    tier.close()


# ---------------------------------------------------------------- the chain from the environment


def test_without_settings_the_chain_is_memory_only() -> None:
    assert [tier.name for tier in tiers_from_env()] == ["L1"]


def test_the_environment_adds_redis_and_dynamodb(remote_env: dict[str, str]) -> None:
    chain = tiers_from_env()
    assert [tier.name for tier in chain] == ["L1", "L2", "L3"]
    assert isinstance(chain[1], RedisTier)
    assert isinstance(chain[2], DynamoDBTier)


def test_remote_tiers_are_shared_per_environment(remote_env: dict[str, str]) -> None:
    assert shared_tier("redis") is shared_tier("redis")
    assert tiers_from_env()[2] is tiers_from_env()[2]


def test_asking_for_an_unconfigured_shared_tier_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="STRATACACHE_TABLE_NAME"):
        shared_tier("dynamodb")
