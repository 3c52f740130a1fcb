"""The tier protocol every cache tier implements, and the ``MISS`` sentinel.

A tier stores what :class:`~stratacache.tiered.TieredCache` hands it under a
string key, with an optional lifetime in seconds. Byte tiers (Redis, DynamoDB)
receive envelopes of bytes; object tiers (memory) receive Python objects.
Tiers move data; ordering, promotion, serialization and metrics live in
``TieredCache``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal, Protocol, runtime_checkable


class _Miss(enum.Enum):
    MISS = "MISS"

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False


MISS: Final = _Miss.MISS
"""Returned by a tier for "not found", so that ``None`` can be a cached value."""

Missing = Literal[_Miss.MISS]


@runtime_checkable
class Tier(Protocol):
    """What ``TieredCache`` needs of a tier.

    ``name`` is the metric dimension (``L1``, ``L2``, ``L3`` by default);
    ``ttl`` is the tier's own lifetime, which wins over the cache's default;
    ``stores_bytes`` says whether the tier wants serialized envelopes.
    Lifetimes are seconds; ``None`` means no expiry.
    """

    name: str
    ttl: float | None
    stores_bytes: bool

    def get(self, key: str) -> object | Missing: ...

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]: ...

    def set(self, key: str, value: object, ttl: float | None) -> None: ...

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Iterable[str]) -> int: ...

    def remaining_ttl(self, key: str) -> float | None | Missing:
        """Seconds left for ``key``; ``None`` when it never expires, ``MISS`` when absent."""
        ...

    def clear(self, prefix: str) -> int:
        """Remove every entry whose key starts with ``prefix``; return how many."""
        ...
