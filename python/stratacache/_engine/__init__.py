"""The engine under :class:`~stratacache.TieredCache`: private, one job per module.

- ``guard``: one :class:`Guard` per tier (breaker, size limit, counters, fail-open)
  and the :class:`Trace` of what one operation saw;
- ``chain``: the chain of tiers: read, read_many, write, write_many, promote;
- ``peek``: looking without reading (``has``, ``ttl``, ``expire``);
- ``invalidation``: tombstones, ``invalidate_all()``'s generation bump, clearing;
- ``lease``: the one lease, for fills and for stale refreshes;
- ``compute``: the compute-once algorithm as generators, a sync and an async driver;
- ``singleflight``: one computation per key within a process;
- ``generations``: the namespace generation behind ``invalidate_all()``;
- ``feed``: the invalidation feed: an environment's place in it, and the checks that
  read it with the generation and make memory forget;
- ``keepers``: the tiers that keep it (the first with counters, and the slowest),
  and a counter the faster one lost;
- ``marks``: invalidation marks that keep memory writes behind invalidations;
- ``health``: the health probe;
- ``engine``: :class:`Engine`, what a cache holds, on stored keys.

Nothing outside the package but ``tiered``, ``decorators``, ``batch`` and
``lifecycle`` imports it.
"""

from __future__ import annotations

from stratacache._engine.chain import INHERIT, TOMBSTONE_TTL, Chain
from stratacache._engine.engine import Engine
from stratacache._engine.guard import FAILED, Guard, Trace
from stratacache._engine.lease import Lease

__all__ = ["FAILED", "INHERIT", "TOMBSTONE_TTL", "Chain", "Engine", "Guard", "Lease", "Trace"]
