"""A value the serializer cannot encode is returned to the caller and left uncached."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from stratacache import RedisTier, cached


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
    assert redis_client.dbsize() == 0
    left = [r.getMessage() for r in caplog.records if "uncached" in r.getMessage()]
    assert len(left) == 2  # one warning line per call
    assert all(line.startswith("stratacache left ") for line in left)
