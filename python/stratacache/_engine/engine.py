"""The engine a :class:`~stratacache.TieredCache` holds: the chain, the lease, the drivers.

Everything here takes stored keys (:meth:`KeyLayout.key` of the user's key);
the cache facade, the decorators and ``@cached_many`` reach it through their
cache's private ``_engine``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stratacache._engine import compute
from stratacache._engine.chain import INHERIT, Chain
from stratacache._engine.compute import ShouldCache
from stratacache._engine.generations import Generation
from stratacache._engine.invalidation import forget
from stratacache._engine.lease import Lease
from stratacache.envelope import Record
from stratacache.errors import InvalidationError
from stratacache.tiers.base import Tier


class Engine:
    """A chain of tiers with its lease and the compute-once drivers, on stored keys.

    Example:
        >>> from stratacache import TieredCache
        >>> from stratacache.tiers import MemoryTier
        >>> engine = TieredCache([MemoryTier()], namespace="doc")._engine
        >>> engine.run("doc|k", lambda: 42), engine.lookup("doc|k").value
        (42, 42)
    """

    def __init__(self, chain: Chain, lease: Lease, sleep: Callable[[float], None]) -> None:
        self.chain = chain
        self.lease = lease
        self.sleep = sleep

    @property
    def tiers(self) -> tuple[Tier, ...]:
        return self.chain.tiers

    @property
    def generation(self) -> Generation:
        return self.chain.generation

    def run(
        self, full_key: str, fn: Callable[[], Any], should_cache: ShouldCache | None = None
    ) -> Any:
        """The cached value of ``full_key``, else ``fn()`` computed once and stored."""
        chain = self.chain
        steps = compute.get_or_compute(chain, self.lease, full_key, None, should_cache)
        return compute.run(steps, fn, chain.flights, self.sleep)

    async def arun(
        self,
        full_key: str,
        fn: Callable[[], Awaitable[Any]],
        should_cache: ShouldCache | None = None,
    ) -> Any:
        """:meth:`run` for a coroutine function; tier I/O in a worker thread."""
        chain = self.chain
        steps = compute.get_or_compute(chain, self.lease, full_key, None, should_cache)
        return await compute.arun(steps, fn, chain.flights, chain.remote)

    def refresh(self, full_key: str, fn: Callable[[], Any]) -> Any:
        """Invalidate, recompute now, write every tier; the fresh value."""
        steps = compute.refresh(self.chain, self.lease, full_key)
        return compute.run(steps, fn, self.chain.flights, self.sleep)

    async def arefresh(self, full_key: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        steps = compute.refresh(self.chain, self.lease, full_key)
        return await compute.arun(steps, fn, self.chain.flights, self.chain.remote)

    def lookup(self, full_key: str) -> Record | None:
        """The live entry of ``full_key`` (``.value``, ``.expires_at``, ``.stale_at``), promoted."""
        return self.chain.read(full_key, self.chain.begin())

    def store(self, full_key: str, value: object, ttl: float | None = INHERIT) -> None:
        """Write ``value`` to every tier, unconditionally (an explicit write)."""
        self.chain.write(full_key, value, self.chain.begin(force=True), ttl=ttl)

    def invalidate(self, full_key: str, *, strict: bool = False) -> bool:
        """Tombstones in every tier; ``True`` when some tier held a live entry and no shared
        tier can serve it any more (``False`` when one took neither the tombstone nor a
        delete; ``strict`` raises then)."""
        removed, failure = forget(self.chain, [full_key])
        if failure is not None:
            if strict:
                raise InvalidationError(f"could not delete {full_key} from every tier") from failure
            return False
        return removed

    def invalidate_many(self, full_keys: Sequence[str]) -> None:
        """:meth:`invalidate` for several stored keys, one batch call per tier."""
        forget(self.chain, full_keys)
