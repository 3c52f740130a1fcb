"""README promises that need a server, each pinned at its stated value, on the wire.

Each test names the promise it holds. They go through the public API and check what
reaches Redis and DynamoDB (the requests sent, the records stored), not how the engine
is built inside.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from typing import Any

import pytest

from stratacache import DynamoDBTier, MemoryTier, RedisTier, TieredCache
from stratacache.keys import KeyLayout
from stratacache.metrics import MetricsRecorder
from stratacache.tiers import Tier
from tests.support import FakeClock, FakeTime, dynamodb_requests, throttle_call, wait_until

# ---------------------------------------------------------------- the stampede lock


def test_a_waiter_whose_lock_wait_runs_out_computes_the_value_itself(redis_client: Any) -> None:
    """ "The lock can cost duplicate work, never availability": a holder that outlasts
    ``lock_wait`` (5 s by default) does not keep a waiter from its value."""
    holding, release = threading.Event(), threading.Event()
    holder = TieredCache([MemoryTier(), RedisTier(client=redis_client)], namespace="lw", lock=True)
    key = holder.full_key("k")

    def slow() -> str:
        holding.set()
        assert release.wait(60)
        return "holder's"

    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(holder.get_or_compute("k", slow)))
    thread.start()
    try:
        assert holding.wait(30)
        wait_until(lambda: redis_client.exists(key))  # the holder's lease is stored
        clock = FakeTime()
        waiter = TieredCache(
            [MemoryTier(), RedisTier(client=redis_client)],
            namespace="lw",
            lock=True,
            monotonic=clock,
            sleep=clock.sleep,
        )
        computed: list[int] = []

        def compute() -> str:
            computed.append(1)
            return "waiter's"

        value = waiter.get_or_compute("k", compute)
        assert value == "waiter's"
        assert computed == [1]
        assert 5.0 <= clock.slept < 5.2  # it waited lock_wait, then computed itself
        assert results == []  # the holder is still computing
    finally:
        release.set()
        thread.join(60)
    assert results == ["holder's"]


# ---------------------------------------------------------------- DynamoDB consistency


def test_consistent_read_true_makes_every_dynamodb_read_strongly_consistent(
    dynamodb_client: Any, table_name: str
) -> None:
    strong = DynamoDBTier(table_name, client=dynamodb_client, consistent_read=True)
    cache = TieredCache([strong], namespace="cr")
    cache.set("a", 1)
    sent = dynamodb_requests(dynamodb_client)
    assert cache.get("a") == 1  # the first lookup: entry and generation in one BatchGetItem
    assert cache.get_many(["a", "b"]) == {"a": 1}
    assert strong.get(cache.full_key("a")) is not None
    assert strong.remaining_ttl(cache.full_key("a")) is not None
    reads = [(op, params) for op, params in sent if op in ("GetItem", "BatchGetItem")]
    assert {op for op, _ in reads} == {"GetItem", "BatchGetItem"}
    for op, params in reads:
        if op == "GetItem":
            assert params["ConsistentRead"] is True, params
        else:
            assert all(r["ConsistentRead"] is True for r in params["RequestItems"].values())


def test_the_generation_behind_invalidate_all_is_read_strongly_consistent(
    dynamodb_client: Any, table_name: str
) -> None:
    """Entries are read eventually consistent by default; the generation counter never is."""
    clock = FakeClock()

    def environment() -> TieredCache:
        tier = DynamoDBTier(table_name, client=dynamodb_client, clock=clock)
        return TieredCache([MemoryTier(timer=clock), tier], namespace="gen", clock=clock)

    here, there = environment(), environment()
    here.set("k", "v1")
    assert there.get("k") == "v1"  # now in there's L1
    here.invalidate_all()
    sent = dynamodb_requests(dynamodb_client)
    clock.advance(5.01)  # the generation is due again
    assert there.get("k") is None
    counter = KeyLayout("gen").generation_key
    counter_reads = [
        params for op, params in sent if op == "GetItem" and params["Key"]["pk"]["S"] == counter
    ]
    assert counter_reads
    assert all(params["ConsistentRead"] is True for params in counter_reads)


# ---------------------------------------------------------------- compression


@pytest.mark.parametrize(("size", "compressed"), [(1023, False), (1024, True)])
def test_payloads_are_compressed_from_1_kib(redis_client: Any, size: int, compressed: bool) -> None:
    cache = TieredCache([RedisTier(client=redis_client)], namespace="z")
    value = "a" * (size - 2)  # the JSON serializer adds the two quotes
    cache.set("k", value)
    stored = redis_client.get(cache.full_key("k"))
    plain = f'"{value}"'.encode()
    assert stored.endswith(plain) is not compressed
    assert (zlib.compress(plain, 6) in stored) is compressed
    assert cache.get("k") == value


# ---------------------------------------------------------------- tombstones


def test_a_dynamodb_tombstone_is_kept_900_seconds_and_a_shorter_fill_keeps_that(
    dynamodb_client: Any, table_name: str
) -> None:
    clock = FakeClock()
    tier = DynamoDBTier(table_name, client=dynamodb_client, clock=clock)
    cache = TieredCache([tier], namespace="tomb", ttl=10, clock=clock)
    key = cache.full_key("k")

    def stored_ttl() -> int:
        item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}})["Item"]
        return int(item["ttl"]["N"])

    cache.set("k", "v1")
    cache.delete("k")
    assert stored_ttl() == math.ceil(clock.now + 900)
    assert cache.get("k") is None
    assert cache.get_or_compute("k", lambda: "v2") == "v2"  # a fill with a 10 s ttl
    assert stored_ttl() == math.ceil(clock.now + 900)  # not shortened
    assert cache.ttl("k") == pytest.approx(10)


# ---------------------------------------------------------------- generations


def test_the_generation_check_interval_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_client: Any
) -> None:
    monkeypatch.setenv("STRATACACHE_GENERATION_CHECK", "2")
    clock = FakeClock()

    def environment() -> TieredCache:
        tiers: list[Tier] = [MemoryTier(timer=clock), RedisTier(client=redis_client)]
        return TieredCache(tiers, namespace="check", clock=clock)

    here, there = environment(), environment()
    here.set("k", "v1")
    assert there.get("k") == "v1"
    here.invalidate_all()
    clock.advance(1.9)
    assert there.get("k") == "v1"  # its L1 copy, within the 2 s
    clock.advance(0.2)
    assert there.get("k") is None  # the generation was read again


# ---------------------------------------------------------------- DynamoDB faults


def test_a_dynamodb_validation_exception_fails_open(
    dynamodb_client: Any, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A table whose key is not the one the tier was told: DynamoDB answers
    ValidationException; the call still gets its value, counted and logged."""
    wrong = DynamoDBTier(table_name, client=dynamodb_client, key_attribute="id", breaker=False)
    cache = TieredCache([MemoryTier(), wrong], namespace="v", recorder=MetricsRecorder())
    with caplog.at_level(logging.WARNING, "stratacache"):
        assert cache.get_or_compute("k", lambda: "computed") == "computed"
    assert cache.get("k") == "computed"  # from L1
    assert cache.stats()["L3"]["errors"] >= 1
    assert any("ValidationException" in r.getMessage() for r in caplog.records)


def test_a_partly_written_dynamodb_batch_is_counted_and_logged(
    dynamodb_client: Any,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``set_many`` of 150 entries: the first write of 100 lands, the second is throttled."""
    second_transaction_throttled = throttle_call(dynamodb_client, "TransactWriteItems", 2)
    l3 = DynamoDBTier(table_name, client=dynamodb_client, breaker=False)
    cache = TieredCache([MemoryTier(maxsize=1000), l3], namespace="pw", recorder=MetricsRecorder())
    items = {f"k{n}": n for n in range(150)}
    with caplog.at_level(logging.WARNING, "stratacache"):
        cache.set_many(items)
    assert second_transaction_throttled == [2]
    stored = {
        key
        for key in (cache.full_key(k) for k in items)
        if "Item" in dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}})
    }
    assert len(stored) == 100  # the first write landed
    assert cache.stats()["L3"]["errors"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "ThrottlingException" in lines[0]
    assert cache.get_many(list(items)) == items  # the values are right (L1)
