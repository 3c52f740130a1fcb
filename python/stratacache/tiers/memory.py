"""L1: an in-process LRU cache that lives as long as the Lambda execution environment.

Expiry is measured on the wall clock (``time.time``), not ``time.monotonic``:
a frozen or snapshot-restored Lambda microVM need not advance its monotonic
clock, and an entry must never outlive its wall-clock expiry.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from cachetools import LRUCache

from stratacache.config import Seconds, check_ttl, resolve_l1_maxsize, resolve_max_value_bytes
from stratacache.tiers.base import MISS, NO_CAPABILITIES, Capabilities, Missing

if TYPE_CHECKING:
    from stratacache.breaker import CircuitBreaker


class MemoryTier:
    """Module-scope LRU cache of Python objects with a per-entry expiry.

    Values are stored as they are, not copied: like ``functools.lru_cache``, a
    caller that mutates a returned list mutates the cached one.

    Args:
        maxsize: entries kept before the least recently used is evicted
            (default ``STRATACACHE_L1_MAXSIZE`` or 1024).
        ttl: this tier's own lifetime in seconds; wins over the cache's TTL.
        name: the metric dimension value.
        timer: wall clock in epoch seconds; inject a fake one in tests.
        max_value_bytes: values whose serialized form is larger are not kept here
            (counted as an error, logged); the slower tiers still get them.

    Example:
        >>> tier = MemoryTier(maxsize=100, ttl=30)
        >>> tier.set("k", {"a": 1}, ttl=None)
        >>> tier.get("k")
        {'a': 1}
    """

    stores_bytes = False
    capabilities: Capabilities = NO_CAPABILITIES
    breaker: CircuitBreaker | None = None

    def __init__(
        self,
        maxsize: int | None = None,
        ttl: Seconds | None = None,
        *,
        name: str = "L1",
        timer: Callable[[], float] = time.time,
        max_value_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.ttl = check_ttl(ttl)
        self.maxsize = resolve_l1_maxsize(maxsize)
        self.timer = timer
        self.max_value_bytes = resolve_max_value_bytes(max_value_bytes)
        # (value, expires_at on ``timer``'s scale); math.inf when it never expires.
        self.data: LRUCache[str, tuple[object, float]] = LRUCache(self.maxsize)
        # The decorators' L1 fast-path seam: ``entries[key]`` is ``data[key]`` without
        # cachetools' Python-level __getitem__, and ``touch(key)`` is what it does to keep
        # the LRU order; both raise KeyError for a key that is not (or no longer) there.
        # With a cachetools laid out otherwise, they fall back to ``data`` itself.
        entries = getattr(self.data, "_Cache__data", None)
        order = getattr(self.data, "_LRUCache__order", None)
        self.entries: Mapping[str, tuple[object, float]]
        self.touch: Callable[[str], object]
        if isinstance(entries, dict) and callable(getattr(order, "move_to_end", None)):
            self.entries, self.touch = entries, order.move_to_end  # type: ignore[union-attr]
        else:  # pragma: no cover - another cachetools layout
            self.entries, self.touch = self.data, _exists(self.data)
        # cachetools caches are not thread-safe; the lock guards writes and LRU moves.
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryTier(name={self.name!r}, maxsize={self.maxsize}, ttl={self.ttl})"

    def __len__(self) -> int:
        return len(self.data)

    def _expires_at(self, ttl: float | None) -> float:
        return math.inf if ttl is None else self.timer() + ttl

    def get(self, key: str) -> object | Missing:
        with self.lock:
            entry = self.data.get(key)
            if entry is None:
                return MISS
            if entry[1] <= self.timer():
                del self.data[key]
                return MISS
            return entry[0]

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: object, ttl: float | None) -> None:
        with self.lock:
            self.data[key] = (value, self._expires_at(ttl))

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        expires_at = self._expires_at(ttl)
        with self.lock:
            for key, value in items.items():
                self.data[key] = (value, expires_at)

    def delete(self, key: str) -> bool:
        with self.lock:
            return self.data.pop(key, None) is not None

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def remaining_ttl(self, key: str) -> float | None | Missing:
        with self.lock:
            entry = self.data.get(key)
        if entry is None:
            return MISS
        if entry[1] == math.inf:
            return None
        left = entry[1] - self.timer()
        return left if left > 0 else MISS

    def clear(self, prefix: str = "") -> int:
        with self.lock:
            doomed = [key for key in self.data if key.startswith(prefix)]
            for key in doomed:
                del self.data[key]
        return len(doomed)

    def close(self) -> None:
        """Nothing to release: memory goes with the execution environment."""


def _exists(data: LRUCache[str, tuple[object, float]]) -> Callable[[str], object]:
    def touch(key: str) -> object:
        return data[key]  # cachetools' own __getitem__ keeps the order

    return touch
