"""``TieredCache``: a chain of tiers, configured once, and the API users call.

The cache holds its engine (:mod:`stratacache._engine`: the chain of tiers,
the lease, the compute-once algorithm) and shows only what a user needs.
Every method takes the user's key; the engine works on stored keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from stratacache import metrics
from stratacache._engine import INHERIT, TOMBSTONE_TTL, Chain, Engine, Lease
from stratacache._engine.compute import ShouldCache
from stratacache._engine.health import health_check
from stratacache._engine.invalidation import clear, invalidate_all
from stratacache._engine.peek import expire, peek
from stratacache.config import (
    Seconds,
    check_ttl,
    resolve_generation_check,
    resolve_namespace,
    resolve_ttl,
)
from stratacache.envelope import Codec
from stratacache.errors import ConfigurationError
from stratacache.freshness import Freshness
from stratacache.keys import KeyLayout
from stratacache.lifecycle import track
from stratacache.serialization import Serializer
from stratacache.tiers.base import Tier

_INHERIT: Final[Any] = INHERIT
DEFAULT_LEASE: Final = 10.0
DEFAULT_WAIT: Final = 5.0


class TieredCache:
    """A cache over ordered tiers (fastest first): get, set, promote, count, fail open.

    Args:
        tiers: the tiers, fastest first, e.g. ``[MemoryTier(), RedisTier(), DynamoDBTier()]``.
        ttl: default lifetime in seconds (``None``: no expiry), kept as ``default_ttl``;
            a tier's own ``ttl`` wins. Default: ``STRATACACHE_TTL`` or 300.
        namespace: a name, or several (a decorated function's cache has the
            decorator's namespace and the function's identity); default
            ``STRATACACHE_NAMESPACE`` or ``stratacache``. :meth:`clear` removes
            exactly this namespace.
        serializer: how values become bytes for byte tiers (default: JSON with tags).
        signing_key: sign every entry, JSON included (default: the serializer's
            key, else ``STRATACACHE_SIGNING_KEY``, else unsigned).
        max_value_bytes: largest serialized value written or decompressed (32 MiB).
        lock, lock_lease, lock_wait: the lease across environments on a full miss
            and on a stale entry's refresh.
        freshness: grace period, early refresh and jitter (:class:`Freshness`).
        generation_check: seconds between reads of the shared generation.
        tombstone_ttl: seconds an invalidation refuses fills that began before it.
        clock, monotonic, sleep: wall clock, interval clock and sleep; inject fakes in tests.

    Example:
        >>> from stratacache import MemoryTier
        >>> cache = TieredCache([MemoryTier()], ttl=60, namespace="users")
        >>> cache.set("42", {"name": "Ada"})
        >>> cache.get("42")
        {'name': 'Ada'}
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        ttl: Seconds | None = _INHERIT,
        namespace: str | Sequence[str] | None = None,
        serializer: Serializer | None = None,
        signing_key: bytes | str | None = None,
        max_value_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        recorder: metrics.MetricsRecorder | None = None,
        lock: bool | None = None,
        lock_lease: Seconds = DEFAULT_LEASE,
        lock_wait: Seconds = DEFAULT_WAIT,
        freshness: Freshness | None = None,
        generation_check: Seconds | None = None,
        tombstone_ttl: Seconds = TOMBSTONE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        given = tuple(tiers)
        for tier in given:
            if not isinstance(tier, Tier):
                raise ConfigurationError(
                    f"tiers must implement the Tier protocol, got {type(tier).__name__}"
                )
        names = [tier.name for tier in given]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"tier names must be unique, got {names}")
        parts = (
            (resolve_namespace(namespace),)
            if namespace is None or isinstance(namespace, str)
            else tuple(namespace)
        )
        self._parts = parts
        self._layout = KeyLayout(parts)
        chain = Chain(
            given,
            layout=self._layout,
            codec=Codec(serializer, signing_key=signing_key, max_bytes=max_value_bytes),
            default_ttl=resolve_ttl(None) if ttl is _INHERIT else check_ttl(ttl),
            recorder=recorder if recorder is not None else metrics.recorder,
            freshness=freshness if freshness is not None else Freshness(),
            generation_check=resolve_generation_check(generation_check),
            tombstone_ttl=check_ttl(tombstone_ttl, "tombstone_ttl") or TOMBSTONE_TTL,
            clock=clock,
            monotonic=monotonic,
        )
        lease = Lease(
            chain,
            enabled=lock,
            seconds=check_ttl(lock_lease, "lock_lease") or DEFAULT_LEASE,
            wait=check_ttl(lock_wait, "lock_wait") or DEFAULT_WAIT,
        )
        self._engine = Engine(chain, lease, sleep)
        track(chain)  # the Lambda lifecycle hooks reach every live cache (weakly held)

    def __repr__(self) -> str:
        return (
            f"TieredCache(namespace={self.namespace!r}, ttl={self.default_ttl}, "
            f"tiers={list(self.tiers)})"
        )

    # ------------------------------------------------------------ read-only attributes

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, fastest first."""
        return self._engine.chain.tiers

    @property
    def namespace(self) -> str:
        """The namespace's parts joined by ``:`` (what :meth:`clear` removes)."""
        return ":".join(self._parts)

    @property
    def default_ttl(self) -> float | None:
        """Seconds an entry lives unless ``ttl`` says otherwise (``None``: no expiry)."""
        return self._engine.chain.default_ttl

    @property
    def freshness(self) -> Freshness:
        """The grace period, early refresh and jitter its entries are kept with."""
        return self._engine.chain.freshness

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock its expiry is measured on (a fake one in tests)."""
        return self._engine.chain.clock

    def full_key(self, key: str) -> str:
        """``key`` as the tiers store it (see :class:`~stratacache.keys.KeyLayout`).

        Example:
            >>> TieredCache([MemoryTier()], namespace="users").full_key("42")
            'users|42'
        """
        if not isinstance(key, str):
            raise TypeError(f"cache keys are str, got {type(key).__name__}")
        return self._layout.key(key)

    # ------------------------------------------------------------ reading

    def get(self, key: str, default: object = None) -> object:
        """The cached value of ``key``, or ``default`` when no tier has it."""
        record = self._engine.lookup(self.full_key(key))
        return default if record is None else record.value

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """The cached values of those ``keys`` that some tier has, promoted like :meth:`get`.

        Example:
            >>> cache = TieredCache([MemoryTier()], namespace="doc-many")
            >>> cache.set_many({"a": 1, "b": 2})
            >>> cache.get_many(["a", "b", "c"])
            {'a': 1, 'b': 2}
        """
        wanted = {self.full_key(key): key for key in keys}
        chain = self._engine.chain
        found = chain.read_many(list(wanted), chain.begin())
        return {wanted[full_key]: record.value for full_key, record in found.items()}

    def has(self, key: str) -> bool:
        """Whether some tier holds a live entry for ``key`` (no promotion, not counted)."""
        return next(peek(self._engine.chain, self.full_key(key)), None) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` in the fastest tier holding it.

        ``None`` when no tier holds it; ``math.inf`` when it never expires.

        Example:
            >>> cache = TieredCache([MemoryTier()], namespace="doc-ttl")
            >>> cache.set("k", 1, ttl=None)
            >>> cache.ttl("k"), cache.ttl("absent")
            (inf, None)
        """
        chain = self._engine.chain
        now = chain.clock()
        for _, record, _ in peek(chain, self.full_key(key)):
            return math.inf if record.expires_at is None else record.expires_at - now
        return None

    def get_or_compute(
        self,
        key: str,
        compute: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        should_cache: ShouldCache | None = None,
    ) -> Any:
        """The cached value of ``key``, else ``compute(*args, **kwargs)`` once, stored.

        The decorators' algorithm (single-flight, the lease across environments,
        freshness, conditional writes) for keys you build yourself.
        ``should_cache(value)`` returning false keeps a value out of the tiers.

        Example:
            >>> cache = TieredCache([MemoryTier()], namespace="doc-goc")
            >>> cache.get_or_compute("k", lambda: 42), cache.get_or_compute("k", lambda: 0)
            (42, 42)
        """
        return self._engine.run(
            self.full_key(key), lambda: compute(*args, **(kwargs or {})), should_cache
        )

    async def aget_or_compute(
        self,
        key: str,
        compute: Callable[..., Awaitable[Any]],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        should_cache: ShouldCache | None = None,
    ) -> Any:
        """Like :meth:`get_or_compute` for a coroutine function; tier I/O in a worker thread."""
        return await self._engine.arun(
            self.full_key(key), lambda: compute(*args, **(kwargs or {})), should_cache
        )

    # ------------------------------------------------------------ writing

    def set(self, key: str, value: object, ttl: Seconds | None = _INHERIT) -> None:
        """Cache ``value`` under ``key`` in every tier (``ttl`` seconds, else the default)."""
        self._engine.store(self.full_key(key), value, ttl if ttl is _INHERIT else check_ttl(ttl))

    def set_many(self, items: Mapping[str, object], ttl: Seconds | None = _INHERIT) -> None:
        """Cache several values at once: one batch call per tier."""
        values = {self.full_key(key): value for key, value in items.items()}
        chain = self._engine.chain
        chain.write_many(
            values, chain.begin(force=True), ttl if ttl is _INHERIT else check_ttl(ttl)
        )

    def expire(self, key: str, ttl: Seconds | None) -> bool:
        """Give ``key`` a new lifetime in every tier holding it (capped by a tier's own ttl).

        Returns ``True`` when some tier held the key.
        """
        return expire(self._engine.chain, self.full_key(key), check_ttl(ttl))

    # ------------------------------------------------------------ invalidating

    def invalidate(self, key: str, *, strict: bool = False) -> bool:
        """Remove ``key`` from every tier, leaving tombstones that refuse older fills.

        Returns ``True`` when some tier held a live entry and no shared tier can
        serve it any more. A shared tier that refuses the tombstone (out of memory
        under ``noeviction``, a read-only replica) gets a delete instead; one that
        takes neither is counted and skipped, and the call returns ``False`` (with
        ``strict=True`` the first such failure is raised as
        :class:`InvalidationError` after every tier was tried). Deletes go through
        even while a breaker is open: an invalidation skipped now would leave a
        stale entry to be served once the tier is back.
        """
        return self._engine.invalidate(self.full_key(key), strict=strict)

    def delete(self, key: str, *, strict: bool = False) -> bool:
        """Remove ``key`` from every tier; ``True`` when some tier had it (:meth:`invalidate`)."""
        return self.invalidate(key, strict=strict)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several keys from every tier, with tombstones, one batch call per tier."""
        self._engine.invalidate_many([self.full_key(key) for key in keys])

    def invalidate_all(self) -> None:
        """Make every entry of this namespace unreachable at once, in every environment.

        Bumps the generation in every shared tier that keeps counters (DynamoDB
        ``UpdateItem ADD`` first, then Redis ``INCR``) instead of scanning keys;
        other environments follow within ``generation_check`` seconds, on every
        read path, and a Redis that loses its counter gets it back from DynamoDB.
        A fill already under way writes under the generation before. Without
        such a tier, or if a bump fails, every entry is deleted.
        """
        invalidate_all(self._engine.chain)

    def clear(self) -> None:
        """Remove every entry of this cache's namespace from every tier.

        For maintenance: it scans, the slowest tier first and memory last. Unlike
        :meth:`invalidate_all`, a fill already under way when it runs may still
        land afterwards.
        """
        clear(self._engine.chain)

    # ------------------------------------------------------------ operating

    def stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses and errors of each tier of this cache since it was made."""
        return self._engine.chain.stats()

    def health_check(self, probe_ttl: float = 60.0) -> dict[str, dict[str, Any]]:
        """Write, read back, verify and delete a probe key in every tier; report each tier.

        Probes reach even a tier whose breaker is open, are not counted, and feed
        the tier's breaker. Each tier's report: ``status`` (``ok``/``error``),
        ``latency_ms``, ``error``, ``breaker`` (its state, or ``None``).

        Example:
            >>> TieredCache([MemoryTier()]).health_check()["L1"]["status"]
            'ok'
        """
        return health_check(self._engine.chain, probe_ttl)

    def close(self) -> None:
        """Release the tiers' connections; they reconnect on next use."""
        for tier in self.tiers:
            tier.close()
