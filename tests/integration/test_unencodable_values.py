"""A value the serializer cannot encode is returned to the caller and left uncached."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import MemoryTier, RedisTier, cached, cached_tiered
from tests.support import entry_keys


@pytest.mark.parametrize(
    "value",
    ["lone surrogate \ud800", 10**5000],
    ids=["lone-surrogate", "int-past-digit-limit"],
)
def test_unencodable_result_reaches_the_caller_uncached(
    value: object, redis_tier: RedisTier, redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    @cached(ttl=60, tier=redis_tier, namespace="t")
    def compute(x: int) -> object:
        calls.append(x)
        return value

    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert compute(1) == value
        assert compute(1) == value

    assert calls == [1, 1]  # nothing was cached, so it ran twice
    assert entry_keys(redis_client) == []
    left = [r.getMessage() for r in caplog.records if "shared tiers" in r.getMessage()]
    assert len(left) == 1  # one warning line per function, not per call
    assert left[0].startswith("stratacache left ")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_l1_keeps_an_unencodable_value_and_warns_once_per_function(
    kind: str, redis_tier: RedisTier, redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    if kind == "sync":

        @cached_tiered(ttl=60, tiers=[MemoryTier(), redis_tier], namespace=f"l1-{kind}")
        def compute(x: int) -> object:
            calls.append(x)
            return "lone surrogate \ud800"

        call: Callable[[int], object] = compute
    else:

        @cached_tiered(ttl=60, tiers=[MemoryTier(), redis_tier], namespace=f"l1-{kind}")
        async def acompute(x: int) -> object:
            calls.append(x)
            return "lone surrogate \ud800"

        def run(x: int) -> object:
            return asyncio.run(acompute(x))

        call = run

    with caplog.at_level(logging.WARNING, logger="stratacache"):
        for x in (1, 1, 2, 2, 3):
            assert call(x) == "lone surrogate \ud800"
    assert calls == [1, 2, 3]  # L1 kept each value
    assert entry_keys(redis_client) == []  # the shared tier never took one (nor a lease)
    left = [r.getMessage() for r in caplog.records if "shared tiers" in r.getMessage()]
    assert len(left) == 1
