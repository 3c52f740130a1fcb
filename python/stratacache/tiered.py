"""``TieredCache``: a chain of tiers, configured once, and its public API.

How records move through the chain (lookups, promotion, conditional writes,
leases, invalidation) is :mod:`stratacache.records`'; the compute-once
algorithm is :mod:`stratacache.compute`, the generation
:mod:`stratacache.generations`, failing open per tier :mod:`stratacache.slots`
and the health probe :mod:`stratacache.health`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any, Final, cast

from stratacache import metrics
from stratacache.config import check_ttl, resolve_generation_check, resolve_namespace, resolve_ttl
from stratacache.envelope import VALUE, Codec, Record
from stratacache.errors import (
    ConfigurationError,
    SerializationError,
)
from stratacache.freshness import Fresh, Freshness
from stratacache.generations import Generation
from stratacache.keys import KeyLayout
from stratacache.lifecycle import track
from stratacache.records import INHERIT, TOMBSTONE_TTL, Records, expiry_at, remaining_lifetime
from stratacache.serialization import Serializer
from stratacache.singleflight import SingleFlight
from stratacache.slots import FAILED, Marks, Slot
from stratacache.tiers.base import MISS, CounterTier, Foreign, Tier
from stratacache.tiers.memory import MemoryTier

logger = logging.getLogger("stratacache")

_INHERIT: Final[Any] = INHERIT
DEFAULT_LEASE: Final = 10.0
DEFAULT_WAIT: Final = 5.0


class TieredCache(Records):
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
        lock, lock_lease, lock_wait: the lease across environments on a full miss.
        freshness: grace period, early refresh and jitter (:class:`Freshness`).
        generation_check: seconds between reads of the shared generation.
        tombstone_ttl: seconds an invalidation refuses fills that began before it.
        clock, monotonic, sleep: wall clock, interval clock and sleep; inject fakes in tests.

    Example:
        >>> cache = TieredCache([MemoryTier()], ttl=60, namespace="users")
        >>> cache.set("42", {"name": "Ada"})
        >>> cache.get("42")
        {'name': 'Ada'}
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        ttl: float | None = _INHERIT,
        namespace: str | Sequence[str] | None = None,
        serializer: Serializer | None = None,
        signing_key: bytes | str | None = None,
        max_value_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        recorder: metrics.MetricsRecorder | None = None,
        lock: bool | None = None,
        lock_lease: float = DEFAULT_LEASE,
        lock_wait: float = DEFAULT_WAIT,
        freshness: Freshness | None = None,
        generation_check: float | None = None,
        tombstone_ttl: float = TOMBSTONE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        for tier in self.tiers:
            if not isinstance(tier, Tier):
                raise ConfigurationError(
                    f"tiers must implement the Tier protocol, got {type(tier).__name__}"
                )
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"tier names must be unique, got {names}")
        self.default_ttl = resolve_ttl(None) if ttl is _INHERIT else check_ttl(ttl)
        parts = (
            (resolve_namespace(namespace),)
            if namespace is None or isinstance(namespace, str)
            else tuple(namespace)
        )
        self.namespace_parts = parts
        """The namespace as given: a cache built with the same parts shares the entries."""
        self.namespace = ":".join(parts)
        self.layout = KeyLayout(parts)
        self.codec = Codec(serializer, signing_key=signing_key, max_bytes=max_value_bytes)
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.recorder = recorder if recorder is not None else metrics.recorder
        self.slots = tuple(
            Slot(tier, index, self.recorder.register(tier.name))
            for index, tier in enumerate(self.tiers)
        )
        self.counts = [slot.counts for slot in self.slots]
        self.remote = any(slot.remote for slot in self.slots)
        self._write_order = tuple(sorted(self.slots, key=lambda slot: not slot.remote))
        self.measure = any(slot.limit is not None for slot in self.slots)
        self.flights = SingleFlight()
        self.marks = Marks()
        versioned = [s for s in self.slots if s.remote and s.tier.capabilities.versioned]
        self._lease_slots = versioned[:1]
        self._lock_slot = next(
            (s for s in self.slots if s.remote and s.tier.capabilities.lock), None
        )
        self._counter_slot = next(
            (s for s in self.slots if s.remote and s.tier.capabilities.counter), None
        )
        self.lock = bool(self._lease_slots) if lock is None else bool(lock)
        self.lock_lease = check_ttl(lock_lease, "lock_lease") or DEFAULT_LEASE
        self.lock_wait = check_ttl(lock_wait, "lock_wait") or DEFAULT_WAIT
        self.tombstone_ttl = check_ttl(tombstone_ttl, "tombstone_ttl") or TOMBSTONE_TTL
        self.freshness = freshness if freshness is not None else Freshness()
        self.stale_served = 0
        self.generation = Generation(
            resolve_generation_check(generation_check), clock, self._counter_slot is not None
        )
        self.generation.on_change.append(self._forget_generation)
        first = self.tiers[0] if self.tiers else None
        self.l1: MemoryTier | None = (
            first if isinstance(first, MemoryTier) and not self.freshness.enabled else None
        )
        """The L1 fast-path seam: the memory tier a decorator may read directly (its
        ``entries`` map a stored key to ``(value, expires_at)`` on its ``timer``, and
        ``touch(key)`` keeps the LRU order), or ``None`` when every call must take
        the full path (freshness facts in L1)."""
        track(self)  # the Lambda lifecycle hooks reach every live cache (weakly held)

    def __repr__(self) -> str:
        return (
            f"TieredCache(namespace={self.namespace!r}, ttl={self.default_ttl}, "
            f"tiers={list(self.tiers)})"
        )

    # ------------------------------------------------------------ keys and calls

    def full_key(self, key: str) -> str:
        """The key as the tiers store it (see :class:`~stratacache.keys.KeyLayout`)."""
        if not isinstance(key, str):
            raise TypeError(f"cache keys are str, got {type(key).__name__}")
        return self.layout.key(key)

    # ------------------------------------------------------------ generations

    def _forget_generation(self) -> None:
        """A newer generation: nothing this environment holds or is computing is current."""
        self.marks.mark_all(then=self._clear_memory)
        self.flights.forget()

    def _clear_memory(self) -> None:
        for slot in self.slots:
            if not slot.remote:
                slot.run("clear", None, slot.tier.clear, self.layout.prefix, skip=False)

    def invalidate_all(self) -> None:
        """Make every entry of this namespace unreachable at once, in every environment.

        Bumps the generation in the first shared tier that keeps counters (Redis
        ``INCR``, DynamoDB ``UpdateItem ADD``) instead of scanning keys; other
        environments follow within ``generation_check`` seconds. Without such a
        tier, or if the bump fails, every entry is deleted instead.
        """
        slot = self._counter_slot
        if slot is not None:
            bumped = slot.run(
                "bump generation",
                None,
                cast(CounterTier, slot.tier).bump_counter,
                self.layout.generation_key,
                self.generation.value + 1,
                skip=False,
            )
            if bumped is not FAILED:
                self.generation.observe(int(bumped))
                return
        if slot is not None or self.remote:
            self.clear()
            return
        self.generation.observe(self.generation.value + 1)

    # ------------------------------------------------------------ imperative API

    def get_or_compute(
        self,
        full_key: str,
        compute: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        should_cache: Callable[[Any], bool] | None = None,
    ) -> Any:
        """The cached value of a stored key, else ``compute(*args, **kwargs)`` once, stored.

        The decorators' algorithm (:mod:`stratacache.compute`), for callers that
        build their own keys. ``should_cache(value)`` returning false keeps a
        computed value out of the tiers (it is still returned, to every caller
        that shared the computation), as dogpile's ``should_cache_fn`` does.

        Example:
            >>> cache = TieredCache([MemoryTier()])
            >>> key = cache.full_key("answer")
            >>> cache.get_or_compute(key, lambda: None, should_cache=lambda v: v is not None)
            >>> cache.get("answer", "absent")
            'absent'
        """
        from stratacache import compute as algorithm  # it imports this module

        return algorithm.run(
            algorithm.get_or_compute(self, full_key, should_cache=should_cache),
            lambda: compute(*args, **(kwargs or {})),
            self.flights,
            self.sleep,
        )

    async def aget_or_compute(
        self,
        full_key: str,
        compute: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        should_cache: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Like :meth:`get_or_compute` for a coroutine function; tier I/O in a worker thread."""
        from stratacache import compute as algorithm

        return await algorithm.arun(
            algorithm.get_or_compute(self, full_key, should_cache=should_cache),
            lambda: compute(*args, **(kwargs or {})),
            self.flights,
            self.remote,
        )

    def get(self, key: str, default: object = None) -> object:
        """The cached value of ``key``, or ``default`` when no tier has it."""
        record = self.read(self.full_key(key), self.begin())
        return default if record is None else record.value

    def set(self, key: str, value: object, ttl: float | None = _INHERIT) -> None:
        """Cache ``value`` under ``key`` in every tier (``ttl`` seconds, else the default)."""
        self.store(self.full_key(key), value, ttl)

    def store(self, full_key: str, value: object, ttl: float | None = _INHERIT) -> bool:
        """Write ``value`` under a stored key in every tier, unconditionally (an explicit write)."""
        if ttl is not _INHERIT:
            ttl = check_ttl(ttl)
        return self.write(full_key, value, self.begin(force=True), ttl=ttl)

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """The cached values of those ``keys`` that some tier has, promoted like :meth:`get`."""
        wanted = {self.full_key(key): key for key in keys}
        found = self.read_many(list(wanted), self.begin())
        return {wanted[full_key]: record.value for full_key, record in found.items()}

    def set_many(self, items: Mapping[str, object], ttl: float | None = _INHERIT) -> None:
        """Cache several values at once: one batch call per tier."""
        values = {self.full_key(key): value for key, value in items.items()}
        self.write_many(values, self.begin(force=True), ttl)

    def delete(self, key: str, *, strict: bool = False) -> bool:
        """Remove ``key`` from every tier; ``True`` when some tier had it (:meth:`invalidate`)."""
        return self.invalidate(self.full_key(key), strict=strict)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several keys from every tier, with tombstones, one batch call per tier."""
        self.invalidate_many([self.full_key(key) for key in keys])

    def invalidate_many(self, full_keys: Sequence[str]) -> None:
        """:meth:`invalidate` for several stored keys, one batch call per tier."""
        self._forget(full_keys)

    def _peek(self, full_key: str) -> Iterable[tuple[Slot, Record, object]]:
        """(slot, record, raw) of every tier holding a live entry, uncounted, unpromoted."""
        now = self.clock()
        for slot in self.slots:
            raw = slot.run("read", None, slot.tier.get, full_key)
            if raw is FAILED or raw is MISS or isinstance(raw, Foreign):
                continue
            if not slot.remote:
                left = slot.tier.remaining_ttl(full_key)
                if left is MISS:
                    continue
                value = raw.value if type(raw) is Fresh else raw
                yield slot, Record(VALUE, value, b"", 0, expiry_at(now, left), None), raw
                continue
            try:
                record = self.codec.decode(full_key, raw)
            except SerializationError:
                continue
            live = record.expires_at is None or record.expires_at > now
            if record.kind is VALUE and live and record.generation >= self.generation.value:
                yield slot, record, raw

    def has(self, key: str) -> bool:
        """Whether some tier holds a live entry for ``key`` (no promotion, not counted)."""
        return next(iter(self._peek(self.full_key(key))), None) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` in the fastest tier holding it.

        ``None`` when no tier holds it; ``math.inf`` when it never expires.
        """
        now = self.clock()
        for _, record, _ in self._peek(self.full_key(key)):
            return math.inf if record.expires_at is None else record.expires_at - now
        return None

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new lifetime in every tier holding it (capped by a tier's own ttl).

        Returns ``True`` when some tier held the key.
        """
        ttl = check_ttl(ttl)
        full_key = self.full_key(key)
        now = self.clock()
        touched = False
        for slot, record, raw in list(self._peek(full_key)):
            cap = slot.tier.ttl
            lifetime = remaining_lifetime(None if ttl is None else now + ttl, now, cap)
            assert lifetime is not MISS
            if slot.remote:
                blob = self.codec.rewrap(full_key, record, raw, expiry_at(now, lifetime))  # type: ignore[arg-type]
                done = slot.run(
                    "expire", None, self._swap, slot, full_key, blob, lifetime, record.version,
                    write=True,
                )  # fmt: skip
            else:
                done = slot.run("expire", None, slot.tier.set, full_key, raw, lifetime, write=True)
            touched = touched or done is not FAILED
        return touched

    def stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses and errors of each tier of this cache since it was made."""
        out: dict[str, dict[str, int]] = {}
        for slot in self.slots:
            out[slot.name] = slot.counts.snapshot()
            if isinstance(slot.tier, Sized):
                out[slot.name]["size"] = len(slot.tier)
        return out

    def health_check(self, probe_ttl: float = 60.0) -> dict[str, dict[str, Any]]:
        """Write, read back, verify and delete a probe key in every tier; report each tier.

        See :func:`stratacache.health.health_check`.

        Example:
            >>> TieredCache([MemoryTier()]).health_check()["L1"]["status"]
            'ok'
        """
        from stratacache.health import health_check

        return health_check(self, probe_ttl)

    def clear(self) -> None:
        """Remove every entry of this cache's namespace from every tier.

        For maintenance: it scans, the slowest tier first and memory last. Unlike
        :meth:`invalidate_all`, a fill already under way when it runs may still
        land afterwards.
        """
        for slot in reversed(self.slots):  # not skipped, as in delete(); slowest first
            if slot.remote:
                slot.run("clear", None, slot.tier.clear, self.layout.prefix, skip=False)
        self.marks.mark_all(then=self._clear_memory)
        self.flights.forget()

    def close(self) -> None:
        """Release the tiers' connections; they reconnect on next use."""
        for tier in self.tiers:
            tier.close()
