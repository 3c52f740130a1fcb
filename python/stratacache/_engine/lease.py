"""The lease: one caller across every environment computes, the others wait or serve.

One mechanism for both jobs. A **fill** lease lives in the entry's own key: a
conditional write of a lease record where the caller saw nothing (or an
expired lease), which returns what is there when it fails, so a value that
has just landed is seen without another read; the value's write, conditional
on the lease, replaces it. A **refresh** lease (a stale entry still being
served while one caller recomputes it) is the same lease record in a key of
its own next to the entry (:func:`~stratacache.keys.lock_key`), given back by
a compare-and-delete once the value is written.
"""

from __future__ import annotations

from typing import Final

from stratacache._engine.chain import Chain
from stratacache._engine.guard import FAILED, NOTHING_SEEN, Guard, Trace
from stratacache.envelope import LEASE, VALUE
from stratacache.errors import SerializationError

HELD: Final = "held"
"""The lease is this trace's."""
WAIT: Final = "wait"
"""Another caller holds a live lease."""


class Lease:
    """Leases in the first shared tier that writes conditionally, when the lock is on.

    Args:
        chain: the tiers and what moves through them.
        enabled: whether to take leases at all (the decorators' ``lock``).
        seconds: how long a lease blocks others if its holder dies.
        wait: how long a waiter waits for a value before computing it itself.
    """

    def __init__(self, chain: Chain, *, enabled: bool | None, seconds: float, wait: float) -> None:
        self.chain = chain
        versioned = [g for g in chain.guards if g.remote and g.versioned is not None]
        self._guards = versioned[:1]
        self.enabled = bool(self._guards) if enabled is None else bool(enabled)
        self.seconds = seconds
        self.wait = wait

    def guard(self, trace: Trace) -> Guard | None:
        """The tier that holds leases, when the lock is on and the tier is usable now."""
        if not self.enabled:
            return None
        for guard in self._guards:
            # A lease is a write: after a failed read it waits, like the value's write.
            if guard.index not in trace.sick and (
                guard.breaker is None or guard.breaker.allow(write=True)
            ):
                return guard
        return None

    def acquire(self, guard: Guard, key: str, trace: Trace, token: bytes) -> object:
        """Try for the lease held in ``key``.

        Returns :data:`HELD`, :data:`WAIT` (someone else's live lease), the
        :class:`Record` of a value that has just landed, or ``None`` (the tier failed).
        """
        chain = self.chain
        at = (guard.index, key)
        for _ in range(3):  # the record changed under us: judge the new one
            now = chain.clock()
            seen = trace.seen.get(at, NOTHING_SEEN)
            if seen[2] > now:  # never take a live lease from its holder
                return WAIT
            until = now + self.seconds
            keep = chain.keep(guard, key, trace, until, now)
            blob = chain.codec.lease(key, token, until, now + (keep or self.seconds))
            got = guard.swap(key, blob, keep, seen[0], trace)
            if got is FAILED:
                return None
            done, current = got
            if done:
                return HELD
            judged = self._judge(guard, key, current, trace)
            if judged is not None:
                return judged
        return WAIT

    def _judge(self, guard: Guard, key: str, raw: object, trace: Trace) -> object:
        """What a waiter makes of a record: a value, ``WAIT``, or ``None`` (free to take)."""
        chain = self.chain
        now = chain.clock()
        if isinstance(raw, bytes):
            try:
                record = chain.codec.decode(key, raw)
            except SerializationError:
                record = None
            if record is not None:
                chain.note(trace, (guard.index, key), record, now)
                live = record.expires_at is None or record.expires_at > now
                if live and record.kind is LEASE:
                    return WAIT
                if live and record.kind is VALUE and record.generation >= chain.generation.value:
                    guard.counts.hits += 1
                    if guard.index:
                        chain.promote(guard.index, [(key, record, raw)], trace)
                    return record
                return None
        chain.accept(guard, key, raw, now, trace)  # absent or foreign: noted, counted
        return None

    def poll(self, guard: Guard, key: str, trace: Trace, token: bytes) -> object:
        """A waiter's look: the value once it lands, ``WAIT``, or the lease if it fell free."""
        raw = guard.get(key, trace)
        if raw is FAILED:
            return None
        judged = self._judge(guard, key, raw, trace)
        if judged is not None:
            return judged
        return self.acquire(guard, key, trace, token)

    def give_up(self, guard: Guard, key: str, trace: Trace, token: bytes) -> None:
        """Release a lease this trace may hold (compare-and-delete: safe if it does not)."""
        guard.delete_if(key, token, trace)
