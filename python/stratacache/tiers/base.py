"""The tier protocol every cache tier implements, its optional capabilities, and ``MISS``.

A tier stores what :class:`~stratacache.tiered.TieredCache` hands it under a
string key, with an optional lifetime in seconds. Byte tiers (Redis, DynamoDB)
receive envelopes of bytes; object tiers (memory) receive Python objects.
Tiers move data; ordering, promotion, serialization, metrics and failing open
live in the cache.

Beyond the core operations a tier declares what else it can do in
``capabilities`` (a :class:`Capabilities`), so the cache knows from the tier,
not by probing, whether it may ask for:

- ``versioned``: conditional writes on a record's version (:class:`VersionedTier`),
  which make an invalidation stick against fills that started before it, and
  hold the lease (a fill's in the entry's own key, a refresh's next to it);
- ``counter``: atomic counters (:class:`CounterTier`), for namespace generations;
- ``feed``: a bounded, ordered invalidation feed per namespace (:class:`FeedTier`),
  read in the same round trip as the counter, so every environment's memory
  follows another environment's invalidations.

:class:`BaseTier` gives the declarations' defaults to subclass from.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stratacache.breaker import CircuitBreaker


class _Miss(enum.Enum):
    MISS = "MISS"

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False


MISS: Final = _Miss.MISS
"""Returned by a tier for "not found", so that ``None`` can be a cached value."""

Missing = Literal[_Miss.MISS]

VERSION_OFFSET: Final = 4
"""Where a record's 8 version bytes sit in the stored bytes (see :mod:`stratacache.envelope`)."""
VERSION_SIZE: Final = 8

ANY: Final = b"*"
"""``expect`` for an unconditional write."""
FOREIGN: Final = b"!"
"""``expect`` that matches a record that is not one of ours (another type, another app)."""


class Foreign(NamedTuple):
    """What a tier returns for something at the key that is not one of our records.

    ``version`` is what a conditional write must expect to replace it
    (``None``: :data:`FOREIGN`).
    """

    what: str
    version: bytes | None = None


class Capabilities:
    """What a tier can do beyond the core operations; all off by default.

    ``lock`` is deprecated and ignored: leases (for fills and refreshes alike) need
    only ``versioned``. It is accepted, with a ``DeprecationWarning``, for one release.

    Example:
        >>> Capabilities(versioned=True)
        Capabilities(versioned=True, counter=False, feed=False)
    """

    # Frozen by hand rather than a frozen dataclass, which is generated and compiled at
    # import: about 0.5 ms of every cold start for this one class (issue 18).
    __slots__ = ("counter", "feed", "lock", "versioned")

    versioned: bool
    counter: bool
    feed: bool
    lock: bool

    def __init__(
        self, versioned: bool = False, counter: bool = False, feed: bool = False, lock: bool = False
    ) -> None:
        object.__setattr__(self, "versioned", versioned)
        object.__setattr__(self, "counter", counter)
        object.__setattr__(self, "feed", feed)
        object.__setattr__(self, "lock", lock)
        if lock:
            import warnings

            warnings.warn(
                "Capabilities(lock=...) is ignored: the one lease needs only versioned=True",
                DeprecationWarning,
                stacklevel=2,
            )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Capabilities are frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Capabilities are frozen: cannot delete {name!r}")

    def __repr__(self) -> str:
        return (
            f"Capabilities(versioned={self.versioned!r}, counter={self.counter!r}, "
            f"feed={self.feed!r})"
        )

    def _fields(self) -> tuple[bool, bool, bool]:
        return (self.versioned, self.counter, self.feed)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Capabilities:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


NO_CAPABILITIES: Final = Capabilities()


