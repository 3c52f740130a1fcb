"""What every docstring example may use without importing it (pytest's doctest namespace)."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace.update(MemoryTier=MemoryTier, TieredCache=TieredCache)
