"""Where the namespace generation is kept: the first shared tier with counters, and the slowest.

``invalidate_all()`` bumps the generation in every shared tier that keeps
counters, the slowest first. The first such tier (Redis) is read on every
environment's first lookup and then at most every check; the slowest (DynamoDB,
where the entries it guards live longest) with the first lookup that reaches
it, then at most every check, in the same round trip as that lookup. When the
faster tier answers without its counter (a flush, an eviction, a new cluster),
its entries are misses until the slower counter has been read, and the
generation learnt there is written back into the faster tier with its next
write, in the same round trip: a lost counter never lets the generation go
back, and costs no round trip but one slower read per environment that meets
the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stratacache._engine.generations import Generation
from stratacache._engine.guard import FAILED, Guard, Trace


class Keepers:
    """The tiers that keep one namespace's generation, and what this environment knows of them.

    Example:
        >>> from stratacache.metrics import TierCounts
        >>> from stratacache.tiers import MemoryTier
        >>> generation = Generation(5.0, clock=lambda: 0.0, shared=False)
        >>> keepers = Keepers([Guard(MemoryTier(), 0, TierCounts("L1"))], generation, "g")
        >>> keepers.counter is None, keepers.durable is None, keepers.restoring(None)
        (True, True, None)
    """

    def __init__(self, guards: Sequence[Guard], generation: Generation, key: str) -> None:
        counters = [guard for guard in guards if guard.remote and guard.counter is not None]
        self.counter = counters[0] if counters else None
        """The first shared tier that keeps the generation (read on every first lookup)."""
        self.durable = counters[-1] if len(counters) > 1 else None
        """The slowest one that keeps it too, where the entries it guards live."""
        self.generation = generation
        self.key = key
        self.durable_due = -math.inf
        self.lost = False
        """The faster tier answered without its counter: its entries are misses until
        the durable counter has been read."""
        self.restore = False
        """Whether the faster tier's next write is to carry the generation back."""

    def get(self, guard: Guard, full_key: str, trace: Trace) -> object:
        """A tier's answer for ``full_key``, with its counter when a read of that is due."""
        generation = self.generation
        if guard is self.counter and generation.due <= generation.clock():
            generation.checked()
            got = guard.get_with_counter(full_key, self.key, trace)
            if got is FAILED:
                return FAILED
            raw, shared = got
            self.counter_read(shared)
            return raw
        if guard is self.durable and (self.lost or self.durable_due <= generation.clock()):
            got = guard.get_with_counter(full_key, self.key, trace)
            if got is FAILED:
                return FAILED
            raw, shared = got
            self.durable_due = generation.clock() + generation.check_every
            generation.observe(shared or 0)
            self.lost = False
            return raw
        return guard.get(full_key, trace)

    def counter_read(self, shared: int | None) -> None:
        """What the faster tier's counter said: adopt it, or note that the tier lost it."""
        guard = self.counter
        if (
            shared is None
            and self.durable is not None
            and guard is not None
            and hasattr(guard.tier, "raise_counter")
        ):
            self.restore = True
            # Unless the durable counter was read within the last check, this
            # environment cannot tell the faster tier's entries from older ones.
            self.lost = self.durable_due <= self.generation.clock()
        else:
            self.generation.observe(shared or 0)

    def checked(self, guard: Guard, trace: Trace) -> bool:
        """Before a batch read of ``guard``: its counter read when due (one call of its own,
        as a batch cannot carry it); ``False`` when that failed, so its entries go unread."""
        generation = self.generation
        if guard is not self.durable or generation.clock() < self.durable_due:
            return True
        shared = guard.read_counter(self.key, trace)
        if shared is FAILED:
            return False
        self.durable_due = generation.clock() + generation.check_every
        generation.observe(shared)
        self.lost = False
        return True

    def distrusted(self, guard: Guard) -> bool:
        """Whether an entry ``guard`` served is of a generation this environment cannot tell."""
        return self.lost and guard is self.counter

    def restoring(self, guard: Guard | None) -> tuple[str, int] | None:
        """The lost counter a write to ``guard`` is to carry back, if any."""
        if not self.restore or guard is not self.counter:
            return None
        return (self.key, self.generation.value)

    def restored(self, carried: tuple[str, int] | None, done: object) -> None:
        """A write that carried the counter back has landed."""
        if carried is not None and done is not FAILED:
            self.restore = False

    def put(
        self,
        guard: Guard,
        full_key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        trace: Trace,
    ) -> object:
        """:meth:`Guard.put`, carrying a lost counter back when ``guard`` lost it."""
        carried = self.restoring(guard)
        done = guard.put(full_key, blob, keep, expect, trace, carried)
        self.restored(carried, done)
        return done
