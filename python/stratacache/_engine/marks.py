"""Invalidation marks: what keeps in-flight writes out of the memory tiers.

An invalidation marks its key, and a write into memory by a call that began
before the mark is refused, so an in-flight fill or promotion cannot bring
back what an ``invalidate()`` removed: memory's counterpart of the versions
that keep shared tiers honest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Final

MAX_MARKS: Final = 4096
"""Marked keys remembered; past that, every older call's writes are refused."""


class Marks:
    """Per-key marks that keep in-flight writes out of the memory tiers after an invalidation.

    A mark and the memory change that goes with it (a delete, an explicit
    write) happen under one lock, and so does every conditional write's check
    and write: a call that began before a mark can never write after it.

    Example:
        >>> marks = Marks()
        >>> since = marks.epoch
        >>> marks.mark("k")
        >>> marks.writable("k", since), marks.writable("other", since)
        (False, True)
    """

    __slots__ = ("_lock", "epoch", "floor", "marks")

    def __init__(self) -> None:
        self.epoch = 0
        self.floor = 0
        self.marks: dict[str, int] = {}
        self._lock = threading.Lock()

    def mark(self, key: str, then: Callable[[], object] | None = None) -> None:
        """Refuse writes of ``key`` by calls that began before now; then run ``then``."""
        with self._lock:
            self.epoch += 1
            if len(self.marks) >= MAX_MARKS:  # forget them all, refuse every older call
                self.marks.clear()
                self.floor = self.epoch
            self.marks[key] = self.epoch
            if then is not None:
                then()

    def mark_all(self, then: Callable[[], object] | None = None) -> None:
        """Refuse every write by calls that began before now; then run ``then``."""
        with self._lock:
            self.epoch += 1
            self.marks.clear()
            self.floor = self.epoch
            if then is not None:
                then()

    def writable(self, key: str, since: int) -> bool:
        """Whether a call that began at epoch ``since`` may still write ``key``."""
        return self.floor <= since and self.marks.get(key, 0) <= since

    def guarded(
        self, keys: Iterable[str], since: int, write: Callable[[list[str]], object]
    ) -> None:
        """``write(the keys still writable)`` for a call that began at ``since``, atomically."""
        with self._lock:
            allowed = [key for key in keys if self.writable(key, since)]
            if allowed:
                write(allowed)
