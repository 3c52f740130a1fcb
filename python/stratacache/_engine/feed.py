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

import threading
from typing import Final

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
