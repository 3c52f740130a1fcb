"""One conformance suite that every tier passes: memory, a real Redis server, a Redis
Cluster, DynamoDB over HTTP (moto) and DynamoDB through the DAX client.

Memory and DynamoDB take an injected clock; Redis expires keys on its own clock, so
``pass_expiry`` waits until the server itself reports the keys gone (polling, with a
generous timeout) instead of sleeping a fixed time.

Beyond the core operations, every tier that declares ``versioned`` passes the
conditional writes invalidation stands on (compare-and-set, tombstones that are never
kept shorter, leases given back only by their holder), and every tier that declares
``counter`` the generation counters behind ``invalidate_all()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from devkit.dax import moto_dax_client
from devkit.faults import RedisClusterServers

from stratacache.envelope import TOMBSTONE, Codec, new_version
from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, RedisTier, Tier
from stratacache.tiers.base import ANY, FOREIGN, CounterTier, Foreign, VersionedTier
from tests.support import FakeClock, wait_until

TIERS = ["memory", "redis", "redis-cluster", "dynamodb", "dax"]
SHARED = TIERS[1:]  # every tier but memory holds leases, tombstones and counters


@dataclass
class Subject:
    name: str
    tier: Tier
    advance: Callable[[float], None]
    """Let ``seconds`` pass for the tier (a fake clock moves; Redis really waits)."""
    gone: Callable[[str], bool] | None = None
    """For tiers on their own clock: whether the server itself no longer holds a key."""
    plant_foreign: Callable[[str], None] | None = None
    """Store something at a key that is not one of our records (another application's)."""

    def found(self, record: bytes) -> object:
        """What a refused conditional write hands back when ``record`` is there: the record,
        but MISS through the DAX client, whose ConditionalCheckFailed carries no item."""
        return MISS if self.name == "dax" else record

    def pass_expiry(self, ttl: float, *keys: str) -> None:
        """Move past ``ttl``: at once on a fake clock, else until the server dropped ``keys``."""
        if self.gone is None:
            self.advance(ttl + 1.1)  # DynamoDB's ttl attribute has whole-second resolution
            return
        wait_until(lambda: all(self.gone(key) for key in keys))  # type: ignore[misc]


@pytest.fixture
def dax_client(moto_server: Any) -> Iterator[Any]:
    with moto_dax_client(moto_server.endpoint) as client:
        yield client


def _redis(name: str, tier: RedisTier) -> Subject:
    return Subject(
        name,
        tier,
        time.sleep,
        gone=lambda key: not tier.client.exists(key),
        plant_foreign=lambda key: tier.client.hset(key, "field", "another type"),
    )


def make_subject(request: pytest.FixtureRequest, name: str) -> Subject:
    if name == "memory":
        clock = FakeClock()
        return Subject(name, MemoryTier(maxsize=1000, timer=clock), clock.advance)
    if name == "redis":
        return _redis(name, RedisTier(client=request.getfixturevalue("redis_client")))
    if name == "redis-cluster":
        cluster = cast(RedisClusterServers, request.getfixturevalue("redis_cluster"))
        tier = RedisTier(cluster.url, cluster=True)
        tier.client.flushall(target_nodes="primaries")
        request.addfinalizer(tier.close)
        return _redis(name, tier)
    client = request.getfixturevalue("dynamodb_client" if name == "dynamodb" else "dax_client")
    clock = FakeClock(float(int(time.time())))  # whole seconds, as DynamoDB rounds ttl
    table = request.getfixturevalue("table_name")

    def plant(key: str) -> None:
        item = {"pk": {"S": key}, "v": {"S": "another application's"}}
        client.put_item(TableName=table, Item=item)

    dynamodb = DynamoDBTier(table, client=client, clock=clock)
    return Subject(name, dynamodb, clock.advance, plant_foreign=plant)


@pytest.fixture(params=TIERS)
def subject(request: pytest.FixtureRequest) -> Subject:
    return make_subject(request, request.param)


@pytest.fixture(params=SHARED)
def shared(request: pytest.FixtureRequest) -> Subject:
    """The tiers that hold what invalidation and the stampede lease stand on."""
    return make_subject(request, request.param)


# The devkit's DAX node forwards no TransactWriteItems, so swap_many is checked on the rest.
@pytest.fixture(params=[name for name in SHARED if name != "dax"])
def batched(request: pytest.FixtureRequest) -> Subject:
    return make_subject(request, request.param)


# Redis keeps the longer of the two lifetimes itself (in its script); DynamoDB's tier takes
# ``keep`` as given, and the cache passes the longer one (see test_readme_promises'
# test_a_dynamodb_tombstone_is_kept_900_seconds_and_a_shorter_fill_keeps_that).
@pytest.fixture(params=["redis", "redis-cluster"])
def keeps_longer(request: pytest.FixtureRequest) -> Subject:
    return make_subject(request, request.param)


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
    subject.tier.set("short", b"v", ttl=2)
    subject.tier.set("long", b"v", ttl=60)
    assert subject.tier.get("short") == b"v"
    subject.pass_expiry(2, "short")
    assert subject.tier.get("short") is MISS
    assert subject.tier.remaining_ttl("short") is MISS
    assert subject.tier.get("long") == b"v"


def test_get_many_keeps_order_and_marks_misses(subject: Subject) -> None:
    subject.tier.set_many({"a": b"1", "c": b"3"}, ttl=60)
    assert subject.tier.get_many(["c", "b", "a", "c"]) == [b"3", MISS, b"1", b"3"]
    assert subject.tier.get_many([]) == []


def test_set_many_applies_the_ttl_to_every_entry(subject: Subject) -> None:
    subject.tier.set_many({"a": b"1", "b": b"2"}, ttl=2)
    subject.pass_expiry(2, "a", "b")
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


# ---------------------------------------------------------------- capabilities


def test_shared_tiers_declare_conditional_writes_and_counters(subject: Subject) -> None:
    shared = not isinstance(subject.tier, MemoryTier)
    assert subject.tier.capabilities.versioned is shared
    assert subject.tier.capabilities.counter is shared


# ---------------------------------------------------------------- conditional writes

CODEC = Codec()


def value_record(key: str, value: object = "v") -> tuple[bytes, bytes]:
    """A value record as the cache writes it, and its version."""
    version = new_version()
    blob = CODEC.wrap(
        key, CODEC.payload(value), version=version, generation=0, expires_at=None, keep_until=None
    )
    return blob, version


def tombstone(key: str, keep: float) -> tuple[bytes, bytes]:
    version = new_version()
    return CODEC.tombstone(key, version, 0, time.time() + keep), version


def versioned(subject: Subject) -> VersionedTier:
    assert subject.tier.capabilities.versioned
    return cast(VersionedTier, subject.tier)


def test_a_write_expecting_nothing_lands_only_on_an_empty_key(shared: Subject) -> None:
    tier = versioned(shared)
    first, _ = value_record("k", "first")
    second, _ = value_record("k", "second")
    assert tier.swap("k", first, 60, None) == (True, MISS)
    written, found = tier.swap("k", second, 60, None)
    assert written is False
    assert found == shared.found(first)  # what is there comes back: no second read
    assert tier.get("k") == first


def test_a_write_expecting_a_version_lands_only_on_that_version(shared: Subject) -> None:
    tier = versioned(shared)
    first, version = value_record("k", "first")
    second, _ = value_record("k", "second")
    third, _ = value_record("k", "third")
    tier.swap("k", first, 60, None)
    assert tier.swap("k", second, 60, new_version()) == (False, shared.found(first))
    assert tier.get("k") == first
    assert tier.swap("k", second, 60, version) == (True, first)
    assert tier.get("k") == second
    assert tier.swap("k", third, 60, version)[0] is False  # that version is gone now
    assert tier.get("k") == second


def test_an_unconditional_write_lands_whatever_is_there(shared: Subject) -> None:
    tier = versioned(shared)
    first, _ = value_record("k", "first")
    second, _ = value_record("k", "second")
    assert tier.swap("k", first, 60, ANY)[0] is True
    assert tier.swap("k", second, 60, ANY) == (True, first)
    assert tier.get("k") == second


def test_a_tombstone_refuses_a_fill_that_saw_the_value_before_it(shared: Subject) -> None:
    tier = versioned(shared)
    value, seen = value_record("k", "old")
    tier.swap("k", value, 60, None)
    grave, grave_version = tombstone("k", 900)
    assert tier.swap("k", grave, 900, seen) == (True, value)  # the invalidation
    late, _ = value_record("k", "computed before the invalidation")
    assert tier.swap("k", late, 60, seen) == (False, shared.found(grave))  # refused
    assert CODEC.decode("k", cast(bytes, tier.get("k"))).kind == TOMBSTONE
    fresh, _ = value_record("k", "computed after it")
    assert tier.swap("k", fresh, 60, grave_version)[0] is True  # one that saw it lands


def test_a_write_never_shortens_how_long_a_tombstone_is_kept(keeps_longer: Subject) -> None:
    tier = versioned(keeps_longer)
    grave, grave_version = tombstone("k", 900)
    tier.swap("k", grave, 900, None)
    fill, _ = value_record("k")
    assert tier.swap("k", fill, 10, grave_version)[0] is True
    left = tier.remaining_ttl("k")
    assert isinstance(left, float)
    assert left > 800  # still kept for the tombstone's 900 s, not the fill's 10


def test_many_conditional_writes_land_exactly_where_their_condition_holds(
    batched: Subject,
) -> None:
    tier = versioned(batched)
    there, version = value_record("a")
    tier.swap("a", there, 60, None)
    tier.swap("b", value_record("b")[0], 60, None)
    new_a, new_b, new_c = (value_record(key, "new")[0] for key in "abc")
    done = tier.swap_many(
        {
            "a": (new_a, version, 60),  # the version it saw: lands
            "b": (new_b, None, 60),  # saw nothing, but something is there: refused
            "c": (new_c, None, 60),  # saw nothing, nothing there: lands
        }
    )
    assert done == [True, False, True]
    assert tier.get_many(["a", "c"]) == [new_a, new_c]
    assert tier.get("b") != new_b


def test_a_lease_is_given_back_only_by_its_holder(shared: Subject) -> None:
    tier = versioned(shared)
    lease, token = value_record("k", "a lease")
    tier.swap("k", lease, 10, None)
    assert tier.delete_if("k", new_version()) is False  # another holder's token
    assert tier.get("k") == lease
    assert tier.delete_if("k", token) is True
    assert tier.get("k") is MISS
    assert tier.delete_if("k", token) is False


def test_something_not_ours_is_foreign_and_replaced_only_when_expected(
    shared: Subject,
) -> None:
    tier = versioned(shared)
    assert shared.plant_foreign is not None
    shared.plant_foreign("k")
    assert isinstance(tier.get("k"), Foreign)  # a counted miss, never a value
    blob, _ = value_record("k")
    written, found = tier.swap("k", blob, 60, None)
    assert written is False
    assert shared.name == "dax" or isinstance(found, Foreign)
    assert tier.swap("k", blob, 60, FOREIGN)[0] is True
    assert tier.get("k") == blob


# ---------------------------------------------------------------- counters


def counters(subject: Subject) -> CounterTier:
    assert subject.tier.capabilities.counter
    return cast(CounterTier, subject.tier)


def test_a_counter_starts_at_zero_and_counts_up_by_one(shared: Subject) -> None:
    tier = counters(shared)
    assert tier.read_counter("ns#gen") == 0
    assert tier.bump_counter("ns#gen", 0) == 1
    assert tier.bump_counter("ns#gen", 0) == 2
    assert tier.read_counter("ns#gen") == 2
    assert tier.read_counter("other#gen") == 0


def test_a_counter_never_goes_back_below_its_floor(shared: Subject) -> None:
    tier = counters(shared)
    assert tier.bump_counter("ns#gen", 7) == 7  # lost, and bumped past what was seen
    assert tier.read_counter("ns#gen") == 7
    assert tier.bump_counter("ns#gen", 0) == 8


def test_an_entry_and_a_counter_are_read_together(shared: Subject) -> None:
    tier = counters(shared)
    blob, _ = value_record("ns|k")
    shared.tier.set("ns|k", blob, 60)
    tier.bump_counter("ns#gen", 3)
    assert tier.get_with_counter("ns|k", "ns#gen") == (blob, 3)
    assert tier.get_with_counter("ns|absent", "ns#gen") == (MISS, 3)
    assert tier.get_with_counter("ns|k", "never#gen") == (blob, None)  # no counter stored
