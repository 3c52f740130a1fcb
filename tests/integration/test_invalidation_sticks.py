"""After invalidate() or refresh() returns, nothing computed or read before it is served.

Each test stops a call at a chosen point (mid-computation, or between its read of a
shared tier and its promotion), invalidates or refreshes meanwhile, lets the call go
on, and then reads, in this environment and in a new one, on real Valkey and moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from devkit.roundtrips import dynamodb_calls, redis_round_trips

from stratacache import MemoryTier, cached_tiered
from stratacache.tiers.base import Tier
from tests.support import Gate, GatedDynamoDB, GatedRedis, in_thread
from tests.support import MovingData as Origin

Environment = Callable[..., Any]


@pytest.fixture
def environment(redis_client: Any, dynamodb_client: Any, table_name: str) -> Environment:
    """A new execution environment's copy of one cached function over L1, L2 and L3."""

    def make(
        origin: Origin,
        lock: bool = True,
        l2: Gate | None = None,
        l3: Gate | None = None,
        writes: Gate | None = None,
    ) -> Any:
        redis, dynamodb = (
            GatedRedis(client=redis_client),
            GatedDynamoDB(table_name, client=dynamodb_client),
        )
        redis.gate, dynamodb.gate = l2 or Gate(), l3 or Gate()
        redis.write_gate = dynamodb.write_gate = writes or Gate()  # stops the first to write
        tiers: list[Tier] = [MemoryTier(), redis, dynamodb]

        @cached_tiered(ttl=300, tiers=tiers, namespace="sticks", lock=lock)
        def price(sku: str) -> str:
            return origin.read(sku)

        return price

    return make


@pytest.mark.parametrize("lock", [True, False], ids=["lock", "no-lock"])
def test_a_fill_in_flight_cannot_undo_an_invalidate(environment: Environment, lock: bool) -> None:
    origin = Origin()
    price = environment(origin, lock=lock)
    origin.hold = release = threading.Event()
    filler, got = in_thread(lambda: price("x"))
    assert origin.holding.wait(30)  # the fill has read v1 and is still computing
    origin.version = 2
    price.invalidate("x")
    assert price("x") == "x@v2"  # asked after invalidate() returned: computed anew
    release.set()
    filler.join(30)
    assert got == ["x@v1"]  # the filler began before the invalidate: v1 is its answer
    assert price("x") == "x@v2"  # but its write was refused in L1 ...
    assert environment(origin, lock=lock)("x") == "x@v2"  # ... and in L2 and L3
    assert origin.reads == 2


def test_a_fill_in_flight_cannot_undo_a_refresh(environment: Environment) -> None:
    origin = Origin()
    price = environment(origin)
    origin.hold = release = threading.Event()
    filler, got = in_thread(lambda: price("x"))
    assert origin.holding.wait(30)
    origin.version = 2
    assert price.refresh("x") == "x@v2"
    release.set()
    filler.join(30)
    assert got == ["x@v1"]
    assert price("x") == "x@v2"
    assert environment(origin)("x") == "x@v2"


@pytest.mark.parametrize("then", ["invalidate", "refresh"])
def test_an_l2_hit_read_before_is_not_promoted_into_l1_after(
    environment: Environment, then: str
) -> None:
    origin = Origin()
    environment(origin)("x")  # v1 in every shared tier
    gate = Gate()
    price = environment(origin, l2=gate)  # a new environment: its L1 is empty
    gate.armed = True
    reader, got = in_thread(lambda: price("x"))
    assert gate.stopped.wait(30)  # it has read v1 from L2, and not yet copied it into L1
    origin.version = 2
    getattr(price, then)("x")
    gate.go.set()
    reader.join(30)
    assert got == ["x@v1"]
    assert price("x") == "x@v2"  # the late promotion was refused
    assert price.cache.stats()["L1"]["hits"] == (1 if then == "refresh" else 0)


def test_an_l3_hit_read_before_is_not_promoted_into_l2_after(
    environment: Environment, redis_client: Any
) -> None:
    origin = Origin()
    environment(origin)("x")
    redis_client.flushall()  # only L3 has v1 now
    gate = Gate()
    price = environment(origin, l3=gate)
    gate.armed = True
    reader, got = in_thread(lambda: price("x"))
    assert gate.stopped.wait(30)  # read v1 from L3; about to copy it into L2 and L1
    origin.version = 2
    price.invalidate("x")
    gate.go.set()
    reader.join(30)
    assert got == ["x@v1"]
    assert environment(origin)("x") == "x@v2"  # L2 kept the tombstone, not the late v1


def test_a_read_while_invalidate_is_between_tiers_cannot_undo_it(
    environment: Environment,
) -> None:
    """A reader meeting a half-done invalidate never copies the old value over a tombstone."""
    origin = Origin()
    environment(origin)("x")  # v1 in every shared tier
    writes = Gate()
    invalidating = environment(origin, writes=writes)
    writes.armed = True
    origin.version = 2
    invalidator, _ = in_thread(lambda: invalidating.invalidate("x"))
    assert writes.stopped.wait(30)  # one shared tier has its tombstone, the other not yet
    assert environment(origin)("x") == "x@v1"  # it began before invalidate() ended
    writes.go.set()
    invalidator.join(30)
    assert environment(origin)("x") == "x@v2"
    assert invalidating("x") == "x@v2"


# ---------------------------------------------------------------- round trips


def test_an_l2_hit_in_a_new_environment_is_one_round_trip(
    environment: Environment, dynamodb_client: Any
) -> None:
    origin = Origin()
    environment(origin)("x")
    fresh = environment(origin)
    calls = dynamodb_calls(dynamodb_client)
    with redis_round_trips() as trips:
        assert fresh("x") == "x@v1"
    assert trips == [["MGET", "EVAL"]]  # the entry, the generation and the feed together
    assert calls == []


def test_a_full_miss_with_the_lock_is_three_round_trips_and_two_dynamodb_calls(
    environment: Environment, dynamodb_client: Any
) -> None:
    price = environment(Origin())
    calls = dynamodb_calls(dynamodb_client)
    with redis_round_trips() as trips:
        assert price("x") == "x@v1"
    # read (with the generation), the lease, the value's write that replaces the lease
    # (and writes back the generation Redis did not hold, in the same round trip)
    assert [trip[0] for trip in trips] == ["MGET", "EVAL", "EVAL"]
    assert calls == ["BatchGetItem", "PutItem"]  # the entry with the generation DynamoDB keeps
