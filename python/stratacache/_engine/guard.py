"""One guard per tier of a cache: its breaker, its size limit, its counters, failing open.

Every tier operation the engine makes goes through a :class:`Guard` method of
the same name (``guard.get(key, trace)``, ``guard.swap(...)``): the one place
that skips a tier that already failed during this trace, runs the operation,
and turns a failure into a count, a log line and a breaker failure instead of
an exception. Whether to ask a tier whose breaker is open is the caller's
decision (:meth:`Guard.allowed`): reads and writes ask first, invalidations
never do (an invalidation skipped during an outage would be lost).

A call is bounded by construction: once a tier fails during a trace (a
timeout, say), the rest of that trace skips it, whatever other threads did to
the breaker meanwhile, so one call waits for at most one failure per tier.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

from stratacache.errors import ConfigurationError, SerializationError, SetupError
from stratacache.metrics import TierCounts
from stratacache.tiers.base import CounterTier, FeedTier, Missing, Tier, VersionedTier

logger = logging.getLogger("stratacache")

R = TypeVar("R")

FAILED: Final = object()
"""What a :class:`Guard` operation returns when it failed or was skipped."""

_CREDENTIALS: Final = re.compile(r"(?i)(\w+://)[^/@\s]*@")

Blobs = Mapping[str, tuple[bytes, bytes | None, float | None]]
"""Conditional writes: ``{key: (blob, expect, keep)}``."""


def redact(exc: BaseException) -> str:
    """An exception's message with any ``scheme://user:password@`` credentials masked.

    Example:
        >>> redact(ValueError("cannot reach redis://user:secret@host:6379"))
        'cannot reach redis://***@host:6379'
    """
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


class Trace:
    """What one operation of the engine has seen: when it began, the records read, the sick tiers.

    ``seen[(tier index, key)]`` is ``(version, keep_until, lease_until)`` of the
    record the trace saw there: the version its writes expect (``None``: nothing
    there), until when that record was to be kept (a write replacing it keeps it
    at least that long), and until when another caller's lease seen there runs.
    ``force`` makes its writes unconditional (explicit writes). ``generation``:
    the namespace generation when it last read a tier, which its writes record
    (a value computed before an ``invalidate_all()`` is of the generation before).
    """

    __slots__ = ("began", "epoch", "force", "generation", "seen", "sick")

    def __init__(self, began: float, epoch: int, force: bool = False, generation: int = 0) -> None:
        self.began = began
        self.epoch = epoch
        self.force = force
        self.generation = generation
        self.seen: dict[tuple[int, str], tuple[bytes | None, float | None, float]] = {}
        self.sick: frozenset[int] = _HEALTHY  # replaced, not changed: most traces never need one


NOTHING_SEEN: Final[tuple[None, None, float]] = (None, None, 0.0)
_HEALTHY: Final[frozenset[int]] = frozenset()


class Guard:
    """A tier as one cache uses it: each operation fails open, counted and logged.

    Example:
        >>> from stratacache.metrics import TierCounts
        >>> from stratacache.tiers import MemoryTier
        >>> guard = Guard(MemoryTier(), 0, TierCounts("L1"))
        >>> guard.set("k", 1, None), guard.get("k"), guard.counts.errors
        (None, 1, 0)
    """

    __slots__ = (
        "breaker",
        "counter",
        "counts",
        "feed",
        "index",
        "last_error",
        "limit",
        "name",
        "remote",
        "tier",
        "versioned",
    )

    def __init__(self, tier: Tier, index: int, counts: TierCounts) -> None:
        self.tier = tier
        self.index = index
        self.name = tier.name
        self.counts = counts
        self.remote = tier.stores_bytes
        capabilities = tier.capabilities
        self.versioned = cast(VersionedTier, tier) if capabilities.versioned else None
        """The tier's conditional writes, when it declares them."""
        self.counter = cast(CounterTier, tier) if capabilities.counter else None
        """The tier's counters, when it declares them."""
        self.feed = cast(FeedTier, tier) if capabilities.feed and capabilities.counter else None
        """The tier's invalidation feed, when it declares one (read with the counter)."""
        self.breaker = tier.breaker
        if self.breaker is not None and not self.breaker.name:
            self.breaker.name = tier.name  # for its log lines
        self.limit = tier.max_value_bytes
        self.last_error: Exception | None = None
        """The exception of the latest failed operation (for strict deletes, partial reads)."""

    # ------------------------------------------------------------ failing open

    def allowed(self, trace: Trace | None, write: bool = False) -> bool:
        """Whether to ask the tier now; a skip is counted as an error and costs no wait."""
        if trace is not None and self.index in trace.sick:
            self.counts.errors += 1
            return False
        breaker = self.breaker
        if breaker is None or breaker.quiet or breaker.allow(write):
            return True
        self.counts.errors += 1
        return False

    def _call(self, operation: str, trace: Trace | None, fn: Callable[..., R], *args: Any) -> Any:
        """``fn(*args)``, or :data:`FAILED` (counted, logged) when it raised.

        A tier that already failed during ``trace`` is skipped, so a lease's
        release after a timed-out lease attempt does not wait for a second timeout.
        """
        if trace is not None and self.index in trace.sick:
            self.counts.errors += 1
            return FAILED
        try:
            result = fn(*args)
        except Exception as exc:
            self.last_error = exc
            self.failed(operation, exc, trace)
            return FAILED
        breaker = self.breaker
        if breaker is not None and not breaker.quiet:
            breaker.success()
        return result

    def failed(self, operation: str, exc: Exception, trace: Trace | None) -> None:
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
        if trace is not None:
            trace.sick = trace.sick | {self.index}
        if self.breaker is not None:
            self.breaker.failure()

    def bad_entry(self, key: str, what: str) -> None:
        """A record this cache cannot use: a counted miss and error, never a breaker failure."""
        self.counts.misses += 1
        self.counts.errors += 1
        logger.warning(
            "stratacache tier %s holds an unusable entry at %s: %s", self.name, key, what
        )

    # ------------------------------------------------------------ the tier's operations

    def get(self, key: str, trace: Trace | None = None) -> object | Missing:
        return self._call("get", trace, self.tier.get, key)  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str], trace: Trace | None = None) -> Any:
        return self._call("get_many", trace, self.tier.get_many, keys)

    def set(self, key: str, value: object, ttl: float | None, trace: Trace | None = None) -> Any:
        return self._call("set", trace, self.tier.set, key, value, ttl)

    def set_many(
        self, items: Mapping[str, object], ttl: float | None, trace: Trace | None = None
    ) -> Any:
        return self._call("set_many", trace, self.tier.set_many, items, ttl)

    def delete(self, key: str, trace: Trace | None = None) -> Any:
        return self._call("delete", trace, self.tier.delete, key)

    def delete_many(self, keys: Iterable[str], trace: Trace | None = None) -> Any:
        return self._call("delete_many", trace, self.tier.delete_many, keys)

    def clear(self, prefix: str) -> Any:
        return self._call("clear", None, self.tier.clear, prefix)

    def remaining_ttl(self, key: str) -> Any:
        return self._call("remaining_ttl", None, self.tier.remaining_ttl, key)

    def swap(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None, trace: Trace | None
    ) -> Any:
        """The versioned tier's conditional write: ``(done, what was there)`` or ``FAILED``."""
        assert self.versioned is not None
        return self._call("swap", trace, self.versioned.swap, key, blob, keep, expect)

    def swap_many(self, blobs: Blobs, trace: Trace | None = None) -> Any:
        assert self.versioned is not None
        return self._call("swap_many", trace, self.versioned.swap_many, blobs)

    def delete_if(self, key: str, expect: bytes, trace: Trace | None) -> Any:
        """Remove a record if it is still version ``expect`` (a lease given up)."""
        assert self.versioned is not None
        return self._call("delete_if", trace, self.versioned.delete_if, key, expect)

    def put(
        self,
        key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        trace: Trace | None,
        counter: tuple[str, int] | None = None,
    ) -> Any:
        """A record's write: conditional where the tier is versioned, plain elsewhere.

        ``counter``: ``(key, floor)`` of a counter the tier lost, written back in the
        same round trip (a tier with ``raise_counter``).
        """
        return self._call("set", trace, self._put, key, blob, keep, expect, counter)

    def put_many(
        self, blobs: Blobs, trace: Trace | None, counter: tuple[str, int] | None = None
    ) -> Any:
        """:meth:`put` of several records, one batch call."""
        return self._call("set_many", trace, self._put_many, blobs, counter)

    def read_counter(self, key: str, trace: Trace | None) -> Any:
        assert self.counter is not None
        return self._call("read_counter", trace, self.counter.read_counter, key)

    def bump_counter(self, key: str, floor: int) -> Any:
        assert self.counter is not None
        return self._call("bump_counter", None, self.counter.bump_counter, key, floor)

    def get_with_counter(self, key: str, counter: str, trace: Trace | None) -> Any:
        assert self.counter is not None
        return self._call("get", trace, self.counter.get_with_counter, key, counter)

    def publish(self, feed: str, keys: Sequence[str]) -> Any:
        assert self.feed is not None
        return self._call("publish", None, self.feed.publish, feed, keys)

    def read_with_feed(
        self, counter: str, feed: str, after: str | None, count: int, trace: Trace | None
    ) -> Any:
        assert self.feed is not None
        return self._call(
            "read_counter", trace, self.feed.read_with_feed, counter, feed, after, count
        )

    def get_with_feed(
        self, key: str, counter: str, feed: str, after: str | None, count: int, trace: Trace | None
    ) -> Any:
        assert self.feed is not None
        return self._call("get", trace, self.feed.get_with_feed, key, counter, feed, after, count)

    def warm(self, connect: Callable[[], object]) -> bool:
        """Open the tier's connections now (``connect``); ``False`` when that failed."""
        return self._call("warm", None, connect) is not FAILED

    def _put(
        self,
        key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        counter: tuple[str, int] | None,
    ) -> bool:
        if self.versioned is None:
            self.tier.set(key, blob, keep)
            return True
        if counter is not None:
            done, _ = self.tier.swap(key, blob, keep, expect, counter=counter)  # type: ignore[attr-defined]
            return bool(done)
        done, _ = self.versioned.swap(key, blob, keep, expect)
        return done

    def _put_many(self, blobs: Blobs, counter: tuple[str, int] | None) -> list[bool] | None:
        """Which records were written (a versioned tier's answer), else ``None``."""
        if counter is not None:
            return self.tier.swap_many(blobs, counter=counter)  # type: ignore[attr-defined, no-any-return]
        if self.versioned is not None:
            return self.versioned.swap_many(blobs)
        for key, (blob, _, keep) in blobs.items():
            self.tier.set(key, blob, keep)
        return None
