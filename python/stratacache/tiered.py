"""``TieredCache``: the chain of tiers, and everything that is not a tier's job.

It owns the lookup order, promotion of hits into faster tiers with the entry's
remaining lifetime, the serialization envelope, hit/miss/error counting and
failing open: a tier that raises is counted and skipped, never surfaced.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any, Final, TypeVar, cast

from stratacache import metrics
from stratacache.breaker import CircuitBreaker
from stratacache.config import (
    check_ttl,
    resolve_generation_check,
    resolve_namespace,
    resolve_ttl,
)
from stratacache.errors import ConfigurationError, InvalidationError, SerializationError
from stratacache.freshness import Fresh, Freshness
from stratacache.keys import fit_key
from stratacache.locks import (
    DEFAULT_LEASE,
    DEFAULT_WAIT,
    GENERATION_SUFFIX,
    LOCK_SUFFIX,
    CounterTier,
    LeaseTier,
)
from stratacache.serialization import HEADER_SIZE, Codec, Envelope, Serializer
from stratacache.singleflight import SingleFlight
from stratacache.tiers.base import MISS, Missing, Tier

logger = logging.getLogger("stratacache")

R = TypeVar("R")

_INHERIT: Final[Any] = object()
_CREDENTIALS = re.compile(r"(?i)(\w+://)[^/@\s]*@")


def _lifetime(expires_at: float | None, now: float, cap: float | None) -> float | None | Missing:
    """Seconds an entry may still live in a tier capped at ``cap``; ``MISS`` when none left."""
    left = None if expires_at is None else expires_at - now
    if left is not None and left <= 0:
        return MISS
    if cap is None:
        return left
    return cap if left is None else min(left, cap)


class TieredCache:
    """A cache over ordered tiers (fastest first): get, set, promote, count, fail open.

    Args:
        tiers: the tiers, fastest first, e.g. ``[MemoryTier(), RedisTier(), DynamoDBTier()]``.
        ttl: default lifetime in seconds (``None``: no expiry), kept as ``default_ttl``;
            a tier's own ``ttl`` wins. Default: ``STRATACACHE_TTL`` or 300.
        namespace: put before every key with a colon (default ``STRATACACHE_NAMESPACE``
            or ``stratacache``); :meth:`clear` removes exactly this namespace.
        serializer: how values become bytes for byte tiers (default: JSON with tags).
        clock: wall clock in epoch seconds, for expiry across processes.

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
        namespace: str | None = None,
        serializer: Serializer | None = None,
        clock: Callable[[], float] = time.time,
        recorder: metrics.MetricsRecorder | None = None,
        lock: bool | None = None,
        lock_lease: float = DEFAULT_LEASE,
        lock_wait: float = DEFAULT_WAIT,
        freshness: Freshness | None = None,
        generation_check: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
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
        self.namespace = resolve_namespace(namespace)
        self.codec = Codec(serializer)
        self.clock = clock
        self.recorder = recorder if recorder is not None else metrics.recorder
        self.counts = [self.recorder.register(tier.name) for tier in self.tiers]
        self.remote = any(tier.stores_bytes for tier in self.tiers)
        # Optional tier attributes: a shared circuit breaker, a largest storable value.
        self.breakers: tuple[CircuitBreaker | None, ...] = tuple(
            getattr(tier, "breaker", None) for tier in self.tiers
        )
        for tier, breaker in zip(self.tiers, self.breakers, strict=True):
            if breaker is not None and not breaker.name:
                breaker.name = tier.name  # for its log lines
        self.limits: tuple[int | None, ...] = tuple(
            getattr(tier, "max_value_bytes", None) for tier in self.tiers
        )
        self.measure = any(limit is not None for limit in self.limits)
        # Stampede protection: one computation per key in this process (single-flight)
        # and, through a shared tier's lease, across execution environments.
        self.flights = SingleFlight()
        self._lease_tiers = tuple(
            index
            for index, tier in enumerate(self.tiers)
            if tier.stores_bytes and isinstance(tier, LeaseTier)
        )
        self.lock = bool(self._lease_tiers) if lock is None else bool(lock)
        self.lock_lease = check_ttl(lock_lease, "lock_lease") or DEFAULT_LEASE
        self.lock_wait = check_ttl(lock_wait, "lock_wait") or DEFAULT_WAIT
        self.freshness = freshness if freshness is not None else Freshness()
        self.stale_served = 0
        # invalidate_all(): a generation counter in a shared tier, part of every key.
        self.generation = 0
        self.on_generation: list[Callable[[], None]] = []  # e.g. a decorator's key memo
        self.generation_check = resolve_generation_check(generation_check)
        self.monotonic = monotonic
        self._counter_index = next(
            (
                index
                for index, tier in enumerate(self.tiers)
                if tier.stores_bytes and isinstance(tier, CounterTier)
            ),
            None,
        )
        # Read the shared generation on first use, then at most every generation_check s.
        self.generation_due = -math.inf if self._counter_index is not None else math.inf

    def __repr__(self) -> str:
        return (
            f"TieredCache(namespace={self.namespace!r}, ttl={self.default_ttl}, "
            f"tiers={list(self.tiers)})"
        )

    # ------------------------------------------------------------ keys

    def full_key(self, key: str) -> str:
        """The key as the tiers store it: ``namespace:key``, shortened if too long."""
        if not isinstance(key, str):
            raise TypeError(f"cache keys are str, got {type(key).__name__}")
        if self.monotonic() >= self.generation_due:
            self.check_generation()
        if self.generation:
            return fit_key(f"{self.namespace}:~g{self.generation}:{key}")
        return fit_key(f"{self.namespace}:{key}")

    # ------------------------------------------------------------ generations

    @property
    def _generation_key(self) -> str:
        return f"{self.namespace}{GENERATION_SUFFIX}"

    def check_generation(self) -> bool:
        """Adopt a generation another environment set; ``True`` when it changed.

        Reads the shared counter at most every ``generation_check`` seconds, so
        entries another environment invalidated stay visible here for at most that.
        """
        now = self.monotonic()
        if now < self.generation_due:
            return False
        self.generation_due = now + self.generation_check
        index = self._counter_index
        if index is None or self._skip(index):
            return False
        tier: Any = self.tiers[index]
        try:
            shared = int(tier.read_counter(self._generation_key))
        except Exception as exc:
            self._failed(index, "read generation", exc)
            return False
        self._ok(index)
        if shared == self.generation:
            return False
        self._adopt(shared)
        return True

    def _adopt(self, generation: int) -> None:
        self.generation = generation
        for forget in self.on_generation:
            forget()
        for index, tier in enumerate(self.tiers):
            if not tier.stores_bytes:  # this environment's memory: drop the old generations
                self._clear_tier(index)

    def invalidate_all(self) -> None:
        """Make every entry of this cache unreachable at once, in every environment.

        Bumps the generation counter in the first shared tier that keeps one (Redis
        ``INCR``, DynamoDB ``UpdateItem ADD``) instead of scanning keys; other
        environments follow within ``generation_check`` seconds. Without such a
        tier, or if the bump fails, every entry is deleted instead.
        """
        index = self._counter_index
        if index is not None:
            tier: Any = self.tiers[index]
            try:
                generation = int(tier.bump_counter(self._generation_key))
            except Exception as exc:
                self._failed(index, "bump generation", exc)
            else:
                self._ok(index)
                self._adopt(generation)
                return
            self.clear()
            return
        self._adopt(self.generation + 1)

    # ------------------------------------------------------------ failing open

    def _failed(self, index: int, operation: str, exc: Exception) -> None:
        if isinstance(exc, ConfigurationError):
            raise exc
        self.counts[index].errors += 1
        tier = self.tiers[index]
        logger.warning(
            "stratacache tier %s %s failed, carrying on without it: %s: %s",
            tier.name,
            operation,
            type(exc).__name__,
            _redact(exc),
        )
        breaker = self.breakers[index]
        if breaker is not None and not isinstance(exc, SerializationError):
            breaker.failure()  # a bad entry says nothing about the tier's health

    def _skip(self, index: int, write: bool = False) -> bool:
        """Whether tier ``index``'s breaker says skip it now (counted as an error, no wait)."""
        breaker = self.breakers[index]
        if breaker is None or breaker.allow(write):
            return False
        self.counts[index].errors += 1
        return True

    def _ok(self, index: int) -> None:
        breaker = self.breakers[index]
        if breaker is not None:
            breaker.success()

    def _too_big(self, index: int, full_key: str, payload: tuple[int, bytes]) -> bool:
        """Whether the enveloped ``payload`` exceeds tier ``index``'s limit (counted, logged)."""
        limit = self.limits[index]
        if limit is None:
            return False
        size = HEADER_SIZE + len(payload[1])
        if size <= limit:
            return False
        self.counts[index].errors += 1
        logger.warning(
            "stratacache tier %s skipped %s: %d bytes exceed its limit of %d",
            self.tiers[index].name,
            full_key,
            size,
            limit,
        )
        return True

    def _tier_lifetime(self, tier: Tier, ttl: float | None) -> float | None:
        return tier.ttl if tier.ttl is not None else ttl

    # ------------------------------------------------------------ lookups

    def _decode(self, index: int, full_key: str, raw: object, now: float) -> Envelope | None:
        """Value, expiry and refresh facts of what a tier returned, or ``None`` if unusable."""
        tier = self.tiers[index]
        if not tier.stores_bytes:
            entry = (
                Envelope(raw.value, None, raw.stale_at, raw.delta)
                if type(raw) is Fresh
                else Envelope(raw, None)
            )
            if not index:  # the fastest tier is never promoted from, its expiry is not needed
                return entry
            left = tier.remaining_ttl(full_key)
            if left is MISS:
                return None
            return entry._replace(expires_at=None if left is None else now + left)
        try:
            envelope = self.codec.decode(raw)
        except SerializationError as exc:
            self._failed(index, "decode", exc)
            return None
        if envelope.expires_at is not None and envelope.expires_at <= now:
            return None
        return envelope

    def lookup(self, full_key: str) -> object | Missing:
        """Find ``full_key`` in the fastest tier that has it and back-fill the faster ones."""
        entry = self.lookup_entry(full_key)
        return MISS if entry is MISS else entry.value

    def lookup_entry(self, full_key: str) -> Envelope | Missing:
        """Like :meth:`lookup`, with the entry's expiry and refresh facts."""
        now = self.clock()
        for index, tier in enumerate(self.tiers):
            counts = self.counts[index]
            breaker = self.breakers[index]
            if breaker is not None and not breaker.allow():
                counts.errors += 1
                continue
            try:
                raw = tier.get(full_key)
            except Exception as exc:
                self._failed(index, "get", exc)
                continue
            if breaker is not None:
                breaker.success()
            if raw is MISS:
                counts.misses += 1
                continue
            found = self._decode(index, full_key, raw, now)
            if found is None:
                counts.misses += 1
                continue
            counts.hits += 1
            if index:
                self._promote(full_key, index, found, raw)
            recorder = self.recorder
            if recorder.clock() >= recorder.deadline:
                recorder.publish()
            return found
        self.recorder.maybe_publish(self.recorder.clock())
        return MISS

    def _promote(self, full_key: str, found_in: int, entry: Envelope, raw: object) -> None:
        """Back-fill the tiers faster than ``found_in``, never beyond the entry's expiry."""
        # The clock is read now, not when the lookup began: the slower tiers' round
        # trips (or a timeout) have passed since, and a lifetime computed from the
        # lookup's start would let the copy outlive the entry by that much.
        now = self.clock()
        value = entry.value
        payload: tuple[int, bytes] | None = None
        if self.tiers[found_in].stores_bytes:
            payload = Codec.payload_of(raw)  # type: ignore[arg-type]
        for index in range(found_in):
            tier = self.tiers[index]
            lifetime = _lifetime(entry.expires_at, now, tier.ttl)
            if lifetime is MISS:
                return
            if self._skip(index, write=True):
                continue
            try:
                if payload is None and (tier.stores_bytes or self.limits[index] is not None):
                    payload = self.codec.payload(value)
                if payload is not None and self._too_big(index, full_key, payload):
                    continue
                if tier.stores_bytes:
                    assert payload is not None
                    blob = Codec.wrap(payload, _expiry(now, lifetime), entry.stale_at, entry.delta)
                    tier.set(full_key, blob, lifetime)
                elif entry.stale_at is not None:
                    tier.set(full_key, Fresh(value, entry.stale_at, entry.delta), lifetime)
                else:
                    tier.set(full_key, value, lifetime)
            except SerializationError as exc:
                _warn_unserializable(full_key, exc)
                return
            except Exception as exc:
                self._failed(index, "promote", exc)
            else:
                self._ok(index)

    # ------------------------------------------------------------ writes

    def store(
        self, full_key: str, value: object, ttl: float | None = _INHERIT, delta: float = 0.0
    ) -> bool:
        """Write ``value`` to every tier; return ``False`` when it could not be serialized.

        ``delta`` is how long computing the value took (early refresh uses it).
        """
        soft, hard = self.freshness.lifetimes(self.default_ttl if ttl is _INHERIT else ttl)
        now = self.clock()
        stale_at = _expiry(now, soft) if self.freshness.enabled else None
        if not self.freshness.enabled:
            delta = 0.0
        payload: tuple[int, bytes] | None = None
        if self.remote or self.measure:
            try:
                payload = self.codec.payload(value)
            except SerializationError as exc:
                if self.remote:
                    _warn_unserializable(full_key, exc)
                    return False
                # memory-only: the value needs no bytes, so no size can be held against it
        for index, tier in enumerate(self.tiers):
            lifetime = self._tier_lifetime(tier, hard)
            if self._skip(index, write=True):
                continue
            if payload is not None and self._too_big(index, full_key, payload):
                continue
            try:
                if tier.stores_bytes:
                    assert payload is not None
                    blob = Codec.wrap(payload, _expiry(now, lifetime), stale_at, delta)
                    tier.set(full_key, blob, lifetime)
                elif stale_at is not None:
                    tier.set(full_key, Fresh(value, stale_at, delta), lifetime)
                else:
                    tier.set(full_key, value, lifetime)
            except Exception as exc:
                self._failed(index, "set", exc)
            else:
                self._ok(index)
        return True

    # ------------------------------------------------------------ compute once

    def _lease_index(self) -> int | None:
        """The first shared tier that can hold a lease and is not known to be down."""
        if not self.lock:
            return None
        for index in self._lease_tiers:
            breaker = self.breakers[index]
            # A lease is a write: after a failed read it waits, like the value's write.
            if breaker is None or breaker.allow(write=True):
                return index
        return None

    def _acquire(self, index: int, full_key: str, token: str) -> bool | None:
        """Try for the lease: ``True`` held, ``False`` someone else holds it, ``None`` failed."""
        tier: Any = self.tiers[index]
        try:
            got = bool(tier.acquire_lock(full_key + LOCK_SUFFIX, token, self.lock_lease))
        except Exception as exc:
            self._failed(index, "lock", exc)
            return None
        self._ok(index)
        return got

    def _release(self, index: int, full_key: str, token: str) -> None:
        tier: Any = self.tiers[index]
        try:
            tier.release_lock(full_key + LOCK_SUFFIX, token)
        except Exception as exc:
            self._failed(index, "unlock", exc)

    def _filled(self, index: int, full_key: str) -> bool:
        """Whether tier ``index`` now holds a live entry (not counted: a waiter's poll)."""
        try:
            raw = self.tiers[index].get(full_key)
        except Exception as exc:
            self._failed(index, "get", exc)
            return False
        if raw is MISS:
            return False
        try:
            envelope = self.codec.decode(raw)
        except SerializationError:
            return False
        return envelope.expires_at is None or envelope.expires_at > self.clock()

    def _wait_for_leader(self, index: int, full_key: str, token: str) -> Envelope | bool:
        """Poll while another caller holds the lease.

        Returns the holder's entry once it lands, ``True`` when the lease ran out
        (its holder died) and this caller took it over, ``False`` when the wait is up.
        """
        deadline = time.monotonic() + self.lock_wait
        pause = 0.005
        while time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.1)
            if self._filled(index, full_key):
                found = self.lookup_entry(full_key)
                if found is not MISS:
                    return found
            if self._acquire(index, full_key, token):
                return True
        return False

    def _computed(
        self,
        full_key: str,
        compute: Callable[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> R:
        started = time.monotonic()
        result = compute(*args, **kwargs)
        self.store(full_key, result, delta=time.monotonic() - started)
        return result

    def _fill(
        self,
        full_key: str,
        compute: Callable[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> R:
        """A full miss: compute under the lease when one is to be had, else wait or compute."""
        index = self._lease_index()
        if index is None:
            return self._computed(full_key, compute, args, kwargs)
        token = uuid.uuid4().hex
        got: bool | None | Envelope = self._acquire(index, full_key, token)
        if got is False:
            got = self._wait_for_leader(index, full_key, token)
            if isinstance(got, Envelope):
                return got.value  # type: ignore[return-value]
            # got is True: the lease was ours after its holder vanished; False: waited enough
        try:
            if got and self._filled(index, full_key):  # the previous holder just finished
                found = self.lookup_entry(full_key)
                if found is not MISS:
                    return found.value  # type: ignore[return-value]
            return self._computed(full_key, compute, args, kwargs)
        finally:
            if got:
                self._release(index, full_key, token)

    def _refresh_stale(
        self,
        full_key: str,
        entry: Envelope,
        compute: Callable[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> R:
        """One caller recomputes a stale or early-refresh entry; everyone else serves it."""
        stale = entry.stale_at is not None and self.clock() >= entry.stale_at
        if not self.flights.try_lead(full_key):
            return cast("R", self._served(entry, stale))
        try:
            index = self._lease_index()
            token = uuid.uuid4().hex
            got = None if index is None else self._acquire(index, full_key, token)
            if got is False:  # another environment is refreshing it
                return cast("R", self._served(entry, stale))
            try:
                return self._computed(full_key, compute, args, kwargs)
            except Exception as exc:
                if not stale:
                    raise
                logger.warning(
                    "stratacache served a stale %s: refreshing it failed: %s: %s",
                    full_key,
                    type(exc).__name__,
                    _redact(exc),
                )
                return cast("R", self._served(entry, stale))
            finally:
                if got and index is not None:
                    self._release(index, full_key, token)
        finally:
            self.flights.release(full_key)

    def _served(self, entry: Envelope, stale: bool) -> Any:
        """The value of an entry served instead of recomputed (counted when stale)."""
        if stale:
            self.stale_served += 1
        return entry.value

    def get_or_compute(
        self,
        full_key: str,
        compute: Callable[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> R:
        """The decorators' slow path: look up, else compute once and write every tier.

        Concurrent callers in this process share one computation; across
        environments the lease lock (when a shared tier can hold one) does the same.
        """
        entry = self.lookup_entry(full_key)
        if entry is not MISS:
            if entry.stale_at is not None and self.freshness.refresh_due(
                entry.stale_at, entry.delta, self.clock()
            ):
                return self._refresh_stale(full_key, entry, compute, args, kwargs)
            return entry.value  # type: ignore[return-value]
        return self.flights.do(full_key, lambda: self._fill(full_key, compute, args, kwargs))

    async def aget_or_compute(
        self,
        full_key: str,
        compute: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """Like :meth:`get_or_compute` for coroutines; network I/O runs in a worker thread."""
        import asyncio  # already loaded when a coroutine runs; import stratacache skips its ~20 ms

        async def off_loop(fn: Callable[..., Any], *fn_args: Any) -> Any:
            return await asyncio.to_thread(fn, *fn_args) if self.remote else fn(*fn_args)

        entry = await off_loop(self.lookup_entry, full_key)
        if entry is not MISS:
            stale = entry.stale_at is not None and self.clock() >= entry.stale_at
            if not self.freshness.refresh_due(entry.stale_at, entry.delta, self.clock()):
                return entry.value
            if not self.flights.try_lead(full_key):
                return self._served(entry, stale)
            try:
                return await self._acomputed(full_key, compute, args, kwargs, off_loop)
            except Exception:
                if not stale:
                    raise
                logger.warning("stratacache served a stale %s: refreshing it failed", full_key)
                return self._served(entry, stale)
            finally:
                self.flights.release(full_key)

        async def fill() -> Any:
            index = self._lease_index()
            if index is None:
                return await self._acomputed(full_key, compute, args, kwargs, off_loop)
            token = uuid.uuid4().hex
            got = await off_loop(self._acquire, index, full_key, token)
            if got is False:
                got = await off_loop(self._wait_for_leader, index, full_key, token)
                if isinstance(got, Envelope):
                    return got.value
            try:
                return await self._acomputed(full_key, compute, args, kwargs, off_loop)
            finally:
                if got:
                    await off_loop(self._release, index, full_key, token)

        return await self.flights.ado(full_key, fill)

    async def _acomputed(
        self,
        full_key: str,
        compute: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        off_loop: Callable[..., Any],
    ) -> Any:
        started = time.monotonic()
        result = await compute(*args, **kwargs)
        await off_loop(self.store, full_key, result, _INHERIT, time.monotonic() - started)
        return result

    # ------------------------------------------------------------ imperative API

    def get(self, key: str, default: object = None) -> object:
        """The cached value of ``key``, or ``default`` when no tier has it."""
        value = self.lookup(self.full_key(key))
        return default if value is MISS else value

    def set(self, key: str, value: object, ttl: float | None = _INHERIT) -> None:
        """Cache ``value`` under ``key`` in every tier (``ttl`` seconds, else the default)."""
        self.store(self.full_key(key), value, ttl if ttl is _INHERIT else check_ttl(ttl))

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """The cached values of those ``keys`` that some tier has, promoted like :meth:`get`."""
        wanted = {self.full_key(key): key for key in keys}
        found: dict[str, object] = {}
        now = self.clock()
        missing = list(wanted)
        for index, tier in enumerate(self.tiers):
            if not missing:
                break
            counts = self.counts[index]
            if self._skip(index):
                continue
            try:
                raws = tier.get_many(missing)
            except Exception as exc:
                self._failed(index, "get_many", exc)
                continue
            self._ok(index)
            still: list[str] = []
            for full_key, raw in zip(missing, raws, strict=True):
                hit = None if raw is MISS else self._decode(index, full_key, raw, now)
                if hit is None:
                    counts.misses += 1
                    still.append(full_key)
                    continue
                counts.hits += 1
                found[wanted[full_key]] = hit.value
                if index:
                    self._promote(full_key, index, hit, raw)
            missing = still
        return found

    def set_many(self, items: Mapping[str, object], ttl: float | None = _INHERIT) -> None:
        """Cache several values at once: one batch call per tier."""
        default = self.default_ttl if ttl is _INHERIT else check_ttl(ttl)
        now = self.clock()
        values = {self.full_key(key): value for key, value in items.items()}
        payloads: dict[str, tuple[int, bytes]] = {}
        if self.remote or self.measure:
            for full_key, value in list(values.items()):
                try:
                    payloads[full_key] = self.codec.payload(value)
                except SerializationError as exc:
                    if self.remote:
                        _warn_unserializable(full_key, exc)
                        del values[full_key]
        for index, tier in enumerate(self.tiers):
            lifetime = self._tier_lifetime(tier, default)
            if self._skip(index, write=True):
                continue
            batch: Mapping[str, object] = values
            if tier.stores_bytes:
                expires_at = _expiry(now, lifetime)
                batch = {k: Codec.wrap(p, expires_at) for k, p in payloads.items()}
            if self.limits[index] is not None:
                batch = {
                    k: v
                    for k, v in batch.items()
                    if k not in payloads or not self._too_big(index, k, payloads[k])
                }
            try:
                tier.set_many(batch, lifetime)
            except Exception as exc:
                self._failed(index, "set_many", exc)
            else:
                self._ok(index)

    def delete(self, key: str, *, strict: bool = False) -> bool:
        """Remove ``key`` from every tier; ``True`` when some tier had it.

        A tier that fails is counted and skipped, like any cache failure; with
        ``strict=True`` the first failure is raised after every tier was tried (for
        callers that retry, such as a stream handler).
        """
        full_key = self.full_key(key)
        removed = False
        failure: Exception | None = None
        # Deletes go through even while a breaker is open: an invalidation skipped now
        # would leave a stale entry to be served once the tier is back.
        for index, tier in enumerate(self.tiers):
            try:
                removed = tier.delete(full_key) or removed
            except Exception as exc:
                self._failed(index, "delete", exc)
                failure = failure or exc
            else:
                self._ok(index)
        if strict and failure is not None:
            raise InvalidationError(f"could not delete {full_key} from every tier") from failure
        return removed

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several keys from every tier."""
        full_keys = [self.full_key(key) for key in keys]
        for index, tier in enumerate(self.tiers):  # not skipped, as in delete()
            try:
                tier.delete_many(full_keys)
            except Exception as exc:
                self._failed(index, "delete_many", exc)
            else:
                self._ok(index)

    def _entries(self, full_key: str) -> Iterable[tuple[int, object, float | None]]:
        """(tier index, raw, expires_at) of every tier holding a live ``full_key``."""
        now = self.clock()
        for index, tier in enumerate(self.tiers):
            if self._skip(index):
                continue
            try:
                raw = tier.get(full_key)
                self._ok(index)
                if raw is MISS:
                    continue
                if tier.stores_bytes:
                    envelope = self.codec.decode(raw)
                    expires_at = envelope.expires_at
                else:
                    left = tier.remaining_ttl(full_key)
                    if left is MISS:
                        continue
                    expires_at = None if left is None else now + left
            except Exception as exc:
                self._failed(index, "read", exc)
                continue
            if expires_at is None or expires_at > now:
                yield index, raw, expires_at

    def has(self, key: str) -> bool:
        """Whether some tier holds a live entry for ``key`` (no promotion, not counted)."""
        return next(iter(self._entries(self.full_key(key))), None) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` in the fastest tier holding it.

        ``None`` when no tier holds it; ``math.inf`` when it never expires.
        """
        now = self.clock()
        for _, _, expires_at in self._entries(self.full_key(key)):
            return math.inf if expires_at is None else expires_at - now
        return None

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new lifetime in every tier holding it (capped by a tier's own ttl).

        Returns ``True`` when some tier held the key.
        """
        ttl = check_ttl(ttl)
        full_key = self.full_key(key)
        now = self.clock()
        touched = False
        for index, raw, _ in list(self._entries(full_key)):
            tier = self.tiers[index]
            lifetime = (
                _lifetime(None, now, tier.ttl)
                if ttl is None
                else _lifetime(now + ttl, now, tier.ttl)
            )
            assert lifetime is not MISS
            if self._skip(index, write=True):
                continue
            try:
                if tier.stores_bytes:
                    payload = Codec.payload_of(raw)  # type: ignore[arg-type]
                    tier.set(full_key, Codec.wrap(payload, _expiry(now, lifetime)), lifetime)
                else:
                    tier.set(full_key, raw, lifetime)
                touched = True
            except Exception as exc:
                self._failed(index, "expire", exc)
            else:
                self._ok(index)
        return touched

    def stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses and errors of each tier of this cache since it was made."""
        out: dict[str, dict[str, int]] = {}
        for tier, counts in zip(self.tiers, self.counts, strict=True):
            out[tier.name] = counts.snapshot()
            if isinstance(tier, Sized):
                out[tier.name]["size"] = len(tier)
        return out

    def health_check(self, probe_ttl: float = 60.0) -> dict[str, dict[str, Any]]:
        """Write, read back, verify and delete a probe key in every tier; report each tier.

        Probes are sent even to a tier whose breaker is open, are not counted in
        the metrics, and feed the tier's breaker (a tier that answers closes it).

        Returns:
            ``{tier name: {"status": "ok" | "error", "latency_ms": float,
            "error": str | None, "breaker": "closed" | "open" | "half-open" | None}}``

        Example:
            >>> TieredCache([MemoryTier()]).health_check()["L1"]["status"]
            'ok'
        """
        probe_key = self.full_key(f"__health__:{uuid.uuid4().hex}")
        token = uuid.uuid4().hex
        report: dict[str, dict[str, Any]] = {}
        for index, tier in enumerate(self.tiers):
            error: str | None = None
            started = time.perf_counter()
            try:
                stored = self.codec.encode(token, self.clock() + probe_ttl)
                tier.set(probe_key, stored if tier.stores_bytes else token, probe_ttl)
                raw = tier.get(probe_key)
                if raw is MISS:
                    error = "the probe key written was not found"
                elif (self.codec.decode(raw).value if tier.stores_bytes else raw) != token:
                    error = "the probe key read back another value"
                tier.delete(probe_key)
            except Exception as exc:
                error = f"{type(exc).__name__}: {_redact(exc)}"
            latency_ms = (time.perf_counter() - started) * 1000
            breaker = self.breakers[index]
            if breaker is not None:
                if error is None:
                    breaker.success()
                else:
                    breaker.failure()
            report[tier.name] = {
                "status": "ok" if error is None else "error",
                "latency_ms": round(latency_ms, 3),
                "error": error,
                "breaker": None if breaker is None else breaker.state,
            }
        return report

    def clear(self) -> None:
        """Remove every entry of this cache's namespace from every tier (all generations)."""
        for index in range(len(self.tiers)):  # not skipped, as in delete()
            self._clear_tier(index)

    def _clear_tier(self, index: int) -> None:
        tier = self.tiers[index]
        try:
            tier.clear(f"{self.namespace}:")  # every generation: ns:key and ns:~gN:key
        except Exception as exc:
            self._failed(index, "clear", exc)
        else:
            self._ok(index)

    def close(self) -> None:
        """Release the tiers' connections; they reconnect on next use."""
        for tier in self.tiers:
            close = getattr(tier, "close", None)
            if close is not None:
                close()


def _redact(exc: BaseException) -> str:
    """An exception's message with any ``scheme://user:password@`` credentials masked."""
    return _CREDENTIALS.sub(r"\1***@", str(exc))


def _expiry(now: float, lifetime: float | None) -> float | None:
    return None if lifetime is None else now + lifetime


def _warn_unserializable(full_key: str, exc: SerializationError) -> None:
    logger.warning("stratacache left %s uncached: %s", full_key, exc)
