"""Measure the invalidation bound: from ``invalidate()`` returning to another environment's
last stale read, over many runs (``python -m devkit.feedbound [runs] [check]``).

A warm environment (a real process, :class:`devkit.environment.Environment`) reads
``"k"`` in a tight loop; this process changes the origin and calls
``invalidate("k")`` at a random moment of the other's check period. A run's
result is when the other last began a read that was served the old value,
after ``invalidate()`` returned (0 when it never did).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devkit.environment import Environment
from devkit.servers import RedisServer
from stratacache import MemoryTier, RedisTier, TieredCache


def measure(runs: int, check: float) -> list[float]:
    """Seconds of stale reads after each run's ``invalidate()`` returned."""
    lags: list[float] = []
    with RedisServer() as server, tempfile.TemporaryDirectory() as folder:
        origin = Path(folder) / "origin"
        origin.write_text("v0")
        here = TieredCache(
            [MemoryTier(), RedisTier(server.url)], namespace="bound", generation_check=check
        )
        with Environment(server.url, "bound", origin, check) as other:
            other.read()
            for run in range(runs):
                old, new = f"v{run}", f"v{run + 1}"
                other.send(f"loop {3 * check}")
                time.sleep(check * (1 + random.random()))  # a random phase of its checks
                origin.write_text(new)
                here.invalidate("k")
                returned = time.time()
                reply = other.answer()
                last = reply["last"]
                assert new in last, f"run {run}: {new} never served"
                lags.append(max(0.0, last.get(old, 0.0) - returned))
        here.close()
    return lags


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    check = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    lags = measure(runs, check)
    print(
        f"STRATACACHE_GENERATION_CHECK={check}s, {runs} runs: last stale read after "
        f"invalidate() returned: median {statistics.median(lags):.3f}s, "
        f"max {max(lags):.3f}s (bound {check}s)"
    )


if __name__ == "__main__":
    main()
