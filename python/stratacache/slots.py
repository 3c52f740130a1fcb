"""One slot per tier of a cache: its breaker, its limit, its counters, and failing open.

Every tier operation the cache makes goes through :meth:`Slot.run`, the one
place that decides whether to skip the tier (its breaker is open, or it
already failed during this call), runs the operation, and turns a failure
into a count, a log line and a breaker failure instead of an exception.

A call is bounded by construction: once a tier fails during a call (a
timeout, say), the rest of that call skips it, whatever other threads did to
the breaker meanwhile, so one call waits for at most one failure per tier.

:class:`Marks` keep memory tiers honest the same way versions keep remote
tiers honest: an invalidation marks its key, and a write into memory by a call
that began before the mark is refused, so an in-flight fill or promotion
cannot bring back what an ``invalidate()`` removed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from stratacache.errors import ConfigurationError, SerializationError, SetupError
from stratacache.metrics import TierCounts
from stratacache.tiers.base import Tier

logger = logging.getLogger("stratacache")

R = TypeVar("R")

FAILED: Final = object()
"""What :meth:`Slot.run` returns when the operation failed or was skipped."""

MAX_MARKS: Final = 4096
"""Marked keys remembered per slot; past that, every older call's writes are refused."""

_CREDENTIALS: Final = re.compile(r"(?i)(\w+://)[^/@\s]*@")


def redact(exc: BaseException) -> str:
    """An exception's message with any ``scheme://user:password@`` credentials masked."""
    return _CREDENTIALS.sub(r"\1***@", str(exc))


_reported: set[str] = set()
_reported_lock = threading.Lock()
MAX_REPORTED: Final = 64


def _first_report(message: str) -> bool:
    """Whether a :class:`SetupError` with this message is seen for the first time here.

    A setup problem stays until someone fixes it: one log line per execution
    environment says what to fix; every failure is still counted.
    """
    with _reported_lock:
        if message in _reported:
            return False
        if len(_reported) < MAX_REPORTED:  # past that, every line is logged, as before
            _reported.add(message)
        return True


class Call:
    """What one cached call has seen: when it began, the records it read, the tiers that failed.

    ``seen[(tier index, key)]`` is ``(version, keep_until, lease_until)`` of the
    record the call saw there: the version its writes expect (``None``: nothing
    there), until when that record was to be kept (a write replacing it keeps it
    at least that long), and until when another caller's lease seen there runs.
    """

    __slots__ = ("began", "epoch", "force", "seen", "sick")

    def __init__(self, began: float, epoch: int, force: bool = False) -> None:
        self.began = began
        self.epoch = epoch
        self.force = force
        self.seen: dict[tuple[int, str], tuple[bytes | None, float | None, float]] = {}
        self.sick: frozenset[int] = _HEALTHY  # replaced, not changed: most calls never need one


NOTHING_SEEN: Final[tuple[None, None, float]] = (None, None, 0.0)
_HEALTHY: Final[frozenset[int]] = frozenset()


class Slot:
    """A tier as one cache uses it.

    Example:
        >>> from stratacache.metrics import TierCounts
        >>> from stratacache.tiers import MemoryTier
        >>> slot = Slot(MemoryTier(), 0, TierCounts("L1"))
        >>> slot.run("get", None, lambda: 1 / 0) is FAILED, slot.counts.errors
        (True, 1)
    """

    __slots__ = (
        "breaker",
        "counts",
        "index",
        "last_error",
        "limit",
        "name",
        "remote",
        "tier",
    )

    def __init__(self, tier: Tier, index: int, counts: TierCounts) -> None:
        self.tier = tier
        self.index = index
        self.name = tier.name
        self.counts = counts
        self.remote = tier.stores_bytes
        self.breaker = tier.breaker
        if self.breaker is not None and not self.breaker.name:
            self.breaker.name = tier.name  # for its log lines
        self.limit = tier.max_value_bytes
        self.last_error: Exception | None = None
        """The exception of the latest failed operation (for strict deletes, partial reads)."""

    # ------------------------------------------------------------ failing open

    def allowed(self, call: Call | None, write: bool = False) -> bool:
        """Whether to ask the tier now; a skip is counted as an error and costs no wait."""
        if call is not None and self.index in call.sick:
            self.counts.errors += 1
            return False
        breaker = self.breaker
        if breaker is None or breaker.quiet or breaker.allow(write):
            return True
        self.counts.errors += 1
        return False

    def run(
        self,
        operation: str,
        call: Call | None,
        fn: Callable[..., R],
        *args: Any,
        write: bool = False,
        skip: bool = True,
    ) -> R | Any:
        """``fn(*args)``, or :data:`FAILED` when skipped or failed (counted, logged).

        ``skip=False`` asks even a tier whose breaker is open (deletes do: an
        invalidation skipped during an outage would be lost); a tier that already
        failed during ``call`` is skipped either way, so a lock's release after a
        timed-out lock does not wait for a second timeout.
        """
        if skip:
            if not self.allowed(call, write):
                return FAILED
        elif call is not None and self.index in call.sick:
            self.counts.errors += 1
            return FAILED
        try:
            result = fn(*args)
        except Exception as exc:
            self.last_error = exc
            self.failed(operation, exc, call)
            return FAILED
        breaker = self.breaker
        if breaker is not None and not breaker.quiet:
            breaker.success()
        return result

    def failed(self, operation: str, exc: Exception, call: Call | None) -> None:
        """Count, log and (for tier faults, not bad entries) feed the breaker."""
        if isinstance(exc, ConfigurationError) and not isinstance(exc, SetupError):
            raise exc
        self.counts.errors += 1
        if not isinstance(exc, SetupError) or _first_report(str(exc)):
            logger.warning(
                "stratacache tier %s %s failed, carrying on without it: %s: %s",
                self.name,
                operation,
                type(exc).__name__,
                redact(exc),
            )
        if isinstance(exc, SerializationError):
            return  # a bad entry says nothing about the tier's health
        if call is not None:
            call.sick = call.sick | {self.index}
        if self.breaker is not None:
            self.breaker.failure()

    def bad_entry(self, key: str, what: str) -> None:
        """A record this cache cannot use: a counted miss and error, never a breaker failure."""
        self.counts.misses += 1
        self.counts.errors += 1
        logger.warning(
            "stratacache tier %s holds an unusable entry at %s: %s", self.name, key, what
        )


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
