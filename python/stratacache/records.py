"""How records move through the tiers: the machinery under :class:`~stratacache.TieredCache`.

Reading (the fastest tier holding a usable entry, promoted into the faster ones
with its remaining lifetime), writing (every shared-tier write conditional on
the version of the record the call saw there; every memory write atomic with
the invalidation marks), fill leases held in the entry's own key, refresh
locks, freshness, invalidation with tombstones, and the batch forms of each.
:class:`TieredCache` adds the configuration and the public, imperative API.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from stratacache.config import check_ttl
from stratacache.envelope import LEASE, VALUE, Codec, Payload, Record, new_version, version_of
from stratacache.errors import InvalidationError, PartialReadError, SerializationError
from stratacache.freshness import Fresh, Freshness
from stratacache.generations import Generation
from stratacache.keys import KeyLayout, lock_key
from stratacache.metrics import MetricsRecorder
from stratacache.singleflight import SingleFlight
from stratacache.slots import FAILED, NOTHING_SEEN, Call, Marks, Slot, redact
from stratacache.tiers.base import ANY, FOREIGN, MISS, CounterTier, Foreign, Missing

logger = logging.getLogger("stratacache")

INHERIT: Final[Any] = object()
"""The ttl argument's default: the cache's own ``default_ttl``."""
TOMBSTONE_TTL: Final = 900.0
"""Seconds an invalidation's tombstone refuses older fills: Lambda's longest invocation."""

HELD: Final = "held"
"""The lease is this call's."""
WAIT: Final = "wait"
"""Another caller holds a live lease."""


def remaining_lifetime(
    expires_at: float | None, now: float, cap: float | None
) -> float | None | Missing:
    """Seconds an entry may still live in a tier capped at ``cap``; ``MISS`` when none left."""
    left = None if expires_at is None else expires_at - now
    if left is not None and left <= 0:
        return MISS
    if cap is None:
        return left
    return cap if left is None else min(left, cap)


def expiry_at(now: float, lifetime: float | None) -> float | None:
    return None if lifetime is None else now + lifetime


