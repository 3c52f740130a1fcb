"""STRATACACHE_REDIS_IAM_*: the environment's Redis tier signs in with ElastiCache IAM tokens."""

from __future__ import annotations

import pytest

import stratacache.tiers
from stratacache import ConfigurationError, ElastiCacheIAMProvider, RedisTier
from stratacache.tiers import shared_tier

URL = "rediss://cache.example:6379/0"


@pytest.fixture(autouse=True)
def fresh_shared_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stratacache.tiers, "_shared", {})
    monkeypatch.setenv("STRATACACHE_REDIS_URL", URL)


def test_without_an_iam_user_the_tier_has_no_credential_provider() -> None:
    tier = shared_tier("redis")
    assert isinstance(tier, RedisTier)
    assert "credential_provider" not in tier._options


def test_an_iam_user_makes_the_tier_sign_in_with_iam_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_USER", "app-user")
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_CACHE", "my-cache")
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_SERVERLESS", "true")
    tier = shared_tier("redis")
    assert isinstance(tier, RedisTier)
    provider = tier._options["credential_provider"]
    assert isinstance(provider, ElastiCacheIAMProvider)
    assert (provider.user_id, provider.cache_name, provider.serverless) == (
        "app-user",
        "my-cache",
        True,
    )
    assert provider.signed == 0  # nothing is signed before the first connection


def test_serverless_defaults_to_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_USER", "app-user")
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_CACHE", "my-group")
    tier = shared_tier("redis")
    assert tier._options["credential_provider"].serverless is False  # type: ignore[attr-defined]


def test_an_iam_user_without_a_cache_name_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_USER", "app-user")
    with pytest.raises(ConfigurationError, match="STRATACACHE_REDIS_IAM_CACHE"):
        shared_tier("redis")
