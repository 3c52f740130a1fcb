"""One conformance suite that every tier passes: memory, a real Redis server, DynamoDB over HTTP.

Memory and DynamoDB take an injected clock; Redis expires keys on its own
clock, so its ``advance`` really waits (a fraction of a second).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier, Tier
from tests.support import FakeClock


@dataclass
class Subject:
    tier: Tier
    advance: Callable[[float], None]


@pytest.fixture(params=["memory", "redis", "dynamodb"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "memory":
        clock = FakeClock()
        return Subject(MemoryTier(maxsize=1000, timer=clock), clock.advance)
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return Subject(RedisTier(client=client), time.sleep)
    client = request.getfixturevalue("dynamodb_client")
    clock = FakeClock(float(int(time.time())))  # whole seconds, as DynamoDB rounds ttl
    table = request.getfixturevalue("table_name")
    return Subject(DynamoDBTier(table, client=client, clock=clock), clock.advance)


def test_every_tier_implements_the_protocol(subject: Subject) -> None:
    assert isinstance(subject.tier, Tier)


def test_an_unknown_key_is_a_miss_not_none(subject: Subject) -> None:
    assert subject.tier.get("absent") is MISS
    assert subject.tier.remaining_ttl("absent") is MISS


def test_set_then_get_returns_the_bytes(subject: Subject) -> None:
    subject.tier.set("k", b"\x00payload\xff", ttl=60)
    assert subject.tier.get("k") == b"\x00payload\xff"


def test_empty_bytes_are_a_value_not_a_miss(subject: Subject) -> None:
    subject.tier.set("k", b"", ttl=60)
    assert subject.tier.get("k") == b""


def test_set_overwrites(subject: Subject) -> None:
    subject.tier.set("k", b"old", ttl=60)
    subject.tier.set("k", b"new", ttl=60)
    assert subject.tier.get("k") == b"new"


def test_remaining_ttl_counts_down_from_the_ttl_given(subject: Subject) -> None:
    subject.tier.set("k", b"v", ttl=60)
    left = subject.tier.remaining_ttl("k")
    assert isinstance(left, float)
    assert 58 < left <= 61  # DynamoDB rounds its epoch-seconds ttl attribute up


def test_no_ttl_means_no_expiry(subject: Subject) -> None:
    subject.tier.set("k", b"v", ttl=None)
    assert subject.tier.remaining_ttl("k") is None
    subject.advance(0.3)
    assert subject.tier.get("k") == b"v"


def test_an_entry_expires_after_its_ttl(subject: Subject) -> None:
    subject.tier.set("short", b"v", ttl=0.2)
    subject.tier.set("long", b"v", ttl=60)
    assert subject.tier.get("short") == b"v"
    subject.advance(1.1)  # DynamoDB's ttl attribute has whole-second resolution
    assert subject.tier.get("short") is MISS
    assert subject.tier.remaining_ttl("short") is MISS
    assert subject.tier.get("long") == b"v"


def test_get_many_keeps_order_and_marks_misses(subject: Subject) -> None:
    subject.tier.set_many({"a": b"1", "c": b"3"}, ttl=60)
    assert subject.tier.get_many(["c", "b", "a", "c"]) == [b"3", MISS, b"1", b"3"]
    assert subject.tier.get_many([]) == []


def test_set_many_applies_the_ttl_to_every_entry(subject: Subject) -> None:
    subject.tier.set_many({"a": b"1", "b": b"2"}, ttl=0.2)
    subject.advance(1.1)
    assert subject.tier.get_many(["a", "b"]) == [MISS, MISS]


def test_delete_reports_whether_the_key_was_there(subject: Subject) -> None:
    subject.tier.set("k", b"v", ttl=60)
    assert subject.tier.delete("k") is True
    assert subject.tier.get("k") is MISS
    assert subject.tier.delete("k") is False


def test_delete_many_removes_only_the_keys_given(subject: Subject) -> None:
    subject.tier.set_many({"a": b"1", "b": b"2", "c": b"3"}, ttl=60)
    subject.tier.delete_many(["a", "c", "never-set"])
    assert subject.tier.get_many(["a", "b", "c"]) == [MISS, b"2", MISS]


def test_clear_removes_exactly_the_prefix(subject: Subject) -> None:
    subject.tier.set_many({"ns1:a": b"1", "ns1:b": b"2", "ns2:a": b"3", "ns1*x": b"4"}, ttl=60)
    assert subject.tier.clear("ns1:") == 2
    assert subject.tier.get_many(["ns1:a", "ns1:b", "ns2:a", "ns1*x"]) == [MISS, MISS, b"3", b"4"]


def test_many_entries_round_trip_in_batches(subject: Subject) -> None:
    items = {f"k{i}": str(i).encode() for i in range(260)}  # > DynamoDB's 100 and 25 batches
    subject.tier.set_many(items, ttl=60)
    assert subject.tier.get_many(list(items)) == list(items.values())
    subject.tier.delete_many(list(items))
    assert set(subject.tier.get_many(list(items))) == {MISS}