class Records:
    """Reads, writes, leases and invalidations of records, for :class:`TieredCache`.

    Its state is :class:`TieredCache`'s, set up by its constructor; this class
    holds the algorithms that move records, so the public class reads like its API.
    """

    slots: tuple[Slot, ...]
    codec: Codec
    layout: KeyLayout
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    recorder: MetricsRecorder
    flights: SingleFlight
    marks: Marks
    generation: Generation
    freshness: Freshness
    default_ttl: float | None
    remote: bool
    measure: bool
    lock: bool
    lock_lease: float
    tombstone_ttl: float
    stale_served: int
    _write_order: tuple[Slot, ...]
    _lease_slots: list[Slot]
    _lock_slot: Slot | None
    _counter_slot: Slot | None

    def begin(self, force: bool = False) -> Call:
        """A new call's state; ``force`` makes its writes unconditional (explicit writes)."""
        return Call(self.monotonic(), self.marks.epoch, force)

    def check_generation(self, call: Call | None = None) -> bool:
        """Read the shared generation now; ``True`` when another environment had bumped it.

        ``call``: the call this read belongs to, so a timeout here spares it another.
        """
        slot = self._counter_slot
        if slot is None:
            return False
        self.generation.checked()
        shared = slot.run(
            "read generation",
            call,
            cast(CounterTier, slot.tier).read_counter,
            self.layout.generation_key,
        )
        return shared is not FAILED and self.generation.observe(shared)

    # ------------------------------------------------------------ reading records

    def _accept(
        self, slot: Slot, full_key: str, raw: object, now: float, call: Call
    ) -> Record | None:
        """The usable value entry in what a tier returned, else ``None`` (a counted miss)."""
        at = (slot.index, full_key)
        if raw is MISS:
            slot.counts.misses += 1
            call.seen[at] = NOTHING_SEEN
            return None
        if not slot.remote:
            left = slot.tier.remaining_ttl(full_key)
            if left is MISS:
                slot.counts.misses += 1
                return None
            expires_at = None if left is None else now + left
            if type(raw) is Fresh:
                return Record(
                    VALUE, raw.value, b"", self.generation.value, expires_at, None,
                    raw.stale_at, raw.delta,
                )  # fmt: skip
            return Record(VALUE, raw, b"", self.generation.value, expires_at, None)
        if type(raw) is not bytes and isinstance(raw, Foreign):
            slot.bad_entry(full_key, raw.what)
            call.seen[at] = (FOREIGN if raw.version is None else raw.version, None, 0.0)
            return None
        try:
            record = self.codec.decode(full_key, raw)
        except SerializationError as exc:
            slot.bad_entry(full_key, str(exc))
            version = version_of(raw) if isinstance(raw, bytes) and len(raw) >= 12 else FOREIGN
            call.seen[at] = (version, None, 0.0)
            return None
        self._note(call, at, record, now)
        if record.kind is not VALUE or (record.expires_at is not None and record.expires_at <= now):
            slot.counts.misses += 1
            return None
        if record.generation != self.generation.value:
            if record.generation < self.generation.value:
                slot.counts.misses += 1
                return None
            self.generation.observe(record.generation)  # proof of a bump elsewhere
        return record

    @staticmethod
    def _note(call: Call, at: tuple[int, str], record: Record, now: float) -> None:
        """Remember what a call saw: what its writes expect, and whose lease it must respect."""
        lease = record.expires_at if record.kind is LEASE else None
        call.seen[at] = (
            record.version,
            record.keep_until,
            lease if lease is not None and lease > now else 0.0,
        )

    def read(self, full_key: str, call: Call) -> Record | None:
        """The entry of ``full_key`` from the fastest tier holding it, promoted into faster ones."""
        now = self.clock()
        generation = self.generation
        for slot in self.slots:
            if not slot.allowed(call):
                continue
            if slot is self._counter_slot and generation.due <= generation.clock():
                generation.checked()
                got = slot.run(
                    "get", call, slot.tier.get_with_counter,  # type: ignore[attr-defined]
                    full_key, self.layout.generation_key, skip=False,
                )  # fmt: skip
                if got is FAILED:
                    continue
                raw, shared = got
                generation.observe(shared)
            else:
                raw = slot.run("get", call, slot.tier.get, full_key, skip=False)
                if raw is FAILED:
                    continue
            record = self._accept(slot, full_key, raw, now, call)
            if record is None:
                continue
            if (
                not slot.remote
                and generation.due <= generation.clock()
                and self.check_generation(call)
            ):
                # Another environment's invalidate_all(): this copy went with the old generation.
                slot.counts.misses += 1
                continue
            slot.counts.hits += 1
            if slot.index:
                self._promote(full_key, slot.index, record, raw, call)
            recorder = self.recorder
            if recorder.clock() >= recorder.deadline:
                recorder.publish()
            return record
        self.recorder.maybe_publish(self.recorder.clock())
        return None

    def lookup_entry(self, full_key: str) -> Record | Missing:
        """The entry of ``full_key`` (``.value``, ``.expires_at``, ``.stale_at``), or ``MISS``."""
        record = self.read(full_key, self.begin())
        return MISS if record is None else record

    # ------------------------------------------------------------ writing records

    def _too_old(self, call: Call) -> bool:
        """A call older than a tombstone's life can no longer tell an invalidation happened."""
        return not call.force and self.monotonic() - call.began > self.tombstone_ttl

    def _too_big(self, slot: Slot, full_key: str, size: int) -> bool:
        if slot.limit is None or size <= slot.limit:
            return False
        slot.counts.errors += 1
        logger.warning(
            "stratacache tier %s skipped %s: %d bytes exceed its limit of %d",
            slot.name,
            full_key,
            size,
            slot.limit,
        )
        return True

    def _expect(self, slot: Slot, full_key: str, call: Call) -> bytes | None:
        return ANY if call.force else call.seen.get((slot.index, full_key), NOTHING_SEEN)[0]

    def _keep(
        self, slot: Slot, full_key: str, call: Call, until: float | None, now: float
    ) -> float | None:
        """Seconds a record is kept: its own life, and no less than the record it replaces."""
        if until is None:
            return None
        kept = call.seen.get((slot.index, full_key), NOTHING_SEEN)[1]
        if kept is not None:  # a tombstone's protection outlives what replaces it
            until = max(until, kept)
        return max(until - now, 0.001)

    def _swap(
        self, slot: Slot, full_key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> bool:
        if not slot.tier.capabilities.versioned:
            slot.tier.set(full_key, blob, keep)
            return True
        done, _ = slot.tier.swap(full_key, blob, keep, expect)  # type: ignore[attr-defined]
        return bool(done)

    def _promote(
        self, full_key: str, found_in: int, record: Record, raw: object, call: Call
    ) -> None:
        """Back-fill the tiers faster than ``found_in``, never beyond the entry's expiry."""
        self._promote_many(found_in, [(full_key, record, raw)], call)

    def _promote_many(
        self, found_in: int, hits: Sequence[tuple[str, Record, object]], call: Call
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

        for slot in self.slots[:found_in]:
            if not slot.allowed(call, write=True) or (slot.remote and self._too_old(call)):
                continue
            blobs: dict[str, tuple[bytes, bytes | None, float | None]] = {}
            for full_key, record, raw in hits:
                lifetime = remaining_lifetime(record.expires_at, now, slot.tier.ttl)
                if lifetime is MISS:
                    continue
                expires_at = expiry_at(now, lifetime)
                try:
                    if slot.remote:
                        blob = (
                            self.codec.rewrap(full_key, record, raw, expires_at)
                            if isinstance(raw, bytes)
                            else self._wrap(
                                full_key, payload(full_key, record.value), record, expires_at
                            )
                        )
                        if not self._too_big(slot, full_key, len(blob)):
                            keep = self._keep(slot, full_key, call, expires_at, now)
                            blobs[full_key] = (blob, self._expect(slot, full_key, call), keep)
                        continue
                    if slot.limit is not None:
                        size = self.codec.overhead + len(payload(full_key, record.value).data)
                        if self._too_big(slot, full_key, size):
                            continue
                except SerializationError as exc:
                    _warn_unserializable(full_key, exc)
                    continue
                value = (
                    record.value
                    if record.stale_at is None
                    else Fresh(record.value, record.stale_at, record.delta)
                )
                self._to_memory(slot, call, {full_key: value}, lifetime)
            if blobs:
                slot.run("promote", call, self._swap_blobs, slot, blobs, write=True, skip=False)

    def _to_memory(
        self, slot: Slot, call: Call, values: Mapping[str, object], lifetime: float | None
    ) -> None:
        """Write into a memory tier, atomically with respect to invalidation marks.

        An explicit write (``call.force``) marks each key as it writes it, so that
        nothing that began earlier writes after it; any other write goes only to
        keys not marked since its call began.
        """

        def put(keys: list[str]) -> None:
            if len(keys) == 1:
                (key,) = keys
                slot.run(
                    "set", call, slot.tier.set, key, values[key], lifetime, write=True, skip=False
                )
                return
            batch = {key: values[key] for key in keys}
            slot.run("set_many", call, slot.tier.set_many, batch, lifetime, write=True, skip=False)

        if not call.force:
            self.marks.guarded(values, call.epoch, put)
            return
        for key in values:
            self.marks.mark(key, then=functools.partial(put, [key]))
            self.flights.forget(key)

    @staticmethod
    def _swap_blobs(
        slot: Slot, blobs: Mapping[str, tuple[bytes, bytes | None, float | None]]
    ) -> None:
        """Conditional writes of several records to one shared tier (plain sets if unversioned)."""
        tier = slot.tier
        if tier.capabilities.versioned:
            tier.swap_many(blobs)  # type: ignore[attr-defined]
            return
        for full_key, (blob, _, keep) in blobs.items():
            tier.set(full_key, blob, keep)

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
        call: Call,
        *,
        delta: float = 0.0,
        token: bytes | None = None,
        ttl: float | None = INHERIT,
    ) -> bool:
        """Write a computed ``value`` to every tier; ``False`` when it could not be serialized.

        Each shared tier takes it only if it still holds the record this call saw
        there (or, with ``token``, this call's lease); memory only if the key was
        not invalidated since the call began. ``delta`` is how long computing took.
        """
        soft, hard = self.freshness.lifetimes(self.default_ttl if ttl is INHERIT else ttl)
        now = self.clock()
        stale_at = expiry_at(now, soft) if self.freshness.enabled else None
        delta = delta if self.freshness.enabled else 0.0
        payload: Payload | None = None
        if self.remote or self.measure:
            try:
                payload = self.codec.payload(value)
            except SerializationError as exc:
                if self.remote:
                    _warn_unserializable(full_key, exc)
                    if token is not None and self._lease_slots:
                        self.give_up(self._lease_slots[0], full_key, call, token)
                    return False
                # memory only: the value needs no bytes, so no size can be held against it
        version = new_version()
        generation = self.generation.value
        lease = self._lease_slots[0] if token is not None and self._lease_slots else None
        for slot in self._write_order:  # shared tiers first: memory is the last to change
            lifetime = slot.tier.ttl if slot.tier.ttl is not None else hard
            if not slot.allowed(call, write=True):
                continue
            if payload is not None and self._too_big(
                slot, full_key, self.codec.overhead + len(payload.data)
            ):
                continue
            expires_at = expiry_at(now, lifetime)
            if slot.remote:
                if self._too_old(call):
                    continue
                assert payload is not None
                blob = self.codec.wrap(
                    full_key, payload, version=version, generation=generation,
                    expires_at=expires_at, keep_until=None, stale_at=stale_at, delta=delta,
                )  # fmt: skip
                expect = token if slot is lease else self._expect(slot, full_key, call)
                keep = self._keep(slot, full_key, call, expires_at, now)
                done = slot.run(
                    "set", call, self._swap, slot, full_key, blob, keep, expect,
                    write=True, skip=False,
                )  # fmt: skip
                if slot is lease and done is not FAILED:
                    lease = None  # replaced by the value, or already gone
            else:
                stored = value if stale_at is None else Fresh(value, stale_at, delta)
                self._to_memory(slot, call, {full_key: stored}, lifetime)
        if lease is not None and token is not None:  # the value skipped the lease's tier
            self.give_up(lease, full_key, call, token)
        return True

    # ------------------------------------------------------------ leases

    def lease_slot(self, call: Call) -> Slot | None:
        """The shared tier that holds fill leases, when the lock is on and it is usable."""
        if not self.lock:
            return None
        for slot in self._lease_slots:
            # A lease is a write: after a failed read it waits, like the value's write.
            if slot.index not in call.sick and (
                slot.breaker is None or slot.breaker.allow(write=True)
            ):
                return slot
        return None

    def acquire(self, slot: Slot, full_key: str, call: Call, token: bytes) -> object:
        """Try for the fill lease, held in the entry's own key.

        Returns :data:`HELD`, :data:`WAIT` (someone else's live lease), the
        :class:`Record` of a value that has just landed, or ``None`` (the tier failed).
        """
        at = (slot.index, full_key)
        for _ in range(3):  # the record changed under us: judge the new one
            now = self.clock()
            if call.seen.get(at, NOTHING_SEEN)[2] > now:  # never take a live lease from its holder
                return WAIT
            until = now + self.lock_lease
            keep = self._keep(slot, full_key, call, until, now)
            blob = self.codec.lease(full_key, token, until, now + (keep or self.lock_lease))
            got = slot.run(
                "lock", call, slot.tier.swap, full_key, blob, keep,  # type: ignore[attr-defined]
                call.seen.get(at, NOTHING_SEEN)[0], write=True, skip=False,
            )  # fmt: skip
            if got is FAILED:
                return None
            done, current = got
            if done:
                return HELD
            judged = self._judge(slot, full_key, current, call)
            if judged is not None:
                return judged
        return WAIT

    def _judge(self, slot: Slot, full_key: str, raw: object, call: Call) -> object:
        """What a waiter makes of a record: a value, ``WAIT``, or ``None`` (free to take)."""
        now = self.clock()
        if isinstance(raw, bytes):
            try:
                record = self.codec.decode(full_key, raw)
            except SerializationError:
                record = None
            if record is not None:
                self._note(call, (slot.index, full_key), record, now)
                live = record.expires_at is None or record.expires_at > now
                if live and record.kind is LEASE:
                    return WAIT
                if live and record.kind is VALUE and record.generation >= self.generation.value:
                    slot.counts.hits += 1
                    if slot.index:
                        self._promote(full_key, slot.index, record, raw, call)
                    return record
                return None
        self._accept(slot, full_key, raw, now, call)  # absent or foreign: noted, counted
        return None

    def poll(self, slot: Slot, full_key: str, call: Call, token: bytes) -> object:
        """A waiter's look: the value once it lands, ``WAIT``, or the lease if it fell free."""
        raw = slot.run("get", call, slot.tier.get, full_key, skip=False)
        if raw is FAILED:
            return None
        judged = self._judge(slot, full_key, raw, call)
        if judged is not None:
            return judged
        return self.acquire(slot, full_key, call, token)

    def give_up(self, slot: Slot, full_key: str, call: Call, token: bytes) -> None:
        """Release a fill lease this call may hold (compare-and-delete: safe if it does not)."""
        slot.run("unlock", call, slot.tier.delete_if, full_key, token, skip=False)  # type: ignore[attr-defined]

    def lock_slot(self, call: Call) -> Slot | None:
        """The shared tier that holds refresh locks, when the lock is on and it is usable."""
        slot = self._lock_slot
        if not self.lock or slot is None or slot.index in call.sick:
            return None
        return slot

    def refresh_lock(self, slot: Slot, full_key: str, call: Call, token: str) -> bool | None:
        """The refresh lock of a served entry: ``True``, ``False`` (taken), ``None`` (error)."""
        got = slot.run(
            "lock", call, slot.tier.acquire_lock,  # type: ignore[attr-defined]
            lock_key(full_key), token, self.lock_lease, write=True,
        )  # fmt: skip
        return None if got is FAILED else bool(got)

    def refresh_unlock(self, slot: Slot, full_key: str, call: Call, token: str) -> None:
        """Give the refresh lock up if this call holds it."""
        slot.run(
            "unlock", call, slot.tier.release_lock,  # type: ignore[attr-defined]
            lock_key(full_key), token, skip=False,
        )  # fmt: skip

    # ------------------------------------------------------------ freshness

    def refresh_due(self, record: Record) -> bool:
        """Whether a caller should recompute this entry now (stale, or chosen by XFetch)."""
        return record.stale_at is not None and self.freshness.refresh_due(
            record.stale_at, record.delta, self.clock()
        )

    def is_stale(self, record: Record) -> bool:
        """Whether the entry is past its soft expiry (served only as a grace value)."""
        return record.stale_at is not None and self.clock() >= record.stale_at

    def served(self, record: Record, stale: bool) -> Any:
        """The value of an entry served instead of recomputed (counted when stale)."""
        if stale:
            self.stale_served += 1
        return record.value

    def served_on_error(self, full_key: str, record: Record, exc: BaseException) -> Any:
        """Stale-if-error: serve the stale entry, with one log line that names the cause."""
        logger.warning(
            "stratacache served a stale %s: refreshing it failed: %s: %s",
            full_key,
            type(exc).__name__,
            redact(exc),
        )
        return self.served(record, True)

    # ------------------------------------------------------------ invalidation

    def invalidate(self, full_key: str, *, strict: bool = False) -> bool:
        """Remove ``full_key`` from every tier, leaving tombstones that refuse older fills.

        Returns ``True`` when some tier held a live entry. A tier that fails is
        counted and skipped; with ``strict=True`` the first failure is raised as
        :class:`InvalidationError` after every tier was tried. Deletes go through
        even while a breaker is open: an invalidation skipped now would leave a
        stale entry to be served once the tier is back.
        """
        removed, failure = self._forget([full_key])
        if strict and failure is not None:
            raise InvalidationError(f"could not delete {full_key} from every tier") from failure
        return removed

    def reset(self, full_key: str) -> Call:
        """Invalidate ``full_key`` and return a call that has seen the tombstones it left.

        A refresh is this, then a fill by that call: its writes may replace its own
        tombstones and nothing else, so a refresh whose value was computed before
        another invalidation finished can never write over it.
        """
        call = self.begin()
        self._forget([full_key], call)
        call.epoch = self.marks.epoch  # it began after its own mark
        return call

    def _forget(
        self, full_keys: Sequence[str], seen: Call | None = None
    ) -> tuple[bool, Exception | None]:
        """Tombstones in the shared tiers, slowest first, then (marked, atomically) out of memory.

        Slowest first, against the order reads go: a reader that finds a faster
        tier's tombstone then finds the slower tiers' too, so it can never copy a
        slower tier's old value over the tombstone it saw. Memory goes last: a
        call that read a shared tier before the tombstones landed began before
        the mark, so it can no longer write what it read. ``seen`` records the
        tombstones as what that call observed.
        """
        now = self.clock()
        removed = False
        failure: Exception | None = None
        for slot in reversed(self.slots):
            if not slot.remote:
                continue
            tier = slot.tier
            if tier.capabilities.versioned:
                until = now + self.tombstone_ttl
                versions = {key: new_version() for key in full_keys}
                items = {
                    key: (
                        self.codec.tombstone(key, versions[key], self.generation.value, until),
                        ANY,
                        self.tombstone_ttl,
                    )
                    for key in full_keys
                }
                if seen is not None:
                    for key in full_keys:
                        seen.seen[(slot.index, key)] = (versions[key], until, 0.0)
                if len(full_keys) == 1:
                    ((key, (blob, _, keep)),) = items.items()
                    got = slot.run(
                        "delete", None, tier.swap, key, blob, keep, ANY,  # type: ignore[attr-defined]
                        skip=False,
                    )  # fmt: skip
                    if got is not FAILED:
                        removed = self._was_live(key, got[1], now) or removed
                else:
                    got = slot.run("delete_many", None, tier.swap_many, items, skip=False)  # type: ignore[attr-defined]
            elif len(full_keys) == 1:
                got = slot.run("delete", None, tier.delete, full_keys[0], skip=False)
                removed = (got is not FAILED and bool(got)) or removed
            else:
                got = slot.run("delete_many", None, tier.delete_many, full_keys, skip=False)
            if got is FAILED:
                failure = failure or slot.last_error
        memory = [slot for slot in self.slots if not slot.remote]
        for key in full_keys:

            def drop(key: str = key) -> None:
                nonlocal removed
                for slot in memory:
                    got = slot.run("delete", None, slot.tier.delete, key, skip=False)
                    removed = (got is not FAILED and bool(got)) or removed

            self.marks.mark(key, then=drop)
            self.flights.forget(key)
        return removed, failure

    def _was_live(self, full_key: str, raw: object, now: float) -> bool:
        if not isinstance(raw, bytes):
            return False
        try:
            record = self.codec.decode(full_key, raw)
        except SerializationError:
            return False
        return record.kind is VALUE and (record.expires_at is None or record.expires_at > now)

    # ------------------------------------------------------------ batches

    def read_many(self, full_keys: Sequence[str], call: Call) -> dict[str, Record]:
        """The entries some tier has, one batch call per tier, promoted like :meth:`read`."""
        if self.generation.due <= self.generation.clock():
            self.check_generation(call)
        found: dict[str, Record] = {}
        now = self.clock()
        missing = list(dict.fromkeys(full_keys))
        for slot in self.slots:
            if not missing:
                break
            if not slot.allowed(call):
                continue
            raws = slot.run("get_many", call, slot.tier.get_many, missing, skip=False)
            if raws is FAILED:
                error = slot.last_error
                if not isinstance(error, PartialReadError):
                    continue
                raws = error.found
                slot.counts.errors += error.failed - 1  # run() counted the call once
            still: list[str] = []
            hits: list[tuple[str, Record, object]] = []
            for full_key, raw in zip(missing, raws, strict=True):
                record = self._accept(slot, full_key, raw, now, call)
                if record is None:
                    still.append(full_key)
                    continue
                slot.counts.hits += 1
                found[full_key] = record
                hits.append((full_key, record, raw))
            if hits and slot.index:
                self._promote_many(slot.index, hits, call)
            missing = still
        return found

    def write_many(
        self, values: Mapping[str, object], call: Call, ttl: float | None = INHERIT
    ) -> None:
        """Write several values, one batch call per tier, each conditional as in :meth:`write`."""
        lifetime_default = self.default_ttl if ttl is INHERIT else check_ttl(ttl)
        now = self.clock()
        values = dict(values)
        payloads: dict[str, Payload] = {}
        if self.remote or self.measure:
            for full_key, value in list(values.items()):
                try:
                    payloads[full_key] = self.codec.payload(value)
                except SerializationError as exc:
                    if self.remote:
                        _warn_unserializable(full_key, exc)
                        del values[full_key]
        generation = self.generation.value
        for slot in self._write_order:  # shared tiers first: memory is the last to change
            lifetime = slot.tier.ttl if slot.tier.ttl is not None else lifetime_default
            if not values or not slot.allowed(call, write=True):
                continue
            expires_at = expiry_at(now, lifetime)
            fits = {
                key: value
                for key, value in values.items()
                if key not in payloads
                or not self._too_big(slot, key, self.codec.overhead + len(payloads[key].data))
            }
            if slot.remote:
                if self._too_old(call):
                    continue
                blobs = {
                    key: (
                        self.codec.wrap(
                            key,
                            payloads[key],
                            version=new_version(),
                            generation=generation,
                            expires_at=expires_at,
                            keep_until=None,
                        ),
                        self._expect(slot, key, call),
                        self._keep(slot, key, call, expires_at, now),
                    )
                    for key in fits
                }
                slot.run("set_many", call, self._swap_blobs, slot, blobs, write=True, skip=False)
            else:
                self._to_memory(slot, call, fits, lifetime)


def _warn_unserializable(full_key: str, exc: SerializationError) -> None:
    logger.warning("stratacache left %s uncached: %s", full_key, exc)
