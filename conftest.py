"""What every docstring example may use without importing it (pytest's doctest namespace)."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache

# The engine's old module names: importing one warns by design, and they hold no examples.
collect_ignore = [
    f"python/stratacache/{name}.py"
    for name in ("records", "slots", "compute", "singleflight", "generations", "health")
]


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace.update(MemoryTier=MemoryTier, TieredCache=TieredCache)
