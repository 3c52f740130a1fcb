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

from stratacache import _moved
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

__version__ = "0.1.0"

_moved.install()  # the engine's modules, importable by their old names for one release

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
