"""TTLs beyond what the tiers can store are refused at decoration, naming the limit."""

from __future__ import annotations

import sys

import pytest

from stratacache import cached, cached_tiered
from stratacache.config import MAX_TTL, check_ttl
from stratacache.errors import ConfigurationError
from stratacache.tiered import TieredCache
from stratacache.tiers import MemoryTier

HUGE = {
    "sys.maxsize": sys.maxsize,
    "10**400": 10**400,
    "10**5000": 10**5000,
    "inf": float("inf"),
    "MAX_TTL+1": MAX_TTL + 1,
    "1e300": 1e300,
}


@pytest.mark.parametrize("huge", HUGE.values(), ids=HUGE.keys())
def test_a_ttl_above_the_maximum_is_refused_at_decoration(huge: float) -> None:
    with pytest.raises(ConfigurationError, match=r"^ttl must be at most 315360000 seconds"):

        @cached(ttl=huge)
        def f(x: int) -> int:
            return x

    with pytest.raises(ConfigurationError, match=r"^ttl must be at most 315360000 seconds"):

        @cached_tiered(ttl=huge, tiers=[MemoryTier()])
        def g(x: int) -> int:
            return x


def test_the_message_points_at_ttl_none_and_names_the_constant() -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_ttl(sys.maxsize)
    assert "stratacache.config.MAX_TTL" in str(raised.value)
    assert "ttl=None" in str(raised.value)
    with pytest.raises(ConfigurationError) as other:
        check_ttl(10**400, "grace")
    assert str(other.value).startswith("grace must be at most")
    assert "ttl=None" not in str(other.value)  # only a ttl has that meaning for None
    assert "1329 bits" in str(other.value)  # not a 400-digit number


def test_the_maximum_itself_and_none_are_accepted() -> None:
    assert check_ttl(MAX_TTL) == float(MAX_TTL)
    assert check_ttl(None) is None

    @cached(ttl=MAX_TTL)
    def f(x: int) -> int:
        return x

    assert f(2) == 2


def test_direct_cache_calls_refuse_a_huge_ttl_too() -> None:
    cache = TieredCache([MemoryTier()], namespace="ttl-bounds")
    with pytest.raises(ConfigurationError, match="at most"):
        cache.set("k", 1, ttl=sys.maxsize)
    with pytest.raises(ConfigurationError, match="at most"):
        cache.expire("k", 10**400)


def test_a_huge_ttl_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_TTL", "1e400")
    with pytest.raises(ConfigurationError, match=r"^STRATACACHE_TTL must be at most"):

        @cached
        def f(x: int) -> int:
            return x
