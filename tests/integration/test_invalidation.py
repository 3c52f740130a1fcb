"""Invalidation: one entry everywhere, or a whole function at once through a generation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stratacache import (
    CachedFunction,
    DynamoDBTier,
    MemoryTier,
    RedisTier,
    Tier,
    cached,
    cached_tiered,
)
from stratacache.envelope import TOMBSTONE
from stratacache.tiers import MISS
from tests.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class World:
    """The origin's data and how often it was read."""

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0

    def read(self, sku: str) -> str:
        self.reads += 1
        return f"{sku}@v{self.version}"


def environment(world: World, shared: Tier, clock: FakeClock) -> CachedFunction[[str], str]:
    """One execution environment's copy of the same cached function (same keys)."""

    @cached_tiered(ttl=300, tiers=[MemoryTier(), shared], namespace="t")
    def price(sku: str) -> str:
        return world.read(sku)

    price.cache._engine.chain.generation.clock = clock  # when the generation is read again
    return price


@pytest.fixture(params=["redis", "dynamodb"])
def shared(request: pytest.FixtureRequest) -> Tier:
    if request.param == "redis":
        return RedisTier(client=request.getfixturevalue("redis_client"))
    client = request.getfixturevalue("dynamodb_client")
    return DynamoDBTier(request.getfixturevalue("table_name"), client=client)


def test_invalidate_all_reaches_other_environments_within_the_check_interval(
    shared: Tier,
) -> None:
    world, clock = World(), FakeClock(0)
    a, b = environment(world, shared, clock), environment(world, shared, clock)
    assert a("x") == b("x") == "x@v1"
    assert world.reads == 1  # b found a's value in the shared tier

    world.version = 2
    a.invalidate_all()
    assert a("x") == "x@v2"  # here at once
    assert world.reads == 2
    clock.advance(4.9)
    assert b("x") == "x@v1"  # b's L1 may lag, for at most generation_check seconds
    clock.advance(0.2)
    assert b("x") == "x@v2"  # b re-read the generation: a's new value, from the shared tier
    assert world.reads == 2
    generations = [f.cache._engine.chain.generation.value for f in (a, b)]
    assert generations == [1, 1]


def test_a_new_environment_starts_on_the_current_generation(shared: Tier) -> None:
    world, clock = World(), FakeClock(0)
    a = environment(world, shared, clock)
    a("x")
    a.invalidate_all()
    world.version = 2
    late = environment(world, shared, clock)
    assert late("x") == "x@v2"  # never sees the invalidated entry


def test_invalidate_all_without_a_shared_tier_clears_this_environment() -> None:
    world = World()

    @cached(ttl=300, namespace="t")
    def price(sku: str) -> str:
        return world.read(sku)

    price("x")
    world.version = 2
    price.invalidate_all()
    assert price("x") == "x@v2"
    assert world.reads == 2


def test_invalidate_removes_one_entry_from_every_tier(redis_client: Any) -> None:
    world = World()

    @cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="t")
    def price(sku: str) -> str:
        return world.read(sku)

    price("x")
    price("y")
    assert price.invalidate("x") is True
    full = price.cache.full_key(price.cache_key("x"))
    l1, l2 = price.cache.tiers
    assert l1.get(full) is MISS
    codec = price.cache._engine.chain.codec
    assert codec.decode(full, l2.get(full)).kind == TOMBSTONE  # refuses older fills
    assert not price.cache.has(price.cache_key("x"))
    price("x")
    price("y")
    assert world.reads == 3


SHARED_MODULE = """
import sys
import redis
from stratacache import MemoryTier, RedisTier, cached_tiered

url = sys.argv[1]
control = redis.Redis.from_url(url)

@cached_tiered(ttl=300, tiers=[MemoryTier(), RedisTier(url)])
def price(sku):
    control.incr("origin")
    return sku.upper()

if __name__ == "__main__":
    action = sys.argv[2]
    if action == "read":
        print(price("x"))
    elif action == "invalidate":
        print(price.invalidate("x"))
    else:
        price.invalidate_all()
"""


def test_invalidation_across_processes(
    tmp_path: Path, redis_server: Any, redis_client: Any
) -> None:
    (tmp_path / "priced.py").write_text(textwrap.dedent(SHARED_MODULE))

    def run(action: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "priced", redis_server.url, action],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT / 'python'}"},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    assert run("read") == "X"
    assert run("read") == "X"
    assert int(redis_client.get("origin")) == 1
    assert run("invalidate") == "True"  # another environment removes the entry
    assert run("read") == "X"
    assert int(redis_client.get("origin")) == 2
    run("invalidate_all")
    assert run("read") == "X"
    assert int(redis_client.get("origin")) == 3
