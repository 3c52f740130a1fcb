"""Lease locks across execution environments, so one caller computes a missing entry.

A tier that can hold a lease (``RedisTier``: ``SET NX PX`` and a compare-and-
delete script; ``DynamoDBTier``: a conditional put and delete) implements
:class:`LeaseTier`. The lease runs out on its own, so a caller killed while
holding it (a Lambda timeout) blocks others for at most the lease. Waiters
give up after a bounded wait and compute themselves: the lock may cost some
duplicate work, never availability.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

LOCK_SUFFIX = ":lock"
GENERATION_SUFFIX = "#generation"
DEFAULT_LEASE = 10.0
DEFAULT_WAIT = 5.0


@runtime_checkable
class LeaseTier(Protocol):
    """A tier that can grant a lease on a key to one token at a time."""

    def acquire_lock(self, key: str, token: str, lease: float) -> bool:
        """``True`` when ``token`` now holds ``key`` for ``lease`` seconds."""
        ...

    def release_lock(self, key: str, token: str) -> bool:
        """Give the lease up if ``token`` still holds it."""
        ...


@runtime_checkable
class CounterTier(Protocol):
    """A tier that keeps atomic counters (namespace generations)."""

    def read_counter(self, key: str) -> int: ...

    def bump_counter(self, key: str) -> int: ...
