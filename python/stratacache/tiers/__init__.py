"""The tiers: memory (L1), Redis (L2) and DynamoDB (L3), and the chain the environment asks for.

Importing this package imports neither redis nor boto3; each remote tier
imports its client library when it first connects.
"""

from __future__ import annotations

import threading

from stratacache.config import ENV_REDIS_URL, ENV_TABLE_NAME, env_str, resolve_redis_iam
from stratacache.errors import ConfigurationError
from stratacache.tiers.base import MISS, Tier
from stratacache.tiers.dynamodb import DynamoDBTier
from stratacache.tiers.memory import MemoryTier
from stratacache.tiers.redis import RedisTier

__all__ = [
    "MISS",
    "DynamoDBTier",
    "MemoryTier",
    "RedisTier",
    "Tier",
    "shared_tier",
    "shared_tiers",
    "tiers_from_env",
]

_shared: dict[tuple[str, str], Tier] = {}
_shared_lock = threading.Lock()

TIER_NAMES = ("memory", "redis", "dynamodb")


def shared_tier(kind: str) -> Tier:
    """The environment-configured remote tier of ``kind``, one per execution environment.

    Every decorator that asks for ``"redis"`` shares one connection pool, and
    every one that asks for ``"dynamodb"`` one boto3 client.
    """
    if kind == "redis":
        setting, factory = env_str(ENV_REDIS_URL), _redis_from_env
        name = ENV_REDIS_URL
    elif kind == "dynamodb":
        setting, factory = env_str(ENV_TABLE_NAME), DynamoDBTier
        name = ENV_TABLE_NAME
    else:
        raise ConfigurationError(f"tier must be one of {TIER_NAMES} or a Tier, got {kind!r}")
    if setting is None:
        raise ConfigurationError(f"tier={kind!r} needs {name} to be set")
    with _shared_lock:
        tier = _shared.get((kind, setting))
        if tier is None:
            # Built from the environment, not handed the value, so that a mistake in it
            # is reported under the variable's name.
            tier = _shared[(kind, setting)] = factory()
        return tier


def shared_tiers() -> list[Tier]:
    """The shared tiers built so far in this execution environment (none are built here).

    Example:
        >>> all(tier.stores_bytes for tier in shared_tiers())  # none at all before a decorator
        True
    """
    with _shared_lock:
        return list(_shared.values())


def _redis_from_env() -> Tier:
    """A RedisTier on ``STRATACACHE_REDIS_URL``, signed in by IAM token when so configured."""
    iam = resolve_redis_iam()
    if iam is None:
        return RedisTier()
    from stratacache.iam import ElastiCacheIAMProvider

    user, cache, serverless = iam
    provider = ElastiCacheIAMProvider(user, cache, serverless=serverless)
    return RedisTier(credential_provider=provider)


def tiers_from_env(maxsize: int | None = None) -> list[Tier]:
    """L1 always; L2 when ``STRATACACHE_REDIS_URL`` is set; L3 when ``STRATACACHE_TABLE_NAME`` is.

    Example:
        >>> [tier.name for tier in tiers_from_env()]  # with neither variable set
        ['L1']
    """
    chain: list[Tier] = [MemoryTier(maxsize)]
    if env_str(ENV_REDIS_URL):
        chain.append(shared_tier("redis"))
    if env_str(ENV_TABLE_NAME):
        chain.append(shared_tier("dynamodb"))
    return chain
