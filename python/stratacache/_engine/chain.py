"""The chain of tiers: how records move through them.

Reading (the fastest tier holding a usable entry, promoted into the faster
ones with its remaining lifetime), writing (every shared-tier write
conditional on the version of the record the trace saw there; every memory
write atomic with the invalidation marks), invalidation with tombstones, the
namespace generation, and the batch forms of each. Every tier call goes
through the tier's :class:`~stratacache._engine.guard.Guard`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, Final

from stratacache._engine import feed as feeds
from stratacache._engine.generations import Generation
from stratacache._engine.guard import FAILED, NOTHING_SEEN, Blobs, Guard, Trace
from stratacache._engine.keepers import Keepers
from stratacache._engine.marks import Marks
from stratacache._engine.singleflight import SingleFlight
from stratacache.envelope import (
    LEASE,
    VALUE,
    Codec,
    OversizeError,
    Payload,
    Record,
    new_version,
    version_of,
)
from stratacache.errors import PartialReadError, SerializationError
from stratacache.freshness import Fresh, Freshness
from stratacache.keys import KeyLayout
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import ANY, FOREIGN, MISS, Foreign, Missing, Tier
from stratacache.tiers.memory import MemoryTier

logger = logging.getLogger("stratacache")

INHERIT: Final[Any] = object()
"""The ttl argument's default: the cache's own ``default_ttl``."""
TOMBSTONE_TTL: Final = 900.0
"""Seconds an invalidation's tombstone refuses older fills: Lambda's longest invocation."""


def remaining_lifetime(
    expires_at: float | None, now: float, cap: float | None
) -> float | None | Missing:
    """Seconds an entry may still live in a tier capped at ``cap``; ``MISS`` when none left.

    Example:
        >>> remaining_lifetime(100.0, 40.0, 30.0), remaining_lifetime(None, 0.0, None)
        (30.0, None)
    """
    left = None if expires_at is None else expires_at - now
    if left is not None and left <= 0:
        return MISS
    if cap is None:
        return left
    return cap if left is None else min(left, cap)


def expiry_at(now: float, lifetime: float | None) -> float | None:
    return None if lifetime is None else now + lifetime


def _order(guards: Sequence[Guard], slowest_first: bool) -> tuple[Guard, ...]:
    """The shared tiers in the order given, then memory."""
    sign = -1 if slowest_first else 1
    return tuple(
        sorted(guards, key=lambda g: (not g.remote, sign * g.index if g.remote else g.index))
    )


def note(trace: Trace, at: tuple[int, str], record: Record, now: float) -> None:
    """Remember what a trace saw: what its writes expect, and whose lease it must respect."""
    lease = record.expires_at if record.kind is LEASE else None
    trace.seen[at] = (
        record.version,
        record.keep_until,
        lease if lease is not None and lease > now else 0.0,
    )


class Chain:
    """The tiers of one cache, fastest first, and the records moving through them.

    Example:
        >>> from stratacache.envelope import Codec
        >>> from stratacache.freshness import Freshness
        >>> from stratacache.keys import KeyLayout
        >>> from stratacache.metrics import MetricsRecorder
        >>> chain = Chain([MemoryTier()], layout=KeyLayout(("ns",)), codec=Codec(None),
        ...               default_ttl=60, recorder=MetricsRecorder(), freshness=Freshness(),
        ...               generation_check=5.0, tombstone_ttl=900.0)
        >>> chain.write("ns|k", "v", chain.begin())
        False
        >>> chain.read("ns|k", chain.begin()).value
        'v'
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        layout: KeyLayout,
        codec: Codec,
        default_ttl: float | None,
        recorder: MetricsRecorder,
        freshness: Freshness,
        generation_check: float,
        tombstone_ttl: float,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.tiers = tuple(tiers)
        self.layout = layout
        self.codec = codec
        self.default_ttl = default_ttl
        self.recorder = recorder
        self.freshness = freshness
        self.tombstone_ttl = tombstone_ttl
        self.clock = clock or time.time
        self.monotonic = monotonic or time.monotonic
        self.guards = tuple(
            Guard(tier, index, recorder.register(tier.name)) for index, tier in enumerate(tiers)
        )
        self.counts = [guard.counts for guard in self.guards]
        self.remote = any(guard.remote for guard in self.guards)
        self.memory = tuple(guard for guard in self.guards if not guard.remote)
        self.write_order = _order(self.guards, slowest_first=True)
        """Shared tiers slowest first, memory last: a write a slower tier refused (its
        tombstone says the value is too old) goes to no faster tier, so no faster tier
        is ever newer than a slower one, whatever it evicted. A fill that holds the
        lease writes its tier first instead (:attr:`lease_order`): the lease it
        replaces already proves no invalidation came between, and waiters see the
        value one write sooner."""
        self.lease_order = _order(self.guards, slowest_first=False)
        self.measure = any(guard.limit is not None for guard in self.guards)
        self.flights = SingleFlight()
        self.marks = Marks()
        self._follow_generation(generation_check)
        first = self.tiers[0] if self.tiers else None
        self.l1: MemoryTier | None = (
            first if isinstance(first, MemoryTier) and not freshness.enabled else None
        )
        """The memory tier the decorators' fast path reads directly (its ``entries``,
        ``touch`` and ``timer``), or ``None`` when every call takes the full path
        (freshness facts live in L1)."""
        self.stale_served = 0
        self.warned = False
        """Whether a value the serializer cannot hold was logged (once per cache)."""

    def _follow_generation(self, check_every: float) -> None:
        """The namespace generation, where it is kept, and the feed read with it."""
        self.generation = Generation(
            check_every, self.clock, any(g.remote and g.counter for g in self.guards)
        )
        self.keepers = Keepers(self.guards, self.generation, self.layout.generation_key)
        self.counter = self.keepers.counter
        """The guard of the shared tier that keeps the namespace generation."""
        self.generation.on_change.append(self._forget_generation)
        self.checks = feeds.Checks(
            self.counter, self.layout, self.generation, self.memory, self.marks, self.flights,
            forget_all=self._forget_generation, keepers=self.keepers,
        )  # fmt: skip
        self.feed = self.checks.feed
        """This environment's place in the namespace's invalidation feed, read with the
        generation (``None``: the counter's tier keeps no feed)."""

    def begin(self, force: bool = False) -> Trace:
        """A new trace; ``force`` makes its writes unconditional (explicit writes)."""
        return Trace(self.monotonic(), self.marks.epoch, force, self.generation.value)

    # ------------------------------------------------------------ generations

    def check_generation(self, trace: Trace | None = None, full_key: str | None = None) -> bool:
        """Read the shared generation (and the feed) now; ``True`` when memory's copy of
        ``full_key`` (of anything, without one) is no longer current
        (:meth:`~stratacache._engine.feed.Checks.check`)."""
        return self.checks.check(trace, full_key)

    def generation_moved(self, trace: Trace | None = None, full_key: str | None = None) -> bool:
        """Whether a check of the shared generation is due and finds memory's copy of
        ``full_key`` stale (:meth:`check_generation`; memory no longer holds it)."""
        due = self.generation.due <= self.generation.clock()
        return due and self.check_generation(trace, full_key)

    def _forget_generation(self) -> None:
        """A newer generation: nothing this environment holds or is computing is current."""
        self.marks.mark_all(then=self.clear_memory)
        self.flights.forget()

    def clear_memory(self) -> None:
        for guard in self.memory:
            guard.clear(self.layout.prefix)

    # ------------------------------------------------------------ reading records

    def accept(
        self, guard: Guard, full_key: str, raw: object, now: float, trace: Trace
    ) -> Record | None:
        """The usable value entry in what a tier returned, else ``None`` (a counted miss)."""
        at = (guard.index, full_key)
        if raw is MISS:
            guard.counts.misses += 1
            trace.seen[at] = NOTHING_SEEN
            return None
        if not guard.remote:
            left = guard.tier.remaining_ttl(full_key)
            if left is MISS:
                guard.counts.misses += 1
                return None
            expires_at = None if left is None else now + left
            if type(raw) is Fresh:
                return Record(
                    VALUE, raw.value, b"", self.generation.value, expires_at, None,
                    raw.stale_at, raw.delta,
                )  # fmt: skip
            return Record(VALUE, raw, b"", self.generation.value, expires_at, None)
        if type(raw) is not bytes and isinstance(raw, Foreign):
            guard.bad_entry(full_key, raw.what)
            trace.seen[at] = (FOREIGN if raw.version is None else raw.version, None, 0.0)
            return None
        try:
            record = self.codec.decode(full_key, raw)
        except SerializationError as exc:
            guard.bad_entry(full_key, str(exc))
            version = version_of(raw) if isinstance(raw, bytes) and len(raw) >= 12 else FOREIGN
            trace.seen[at] = (version, None, 0.0)
            return None
        self.note(trace, at, record, now)
        if record.kind is not VALUE or (record.expires_at is not None and record.expires_at <= now):
            guard.counts.misses += 1
            return None
        if record.generation != self.generation.value:
            if record.generation < self.generation.value:
                guard.counts.misses += 1
                return None
            self.generation.observe(record.generation)  # proof of a bump elsewhere
        return record

    note = staticmethod(note)

    def read(self, full_key: str, trace: Trace) -> Record | None:
        """The entry of ``full_key`` from the fastest tier holding it, promoted into faster ones.

        A memory hit is served only once the shared generation, when its check is
        due, has been read: another environment's ``invalidate_all()`` reaches
        this one within the check's period on every read path.
        """
        now = self.clock()
        for guard in self.guards:
            if not guard.allowed(trace):
                continue
            raw = self.checks.read(guard, full_key, trace)
            trace.generation = self.generation.value
            if raw is FAILED:
                continue
            record = self.accept(guard, full_key, raw, now, trace)
            if record is None:
                continue
            if self.keepers.distrusted(guard):
                guard.counts.misses += 1  # of a generation this environment cannot tell yet
                continue
            if not guard.remote and self.generation_moved(trace, full_key):
                guard.counts.misses += 1  # a copy from before another environment's bump
                continue
            guard.counts.hits += 1
            if guard.index:
                self.promote(guard.index, [(full_key, record, raw)], trace)
            recorder = self.recorder
            if recorder.clock() >= recorder.deadline:
                recorder.publish()
            return record
        self.recorder.maybe_publish(self.recorder.clock())
        return None

    def read_many(self, full_keys: Sequence[str], trace: Trace) -> dict[str, Record]:
        """The entries some tier has, one batch call per tier, promoted like :meth:`read`."""
        self.generation_moved(trace)
        trace.generation = self.generation.value
        found: dict[str, Record] = {}
        now = self.clock()
        missing = list(dict.fromkeys(full_keys))
        for guard in self.guards:
            if not missing:
                break
            if not guard.allowed(trace) or not self.keepers.checked(guard, trace):
                continue
            trace.generation = self.generation.value
            raws = guard.get_many(missing, trace)
            if raws is FAILED:
                error = guard.last_error
                if not isinstance(error, PartialReadError):
                    continue
                raws = error.found
                guard.counts.errors += error.failed - 1  # the guard counted the call once
            still: list[str] = []
            hits: list[tuple[str, Record, object]] = []
            for full_key, raw in zip(missing, raws, strict=True):
                record = self.accept(guard, full_key, raw, now, trace)
                if record is None:
                    still.append(full_key)
                    continue
                guard.counts.hits += 1
                found[full_key] = record
                hits.append((full_key, record, raw))
            if hits and guard.index:
                self.promote(guard.index, hits, trace)
            missing = still
        return found

    # ------------------------------------------------------------ writing records

    def too_old(self, trace: Trace) -> bool:
        """A trace older than a tombstone's life can no longer tell an invalidation happened."""
        return not trace.force and self.monotonic() - trace.began > self.tombstone_ttl

    def _too_big(self, guard: Guard, full_key: str, size: int) -> bool:
        if guard.limit is None or size <= guard.limit:
            return False
        guard.counts.errors += 1
        logger.warning(
            "stratacache tier %s skipped %s: %d bytes exceed its limit of %d",
            guard.name,
            full_key,
            size,
            guard.limit,
        )
        return True

    def expect(self, guard: Guard, full_key: str, trace: Trace) -> bytes | None:
        return ANY if trace.force else trace.seen.get((guard.index, full_key), NOTHING_SEEN)[0]

    def keep(
        self, guard: Guard, full_key: str, trace: Trace, until: float | None, now: float
    ) -> float | None:
        """Seconds a record is kept: its own life, and no less than the record it replaces."""
        if until is None:
            return None
        kept = trace.seen.get((guard.index, full_key), NOTHING_SEEN)[1]
        if kept is not None:  # a tombstone's protection outlives what replaces it
            until = max(until, kept)
        return max(until - now, 0.001)

    def promote(
        self, found_in: int, hits: Sequence[tuple[str, Record, object]], trace: Trace
    ) -> None:
        """Back-fill the tiers faster than ``found_in`` with ``hits``: one batch per shared tier."""
        # The clock is read now, not when the lookup began: the slower tiers' round
        # trips (or a timeout) have passed since.
        now = self.clock()
        payloads: dict[str, Payload] = {}

        def payload(full_key: str, value: object) -> Payload:
            if full_key not in payloads:
                payloads[full_key] = self.codec.payload(value)
            return payloads[full_key]

        for guard in self.guards[:found_in]:
            if not guard.allowed(trace, write=True) or (guard.remote and self.too_old(trace)):
                continue
            blobs: dict[str, tuple[bytes, bytes | None, float | None]] = {}
            for full_key, record, raw in hits:
                lifetime = remaining_lifetime(record.expires_at, now, guard.tier.ttl)
                if lifetime is MISS:
                    continue
                expires_at = expiry_at(now, lifetime)
                try:
                    if guard.remote:
                        blob = (
                            self.codec.rewrap(full_key, record, raw, expires_at)
                            if isinstance(raw, bytes)
                            else self._wrap(
                                full_key, payload(full_key, record.value), record, expires_at
                            )
                        )
                        if not self._too_big(guard, full_key, len(blob)):
                            keep = self.keep(guard, full_key, trace, expires_at, now)
                            blobs[full_key] = (blob, self.expect(guard, full_key, trace), keep)
                        continue
                    if guard.limit is not None:
                        size = self.codec.overhead + len(payload(full_key, record.value).data)
                        if self._too_big(guard, full_key, size):
                            continue
                except SerializationError as exc:
                    warn_unserializable(full_key, exc)
                    continue
                value = (
                    record.value
                    if record.stale_at is None
                    else Fresh(record.value, record.stale_at, record.delta)
                )
                self._to_memory(guard, trace, {full_key: value}, lifetime)
            if blobs:
                carried = self.keepers.restoring(guard)
                self.keepers.restored(carried, guard.put_many(blobs, trace, carried))

    def _to_memory(
        self, guard: Guard, trace: Trace, values: Mapping[str, object], lifetime: float | None
    ) -> None:
        """Write into a memory tier, atomically with respect to invalidation marks.

        An explicit write (``trace.force``) marks each key as it writes it, so that
        nothing that began earlier writes after it; any other write goes only to
        keys not marked since its trace began.
        """

        def put(keys: list[str]) -> None:
            if len(keys) == 1:
                (key,) = keys
                guard.set(key, values[key], lifetime, trace)
                return
            guard.set_many({key: values[key] for key in keys}, lifetime, trace)

        if not trace.force:
            self.marks.guarded(values, trace.epoch, put)
            return
        for key in values:
            self.marks.mark(key, then=functools.partial(put, [key]))
            self.flights.forget(key)

    def _wrap(
        self, full_key: str, payload: Payload, record: Record, expires_at: float | None
    ) -> bytes:
        return self.codec.wrap(
            full_key,
            payload,
            version=record.version or new_version(),
            generation=record.generation,
            expires_at=expires_at,
            keep_until=None,
            stale_at=record.stale_at,
            delta=record.delta,
        )

    def write(
        self,
        full_key: str,
        value: object,
        trace: Trace,
        *,
        delta: float = 0.0,
        lease: tuple[Guard, bytes] | None = None,
        ttl: float | None = INHERIT,
    ) -> bool:
        """Write a computed ``value`` to every tier; ``True`` when ``lease`` is still to give up.

        Each shared tier (slowest first) takes it only if it still holds the record
        this trace saw there (or, in the ``lease`` guard's tier, this trace's lease,
        which the value replaces); memory only if the key was not invalidated since
        the trace began; a refusal stops the write. ``delta``: how long computing
        took. A value the serializer cannot hold stays out of the shared tiers."""
        freshness = self.freshness
        soft, hard = freshness.lifetimes(self.default_ttl if ttl is INHERIT else ttl)
        now = self.clock()
        stale_at = expiry_at(now, soft) if freshness.enabled else None
        delta = delta if freshness.enabled else 0.0
        payload: Payload | None = None
        shared = self.remote
        if self.remote or self.measure:
            try:
                payload = self.codec.payload(value)
            except OversizeError as exc:
                warn_unserializable(full_key, exc)
                return lease is not None  # too big for any tier, memory included
            except SerializationError as exc:
                # The value needs no bytes in memory, so no size can be held against it
                # there; the shared tiers cannot take it.
                shared = False
                self.warn_unshareable(full_key, exc)
        version = new_version()
        generation = trace.generation
        held = lease[0] if lease is not None else None
        for guard in self.write_order if lease is None else self.lease_order:
            lifetime = guard.tier.ttl if guard.tier.ttl is not None else hard
            if (guard.remote and not shared) or not guard.allowed(trace, write=True):
                continue
            if payload is not None and self._too_big(
                guard, full_key, self.codec.overhead + len(payload.data)
            ):
                continue
            expires_at = expiry_at(now, lifetime)
            if guard.remote:
                if self.too_old(trace):
                    continue
                assert payload is not None
                blob = self.codec.wrap(
                    full_key, payload, version=version, generation=generation,
                    expires_at=expires_at, keep_until=None, stale_at=stale_at, delta=delta,
                )  # fmt: skip
                mine = lease[1] if lease is not None and guard is held else None
                expect = mine if mine is not None else self.expect(guard, full_key, trace)
                keep = self.keep(guard, full_key, trace, expires_at, now)
                done = self.keepers.put(guard, full_key, blob, keep, expect, trace)
                if guard is held and done is not FAILED:
                    held = None  # replaced by the value, or already gone
                if done is False:  # too old for this tier: too old for every faster one
                    break
            else:
                stored = value if stale_at is None else Fresh(value, stale_at, delta)
                self._to_memory(guard, trace, {full_key: stored}, lifetime)
        return held is not None

    def write_many(
        self, values: Mapping[str, object], trace: Trace, ttl: float | None = INHERIT
    ) -> None:
        """Write several values, one batch call per tier, each conditional as in :meth:`write`."""
        lifetime_default = self.default_ttl if ttl is INHERIT else ttl
        now = self.clock()
        values = dict(values)
        payloads: dict[str, Payload] = {}
        local: set[str] = set()  # the shared tiers cannot take these
        if self.remote or self.measure:
            for full_key, value in list(values.items()):
                try:
                    payloads[full_key] = self.codec.payload(value)
                except OversizeError as exc:
                    warn_unserializable(full_key, exc)
                    del values[full_key]
                except SerializationError as exc:
                    local.add(full_key)
                    self.warn_unshareable(full_key, exc)
        generation = trace.generation
        for guard in self.write_order:
            lifetime = guard.tier.ttl if guard.tier.ttl is not None else lifetime_default
            if not values or not guard.allowed(trace, write=True):
                continue
            expires_at = expiry_at(now, lifetime)
            fits = {
                key: value
                for key, value in values.items()
                if key not in payloads
                or not self._too_big(guard, key, self.codec.overhead + len(payloads[key].data))
            }
            if not guard.remote:
                self._to_memory(guard, trace, fits, lifetime)
                continue
            fits = {key: value for key, value in fits.items() if key not in local}
            if self.too_old(trace) or not fits:
                continue
            blobs: Blobs = {
                key: (
                    self.codec.wrap(
                        key, payloads[key], version=new_version(), generation=generation,
                        expires_at=expires_at, keep_until=None,
                    ),
                    self.expect(guard, key, trace),
                    self.keep(guard, key, trace, expires_at, now),
                )
                for key in fits
            }  # fmt: skip
            carried = self.keepers.restoring(guard)
            done = guard.put_many(blobs, trace, carried)
            self.keepers.restored(carried, done)
            if isinstance(done, list):  # keys this tier refused go to no faster tier
                for key, written in zip(blobs, done, strict=True):
                    if not written:
                        del values[key]

    def warn_unshareable(self, full_key: str, exc: SerializationError) -> None:
        """One warning per cache (a decorated function's) that values stay out of its shared
        tiers; none when it has none."""
        if self.remote and not self.warned:
            self.warned = True
            logger.warning(
                "stratacache left %s out of the shared tiers, in memory only: %s"
                " (logged once per cache)",
                full_key,
                exc,
            )

    def stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses and errors of each tier since the cache was made (and L1's size)."""
        out: dict[str, dict[str, int]] = {}
        for guard in self.guards:
            out[guard.name] = guard.counts.snapshot()
            if isinstance(guard.tier, Sized):
                out[guard.name]["size"] = len(guard.tier)
        return out


def warn_unserializable(full_key: str, exc: SerializationError) -> None:
    logger.warning("stratacache left %s uncached: %s", full_key, exc)
