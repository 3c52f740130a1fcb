"""Invalidation: tombstones that refuse older fills, the namespace generation, clearing.

A tombstone is a record of its own (:mod:`stratacache.envelope`), written
unconditionally over an entry in every shared tier; a fill that began before
it expects the version it saw, so its write fails. Memory tiers are kept
honest by :class:`~stratacache._engine.marks.Marks` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratacache._engine.chain import Chain
from stratacache._engine.feed import EVERYTHING
from stratacache._engine.guard import FAILED, NOTHING_SEEN, Guard, Trace
from stratacache.envelope import VALUE, new_version
from stratacache.errors import SerializationError
from stratacache.tiers.base import ANY


def forget(
    chain: Chain, full_keys: Sequence[str], seen: Trace | None = None
) -> tuple[bool, Exception | None]:
    """Tombstones in the shared tiers, slowest first, then (marked, atomically) out of memory.

    Slowest first, against the order reads go: a reader that finds a faster
    tier's tombstone then finds the slower tiers' too, so it can never copy a
    slower tier's old value over the tombstone it saw. Memory goes last: a
    trace that read a shared tier before the tombstones landed began before
    the mark, so it can no longer write what it read. ``seen`` records the
    tombstones as what that trace observed. A tier that refuses the tombstone
    (out of memory under ``noeviction``, a read-only replica) gets a delete
    instead, which such a server still takes. Returns whether some tier held a
    live entry, and the first failure of a shared tier that may still serve
    the old value (it took neither the tombstone nor the delete).
    """
    now = chain.clock()
    removed = False
    failure: Exception | None = None
    counter_error: Exception | None = None  # the feed's tier, when it failed
    for guard in reversed(chain.guards):
        if not guard.remote:
            continue
        if guard.versioned is not None:
            until = now + chain.tombstone_ttl
            versions = {key: new_version() for key in full_keys}
            generation = chain.generation.value
            if seen is not None:
                for key in full_keys:
                    seen.seen[(guard.index, key)] = (versions[key], until, 0.0)
            blobs = {
                key: (
                    chain.codec.tombstone(key, versions[key], generation, until),
                    ANY,
                    chain.tombstone_ttl,
                )
                for key in full_keys
            }
            if len(full_keys) == 1:
                ((key, (blob, _, keep)),) = blobs.items()
                got = guard.swap(key, blob, keep, ANY, None)
                if got is not FAILED:
                    removed = _was_live(chain, key, got[1], now) or removed
            else:
                got = guard.swap_many(blobs)
            if got is FAILED and _refused(guard.last_error):
                # Refused (OOM, a read-only replica), not unreachable: take the old value out.
                got = _delete(guard, full_keys)
                removed = (got is not FAILED and bool(got)) or removed
                if got is not FAILED and seen is not None:
                    for key in full_keys:
                        seen.seen[(guard.index, key)] = NOTHING_SEEN
        else:
            got = _delete(guard, full_keys)
            removed = (got is not FAILED and bool(got)) or removed
        if got is FAILED:
            failure = failure or guard.last_error
            if guard is chain.counter:
                counter_error = guard.last_error
    unreachable = counter_error is not None and not _refused(counter_error)
    for key in full_keys:

        def drop(key: str = key) -> None:
            nonlocal removed
            for guard in chain.memory:
                got = guard.delete(key)
                removed = (got is not FAILED and bool(got)) or removed

        chain.marks.mark(key, then=drop)
        chain.flights.forget(key)
    if unreachable:  # a down server costs one timeout, not one per step
        return removed, failure
    return removed, publish(chain, full_keys) or failure


def publish(chain: Chain, full_keys: Sequence[str]) -> Exception | None:
    """Record an invalidation in the namespace's feed, after its tombstones: every other
    environment drops those keys from memory at its next check. Returns a failure."""
    guard = chain.counter
    if chain.feed is None or guard is None or not full_keys:
        return None
    entry_id = guard.publish(chain.feed.key, full_keys)
    if entry_id is FAILED:
        # A full Redis refuses XADD but takes DEL: a feed that is gone makes every
        # reader drop its whole memory for the namespace, which costs misses, not staleness.
        error = guard.last_error
        if not _refused(error):
            return error
        return None if guard.delete(chain.feed.key) is not FAILED else error
    chain.feed.published(entry_id)
    return None


def _refused(error: BaseException | None) -> bool:
    """Whether a server answered no (out of memory, read-only), rather than not at all."""
    name = type(error).__name__
    return error is not None and not any(
        word in name for word in ("Timeout", "Connection", "ClusterDown", "MasterDown")
    )


def _delete(guard: Guard, full_keys: Sequence[str]) -> object:
    """Delete the keys (allowed under OOM): how many were there, or ``FAILED``."""
    if len(full_keys) == 1:
        return guard.delete(full_keys[0])
    return guard.delete_many(full_keys)


def _was_live(chain: Chain, full_key: str, raw: object, now: float) -> bool:
    if not isinstance(raw, bytes):
        return False
    try:
        record = chain.codec.decode(full_key, raw)
    except SerializationError:
        return False
    return record.kind is VALUE and (record.expires_at is None or record.expires_at > now)


def clear(chain: Chain) -> None:
    """Remove every entry of the namespace: scans, the slowest tier first and memory last."""
    for guard in reversed(chain.guards):  # even past an open breaker, as deletes go
        if guard.remote:
            guard.clear(chain.layout.prefix)
    chain.marks.mark_all(then=chain.clear_memory)
    chain.flights.forget()
    publish(chain, [EVERYTHING])


def invalidate_all(chain: Chain) -> None:
    """Make every entry of the namespace unreachable at once, in every environment.

    Bumps the generation in the shared tiers that keep counters (Redis
    ``INCR``, DynamoDB ``UpdateItem ADD``), the slowest first, instead of
    scanning keys; other environments follow within their generation check,
    and the slowest tier keeps it when a faster one loses its counter. Without
    such a tier, or if a bump fails, every entry is deleted instead.
    """
    guard = chain.counter
    if guard is not None:
        generation = chain.generation.value + 1
        for keeper in (chain.keepers.durable, guard):  # the slowest first, as tombstones go
            if keeper is None:
                continue
            bumped = keeper.bump_counter(chain.layout.generation_key, generation)
            if bumped is FAILED:
                break
            generation = max(generation, int(bumped))
        else:
            chain.generation.observe(generation)
            publish(chain, [EVERYTHING])  # for readers whose generation was lost with a flush
            return
    if guard is not None or chain.remote:
        clear(chain)
        return
    chain.generation.observe(chain.generation.value + 1)
