"""The invalidation feed: how one environment's ``invalidate()`` reaches every other L1.

Every invalidation (``invalidate``, ``refresh``, ``delete``, ``invalidate_all``,
``clear``, the Streams invalidator, HTTP invalidation) appends the stored keys
it removed to a bounded, ordered feed in the shared tier that keeps the
namespace generation (:class:`~stratacache.tiers.base.FeedTier`; Redis: a
stream per namespace). Each environment reads the entries after its place in
the same round trip as the generation, on its first lookup and then at most
every ``check_every`` seconds, and drops those keys from its memory tiers. A
place that is gone (the feed trimmed past it, or lost with a flushed server)
drops the whole namespace from memory: a missed entry costs misses, never a
stale read.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Final

from stratacache._engine.generations import Generation
from stratacache._engine.guard import FAILED, Guard, Trace
from stratacache._engine.keepers import Keepers
from stratacache._engine.marks import Marks
from stratacache._engine.singleflight import SingleFlight
from stratacache.keys import KeyLayout
from stratacache.tiers.base import FEED_KEEP, FeedEntries

EVERYTHING: Final = "*"
"""The key an entry holds for ``invalidate_all()`` and ``clear()`` (no stored key is one)."""
READ: Final = 256
"""Entries read at most per check; more since the last check drop everything instead."""
assert READ <= FEED_KEEP  # a feed shorter than READ was never trimmed
MINE: Final = 1024
"""Ids of our own entries remembered at most."""


class Feed:
    """This environment's place in one namespace's feed.

    Example:
        >>> feed = Feed("{ns}#feed")
        >>> feed.follow(None, [("5-0", ("ns|a",))])  # a first read finds its place
        (set(), False)
        >>> feed.follow("5-0", [("5-0", ("ns|a",)), ("6-0", ("ns|b",))])
        ({'ns|b'}, False)
        >>> feed.follow("6-0", [("9-0", ("ns|c",))])  # 6-0 was trimmed: drop everything
        (set(), True)
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.place: str | None = None
        """The last entry id seen; ``None`` before the first read, ``""`` for a feed seen empty."""
        self.mine: set[str] = set()
        """Ids of entries this environment published: its memory followed them already."""
        self._lock = threading.Lock()

    def published(self, entry_id: str) -> None:
        """Remember an entry of our own, so reading it back drops nothing."""
        with self._lock:
            if len(self.mine) >= MINE:
                self.mine.clear()  # forgetting costs a few misses, never a stale read
            self.mine.add(entry_id)

    def follow(self, after: str | None, entries: FeedEntries) -> tuple[set[str], bool]:
        """Take what a read from ``after`` returned: ``(keys to drop, whether to drop all)``."""
        drop: set[str] = set()
        everything = False
        if after is None:
            new = entries[-1][0] if entries else ""
        elif after == "":
            everything = len(entries) >= READ
            new = entries[-1][0] if entries else ""
            self._take(entries, drop)
        else:
            # The read starts at our own last entry: if it is not the first returned, the
            # feed lost it (trimmed past, or a flushed server's new feed).
            gone = not entries or entries[0][0] != after
            everything = gone or len(entries) >= READ
            new = entries[-1][0] if entries else ""
            self._take(entries[0 if gone else 1 :], drop)
        with self._lock:
            if self.place == after:  # a concurrent read may have moved on already
                self.place = new
        if EVERYTHING in drop:
            return set(), True
        return (set(), True) if everything else (drop, False)

    def _take(self, entries: FeedEntries, drop: set[str]) -> None:
        mine = self.mine
        for entry_id, keys in entries:
            if entry_id in mine:
                mine.discard(entry_id)
            else:
                drop.update(keys)


class Checks:
    """The reads of the shared generation and the feed, and what they make memory forget.

    ``counter``: the guard of the tier that keeps the generation (``None``: nothing to
    read); it keeps the feed too when it declares one. ``forget_all`` empties memory.
    """

    def __init__(
        self,
        counter: Guard | None,
        layout: KeyLayout,
        generation: Generation,
        memory: Sequence[Guard],
        marks: Marks,
        flights: SingleFlight,
        forget_all: Callable[[], None],
        keepers: Keepers | None = None,
    ) -> None:
        self.counter = counter
        self.keepers = keepers
        """Where a counter the tier lost is noted (``None``: a missing counter reads as 0)."""
        self.generation_key = layout.generation_key
        self.generation = generation
        self.memory = memory
        self.marks = marks
        self.flights = flights
        self.forget_all = forget_all
        self.feed = Feed(layout.feed_key) if counter is not None and counter.feed else None

    def check(self, trace: Trace | None = None, full_key: str | None = None) -> bool:
        """Read the generation (and the feed) now; ``True`` when memory's copy of ``full_key``
        (of anything, without one) is no longer current: another environment bumped the
        generation or invalidated it. ``trace``: the operation this read belongs to, so a
        timeout here spares it another."""
        guard = self.counter
        if guard is None:
            return False
        self.generation.checked()
        if not guard.allowed(trace):  # its breaker is open: no wait, memory serves on
            return False
        feed = self.feed
        if feed is None:
            shared = guard.read_counter(self.generation_key, trace)
            return shared is not FAILED and self.generation.observe(shared)
        after = feed.place
        got = guard.read_with_feed(self.generation_key, feed.key, after, READ, trace)
        if got is FAILED:
            return False
        shared, entries = got
        before = self.generation.value
        self._counter(shared)
        moved = self.generation.value != before
        return self.follow(feed, after, entries, full_key) or moved

    def get(self, guard: Guard, full_key: str, trace: Trace) -> object:
        """``guard.get(full_key)`` with the generation (and the feed) in the same round trip."""
        self.generation.checked()
        feed = self.feed
        if feed is None:
            got = guard.get_with_counter(full_key, self.generation_key, trace)
            if got is FAILED:
                return FAILED
            raw, shared = got
            self.generation.observe(shared)
            return raw
        after = feed.place
        got = guard.get_with_feed(full_key, self.generation_key, feed.key, after, READ, trace)
        if got is FAILED:
            return FAILED
        raw, shared, entries = got
        self._counter(shared)
        self.follow(feed, after, entries)
        return raw

    def read(self, guard: Guard, full_key: str, trace: Trace) -> object:
        """A tier's answer for ``full_key``, with the generation and the feed when their
        check is due on this tier (:meth:`get`), else as the keepers read it."""
        generation = self.generation
        if guard is self.counter and self.feed is not None and generation.due <= generation.clock():
            return self.get(guard, full_key, trace)
        if self.keepers is not None:
            return self.keepers.get(guard, full_key, trace)
        return guard.get(full_key, trace)

    def _counter(self, shared: int | None) -> None:
        if self.keepers is not None:
            self.keepers.counter_read(shared)
        else:
            self.generation.observe(shared or 0)

    def follow(
        self, feed: Feed, after: str | None, entries: FeedEntries, full_key: str | None = None
    ) -> bool:
        """Drop from memory what the feed's new entries invalidated; ``True`` when that took
        ``full_key`` (anything, without one)."""
        keys, everything = feed.follow(after, entries)
        if everything:
            self.forget_all()
            return True
        for key in keys:
            self.marks.mark(key, then=functools.partial(self._drop, key))
            self.flights.forget(key)
        return full_key in keys if full_key is not None else bool(keys)

    def _drop(self, full_key: str) -> None:
        for guard in self.memory:
            guard.delete(full_key)