@runtime_checkable
class Tier(Protocol):
    """What ``TieredCache`` needs of a tier.

    ``name`` is the metric dimension (``L1``, ``L2``, ``L3`` by default);
    ``ttl`` is the tier's own lifetime, which wins over the cache's default;
    ``stores_bytes`` says whether the tier wants serialized envelopes;
    ``breaker`` is its circuit breaker (or ``None``); ``max_value_bytes`` the
    largest envelope it takes (or ``None``). Lifetimes are seconds; ``None``
    means no expiry.
    """

    name: str
    ttl: float | None
    stores_bytes: bool

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def breaker(self) -> CircuitBreaker | None: ...

    @property
    def max_value_bytes(self) -> int | None: ...

    def get(self, key: str) -> object | Missing: ...

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]: ...

    def set(self, key: str, value: object, ttl: float | None) -> None: ...

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Iterable[str]) -> int: ...

    def remaining_ttl(self, key: str) -> float | None | Missing:
        """Seconds left for ``key``; ``None`` when it never expires, ``MISS`` when absent."""
        ...

    def clear(self, prefix: str) -> int:
        """Remove every entry whose key starts with ``prefix``; return how many."""
        ...

    def close(self) -> None:
        """Release connections; the next call reconnects."""
        ...


class VersionedTier(Tier, Protocol):
    """A byte tier that writes conditionally on the version of the record it holds.

    ``expect`` is the version bytes of the record the caller saw, ``None``
    when it saw nothing, :data:`FOREIGN` when it saw something not ours, or
    :data:`ANY` for an unconditional write. ``keep`` is how many seconds the
    tier keeps the record (``None``: no limit); a write never shortens how
    long a record it replaces was to be kept.
    """

    def swap(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> tuple[bool, object | Missing]:
        """Write ``blob`` if the record is still ``expect``.

        Returns whether it was written, and the record it replaced (when written)
        or found there (when not), so the caller needs no second read.
        """
        ...

    def swap_many(
        self, items: Mapping[str, tuple[bytes, bytes | None, float | None]]
    ) -> list[bool]:
        """:meth:`swap` for several keys (``{key: (blob, expect, keep)}``) in one round trip."""
        ...

    def delete_if(self, key: str, expect: bytes) -> bool:
        """Remove the record if it is still version ``expect`` (a lease given up)."""
        ...


class CounterTier(Tier, Protocol):
    """A tier that keeps atomic counters (namespace generations)."""

    def read_counter(self, key: str) -> int:
        """The counter's value, 0 when it was never bumped."""
        ...

    def bump_counter(self, key: str, floor: int) -> int:
        """Add one atomically, to at least ``floor``; return the new value."""
        ...

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int | None]:
        """:meth:`get` of ``key`` and :meth:`read_counter` of ``counter`` in one round trip.

        The counter is ``None`` when the tier holds none (never bumped, or lost to
        a flush or an eviction): a faster tier's answer is then checked against a
        slower one's.
        """
        ...


FEED_KEEP: Final = 1000
"""Entries a feed keeps at least: a tier trims the oldest beyond this, never below it."""

FeedEntries = list[tuple[str, tuple[str, ...]]]
"""What a feed read returns: ``(entry id, stored keys)`` per entry, oldest first."""


class FeedTier(CounterTier, Protocol):
    """A counter tier that also keeps an invalidation feed per namespace.

    A feed is an ordered log of entries, each holding the stored keys one
    invalidation removed; its ids only grow, it keeps at least the newest
    :data:`FEED_KEEP` entries, and only ever loses the oldest (or all of them,
    with a flushed server). A read names where it starts: ``after=None`` asks
    for the newest entry only (a first read, to find one's place), ``""`` for
    every entry from the oldest, any other id for the entries from that one
    (itself included, so the caller can tell whether it is still there).
    """

    def publish(self, feed: str, keys: Sequence[str]) -> str:
        """Append one entry holding ``keys`` to ``feed``, trimming the oldest; its id."""
        ...

    def read_with_feed(
        self, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[int | None, FeedEntries]:
        """:meth:`read_counter` (``None`` when missing) and at most ``count`` entries of
        ``feed``, in one round trip."""
        ...

    def get_with_feed(
        self, key: str, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[object | Missing, int | None, FeedEntries]:
        """:meth:`get_with_counter` and :meth:`read_with_feed`'s entries, in one round trip."""
        ...


class BaseTier:
    """Defaults for the optional parts of the protocol, to subclass from.

    Example:
        >>> class Dict(BaseTier):
        ...     stores_bytes = True
        ...     def __init__(self):
        ...         self.name, self.ttl, self.data = "L2", None, {}
    """

    stores_bytes: bool = True
    capabilities: Capabilities = NO_CAPABILITIES
    breaker: CircuitBreaker | None = None
    max_value_bytes: int | None = None

    def close(self) -> None:
        """Nothing to release by default."""
