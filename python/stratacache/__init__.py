"""stratacache: tiered caching for AWS Lambda.

L1 execution-environment memory, L2 Redis / ElastiCache / Valkey, L3 DynamoDB
with native TTL; a hit in a slower tier back-fills the faster ones with the
entry's remaining lifetime; hits, misses and errors are published through
Powertools Metrics.

Example:
    >>> from stratacache import cached_tiered
    >>> @cached_tiered(ttl=300)
    ... def exchange_rate(currency: str) -> float:
    ...     return 1.0
    >>> exchange_rate("EUR")
    1.0

Importing this package imports neither boto3, botocore nor redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratacache.batch import cached_many
    from stratacache.breaker import CircuitBreaker
    from stratacache.decorators import CachedFunction, cached, cached_tiered
    from stratacache.errors import (
        ConfigurationError,
        InvalidationError,
        KeyBuildError,
        SerializationError,
        StratacacheError,
    )
    from stratacache.iam import ElastiCacheIAMProvider
    from stratacache.lifecycle import warm
    from stratacache.metrics import log_cache_metrics, publish_metrics
    from stratacache.serialization import JsonSerializer, PickleSerializer, Serializer
    from stratacache.tiered import TieredCache
    from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier, Tier, tiers_from_env

# Each public name and the module that defines it, imported on first use (PEP 562):
# ``import stratacache`` itself loads nothing else, and ``from stratacache import
# cached`` loads only what ``cached`` needs.
_EXPORTS = {
    "MISS": "stratacache.tiers",
    "CachedFunction": "stratacache.decorators",
    "CircuitBreaker": "stratacache.breaker",
    "ConfigurationError": "stratacache.errors",
    "DynamoDBTier": "stratacache.tiers",
    "ElastiCacheIAMProvider": "stratacache.iam",
    "InvalidationError": "stratacache.errors",
    "JsonSerializer": "stratacache.serialization",
    "KeyBuildError": "stratacache.errors",
    "MemoryTier": "stratacache.tiers",
    "PickleSerializer": "stratacache.serialization",
    "RedisTier": "stratacache.tiers",
    "SerializationError": "stratacache.errors",
    "Serializer": "stratacache.serialization",
    "StratacacheError": "stratacache.errors",
    "Tier": "stratacache.tiers",
    "TieredCache": "stratacache.tiered",
    "cached": "stratacache.decorators",
    "cached_many": "stratacache.batch",
    "cached_tiered": "stratacache.decorators",
    "log_cache_metrics": "stratacache.metrics",
    "publish_metrics": "stratacache.metrics",
    "tiers_from_env": "stratacache.tiers",
    "warm": "stratacache.lifecycle",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stratacache' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"


__all__ = [
    "MISS",
    "CachedFunction",
    "CircuitBreaker",
    "ConfigurationError",
    "DynamoDBTier",
    "ElastiCacheIAMProvider",
    "InvalidationError",
    "JsonSerializer",
    "KeyBuildError",
    "MemoryTier",
    "PickleSerializer",
    "RedisTier",
    "SerializationError",
    "Serializer",
    "StratacacheError",
    "Tier",
    "TieredCache",
    "cached",
    "cached_many",
    "cached_tiered",
    "log_cache_metrics",
    "publish_metrics",
    "tiers_from_env",
    "warm",
]
