"""Tombstones, clearing and the generation bump, against in-memory fakes of our tiers."""

from __future__ import annotations

from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache
from stratacache._engine.feed import EVERYTHING
from stratacache._engine.guard import NOTHING_SEEN
from stratacache._engine.invalidation import forget
from stratacache.envelope import TOMBSTONE
from stratacache.errors import InvalidationError
from stratacache.metrics import MetricsRecorder
from stratacache.tiers.base import MISS, Capabilities
from tests.support import FakeClock, FakeFeedTier, FakeSharedTier, memory_over


class LoggedTier(FakeSharedTier):
    """A FakeSharedTier that writes its name and operation into a log shared by all tiers."""

    def __init__(self, clock: FakeClock, name: str, log: list[str], **kinds: bool) -> None:
        super().__init__(clock, name)
        self.log = log
        self.failing: Exception | None = None
        self.only: str | None = None  # fail this operation alone (else every one)
        if kinds:
            self.capabilities = Capabilities(**kinds)

    def _note(self, operation: str) -> None:
        self.log.append(f"{self.name}.{operation}")
        if self.failing is not None and self.only in (None, operation):
            raise self.failing

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        self._note("swap")
        return super().swap(key, blob, keep, expect)

    def swap_many(self, items: Any) -> list[bool]:
        self._note("swap_many")
        return [
            FakeSharedTier.swap(self, key, blob, keep, expect)[0]
            for key, (blob, expect, keep) in items.items()
        ]

    def delete(self, key: str) -> bool:
        self._note("delete")
        return super().delete(key)

    def delete_many(self, keys: Any) -> int:
        self._note("delete_many")
        return sum(super(LoggedTier, self).delete(key) for key in keys)

    def clear(self, prefix: str) -> int:
        self._note(f"clear({prefix})")
        return super().clear(prefix)

    def bump_counter(self, key: str, floor: int) -> int:
        self._note("bump_counter")
        return super().bump_counter(key, floor)


def cache(
    tiers: list[Any], clock: FakeClock, namespace: str = "inv", **options: Any
) -> TieredCache:
    return TieredCache(
        [MemoryTier(timer=clock), *tiers], namespace=namespace, ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600), **options,
    )  # fmt: skip


def test_tombstones_go_slowest_first_then_memory_and_carry_the_generation() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2, l3 = LoggedTier(clock, "L2", log), LoggedTier(clock, "L3", log)
    c = cache([l2, l3], clock, tombstone_ttl=30)
    c.invalidate_all()
    c.set("k", "v")
    key = c.full_key("k")
    log.clear()
    assert c.invalidate("k") is True
    assert log == ["L3.swap", "L2.swap"]
    assert c._engine.chain.guards[0].tier.get(key) is MISS
    for tier in (l2, l3):
        blob, keep_until = tier.data[key]
        assert keep_until == clock() + 60  # never shorter than the value it replaced
        record = c._engine.chain.codec.decode(key, blob)
        assert record.kind is TOMBSTONE
        assert record.generation == c._engine.chain.generation.value == 1
        assert record.expires_at == clock() + 30
    assert c.invalidate("k") is False  # only tombstones left: nothing live was removed


def test_what_was_removed_is_told_tier_by_tier() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    c = cache([shared], clock)
    key = c.full_key("k")
    assert c.invalidate("k") is False
    c.set("k", "v", ttl=10)
    c._engine.chain.guards[0].tier.delete(key)  # only the shared tier holds it
    assert c.invalidate("k") is True
    c.set("k", "v", ttl=10)
    shared.data.pop(key)  # only memory holds it
    assert c.invalidate("k") is True
    c.set("k", "v", ttl=10)
    c._engine.chain.guards[0].tier.delete(key)
    shared.data[key] = (shared.data[key][0], None)  # kept past its expiry in the shared tier
    clock.advance(10.0)  # exactly its end: not live any more
    assert c.invalidate("k") is False
    shared.data[key] = (b"foreign bytes", None)
    assert c.invalidate("k") is False


def test_a_trace_that_invalidates_notes_its_own_tombstone() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    c = cache([shared], clock, tombstone_ttl=30)
    chain = c._engine.chain
    key = c.full_key("k")
    trace = chain.begin()
    forget(chain, [key], trace)
    guard = chain.guards[1]
    version, until, lease = trace.seen[(guard.index, key)]
    record = chain.codec.decode(key, shared.data[key][0])
    assert (version, until, lease) == (record.version, clock() + 30, 0.0)
    assert not chain.marks.writable(key, trace.epoch)  # the trace began before the mark


def test_an_invalidation_marks_memory_and_ends_the_flight_of_its_key() -> None:
    clock = FakeClock()
    c = cache([FakeSharedTier(clock)], clock)
    chain = c._engine.chain
    since = chain.marks.epoch
    key, other = c.full_key("k"), c.full_key("other")
    assert chain.flights.try_lead(key)
    assert chain.flights.try_lead(other)
    c.invalidate("k")
    assert not chain.marks.writable(key, since)
    assert chain.marks.writable(other, since)
    assert set(chain.flights._flights) == {other}


def test_several_keys_go_in_one_batch_per_tier() -> None:
    clock = FakeClock()
    log: list[str] = []
    versioned = LoggedTier(clock, "L2", log)
    plain = LoggedTier(clock, "L3", log, versioned=False, counter=False)
    c = cache([versioned, plain], clock)
    c.set_many({"a": 1, "b": 2})
    log.clear()
    c.delete_many(["a", "b"])
    assert log == ["L3.delete_many", "L2.swap_many"]
    assert not plain.data
    assert c.get("a") is None
    assert c.get("b") is None
    log.clear()
    assert c.invalidate("a") is False
    assert log == ["L3.delete", "L2.swap"]
    c.set("a", 1)
    versioned.data.clear()
    c._engine.chain.guards[0].tier.delete(c.full_key("a"))
    assert c.invalidate("a") is True  # the plain tier's delete found it
    assert c.full_key("a") not in plain.data


def test_a_memory_tier_after_a_shared_one_does_not_stop_the_tombstones() -> None:
    clock = FakeClock()
    shared = FakeSharedTier(clock)
    c = TieredCache(
        [shared, MemoryTier(timer=clock)], namespace="inv", ttl=60, clock=clock,
        monotonic=clock, recorder=MetricsRecorder(interval=3600),
    )  # fmt: skip
    c.set("k", "v")
    assert c.invalidate("k") is True
    record = c._engine.chain.codec.decode(c.full_key("k"), shared.data[c.full_key("k")][0])
    assert record.kind is TOMBSTONE


def test_strict_raises_the_first_failure_slowest_tier_first_after_trying_every_tier() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2, l3 = LoggedTier(clock, "L2", log), LoggedTier(clock, "L3", log)
    c = cache([l2, l3], clock)
    c.set("k", "v")
    l2.failing, l3.failing = ConnectionError("L2 down"), ConnectionError("L3 down")
    log.clear()
    with pytest.raises(InvalidationError) as raised:
        c.invalidate("k", strict=True)
    assert raised.value.__cause__ is l3.failing
    assert log == ["L3.swap", "L2.swap"]
    assert c._engine.chain.guards[0].tier.get(c.full_key("k")) is MISS  # memory still emptied
    l3.failing = None
    with pytest.raises(InvalidationError) as raised:
        c.invalidate("k", strict=True)
    assert raised.value.__cause__ is l2.failing
    l2.failing = None
    assert c.invalidate("k", strict=True) is True  # L2 still held the value


def test_a_failing_plain_tier_is_reported_too() -> None:
    clock = FakeClock()
    log: list[str] = []
    plain = LoggedTier(clock, "L2", log, versioned=False, counter=False)
    c = cache([plain], clock)
    plain.failing = ConnectionError("down")
    with pytest.raises(InvalidationError):
        c.invalidate("k", strict=True)
    assert c.invalidate("k") is False


def test_clear_scans_the_namespace_slowest_first_then_memory_refusing_older_writes() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2, l3 = LoggedTier(clock, "L2", log), LoggedTier(clock, "L3", log)
    c, neighbour = cache([l2, l3], clock), cache([l2, l3], clock, namespace="next")
    chain = c._engine.chain
    c.set("k", "v")
    neighbour.set("k", "kept")
    since = chain.marks.epoch
    assert chain.flights.try_lead(c.full_key("k"))
    log.clear()
    c.clear()
    prefix = chain.layout.prefix
    assert log == [f"L3.clear({prefix})", f"L2.clear({prefix})"]
    assert c.get("k") is None
    assert neighbour.get("k") == "kept"
    assert not chain.marks.writable("anything", since)
    assert chain.flights._flights == {}


def test_invalidate_all_bumps_the_counter_past_what_this_environment_saw() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    chain = c._engine.chain
    c.set("k", "v")
    chain.generation.observe(5)  # seen in an entry: the counter was lost with its server
    log.clear()
    c.invalidate_all()
    assert log == ["L2.bump_counter"]  # no scan
    assert l2.counters[chain.layout.generation_key] == 6
    assert chain.generation.value == 6
    c.invalidate_all()
    assert chain.generation.value == 7


def test_invalidate_all_clears_when_the_bump_fails_or_there_is_no_counter() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    c.set("k", "v")
    l2.failing, l2.only = ConnectionError("down"), "bump_counter"
    c.invalidate_all()
    l2.failing = None
    assert c._engine.chain.generation.value == 0
    assert log[-1] == f"L2.clear({c._engine.chain.layout.prefix})"
    assert c.get("k") is None
    plain = LoggedTier(clock, "L2", log, versioned=False, counter=False)
    d = cache([plain], clock)
    d.set("k", "v")
    log.clear()
    d.invalidate_all()
    assert log == [f"L2.clear({d._engine.chain.layout.prefix})"]
    assert d.get("k") is None
    assert d._engine.chain.generation.value == 0


def test_invalidate_all_in_memory_alone_moves_the_generation_on() -> None:
    clock = FakeClock()
    c = cache([], clock)
    c.set("k", "v")
    c.invalidate_all()
    assert c._engine.chain.generation.value == 1
    assert c.get("k") is None
    c.invalidate_all()
    assert c._engine.chain.generation.value == 2


# ---------------------------------------------------------------- refused or unreachable


class OutOfMemoryError(Exception):
    """What a full Redis under ``noeviction`` answers a write: a refusal, not silence."""


ClusterDownError = type("ClusterDownError", (Exception,), {})
MasterDownError = type("MasterDownError", (Exception,), {})
UNREACHABLE = [ConnectionError, TimeoutError, ClusterDownError, MasterDownError]


def test_a_tier_that_refuses_a_tombstone_gets_a_delete_and_says_what_it_held() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    cache([l2], clock).set("k", "v")
    other = cache([l2], clock)  # a memory of its own: only L2 holds the value
    l2.failing, l2.only = OutOfMemoryError("OOM command not allowed"), "swap"
    log.clear()
    assert other.invalidate("k", strict=True) is True
    assert log == ["L2.swap", "L2.delete"]
    assert other.full_key("k") not in l2.data
    assert other.invalidate("absent", strict=True) is False  # nothing was there to delete


def test_a_tier_that_refuses_a_batch_of_tombstones_gets_one_batch_delete() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    c.set("a", 1)
    c.set("b", 2)
    l2.failing, l2.only = OutOfMemoryError("OOM command not allowed"), "swap_many"
    log.clear()
    c.delete_many(["a", "b"])
    assert log == ["L2.swap_many", "L2.delete_many"]
    assert l2.data == {}


def test_a_trace_that_invalidates_through_a_refusal_saw_nothing_there() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    chain = c._engine.chain
    key = c.full_key("k")
    l2.failing, l2.only = OutOfMemoryError("OOM command not allowed"), "swap"
    trace = chain.begin()
    forget(chain, [key], trace)
    assert trace.seen[(chain.guards[1].index, key)] == NOTHING_SEEN


@pytest.mark.parametrize("kind", UNREACHABLE, ids=lambda kind: kind.__name__)
def test_a_tier_that_cannot_be_reached_gets_no_delete_after_its_failed_tombstone(
    kind: type[Exception],
) -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    c.set("k", "v")
    l2.failing, l2.only = kind("no answer"), "swap"
    log.clear()
    assert c.invalidate("k") is False
    assert log == ["L2.swap"]  # one wait, not two
    with pytest.raises(InvalidationError):
        c.invalidate("k", strict=True)


def test_a_tombstone_after_a_refused_one_is_kept_not_deleted() -> None:
    clock = FakeClock()
    log: list[str] = []
    l2 = LoggedTier(clock, "L2", log)
    c = cache([l2], clock)
    c.set("b", "v")
    l2.failing, l2.only = OutOfMemoryError("OOM command not allowed"), "swap"
    c.invalidate("a")
    l2.failing = None  # the server has room again
    c.invalidate("b")
    key = c.full_key("b")
    assert c._engine.chain.codec.decode(key, l2.data[key][0]).kind is TOMBSTONE


# ---------------------------------------------------------------- the invalidation feed


def feed_cache(clock: FakeClock) -> tuple[TieredCache, FakeFeedTier]:
    shared = FakeFeedTier(clock)
    return memory_over(shared, clock, namespace="inv"), shared


def feed_entries(c: TieredCache, shared: FakeFeedTier) -> list[tuple[str, ...]]:
    feed = c._engine.chain.feed
    assert feed is not None
    return [keys for _, keys in shared.feeds.get(feed.key, [])]


def test_an_invalidation_is_published_after_its_tombstone_and_none_for_no_keys() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    shared.calls.clear()
    assert c.invalidate("k", strict=True) is False
    assert shared.calls == ["swap", "publish"]
    assert feed_entries(c, shared) == [(c.full_key("k"),)]
    c.delete_many([])
    assert shared.published == 1


def test_clear_and_invalidate_all_publish_everything() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    c.invalidate_all()
    c.clear()
    assert feed_entries(c, shared) == [(EVERYTHING,), (EVERYTHING,)]


def test_a_counter_tier_that_cannot_be_reached_is_not_asked_to_publish() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    shared.failing = {"swap"}
    shared.calls.clear()
    assert c.invalidate("k") is False
    assert shared.calls == ["swap"]  # one timeout for the invalidation, not two


def test_a_counter_tier_that_refused_the_tombstone_and_the_delete_still_gets_the_entry() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    shared.failure = OutOfMemoryError
    shared.failing = {"swap", "delete"}
    with pytest.raises(InvalidationError):
        c.invalidate("k", strict=True)
    assert feed_entries(c, shared) == [(c.full_key("k"),)]


def test_a_refused_feed_entry_drops_the_feed_so_readers_drop_everything() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    c.invalidate("first")  # the feed exists
    feed = c._engine.chain.feed
    assert feed is not None
    shared.failure = OutOfMemoryError
    shared.failing = {"publish"}
    assert c.invalidate("k", strict=True) is False  # no failure: the feed is gone instead
    assert feed.key not in shared.feeds
    shared.failing = {"publish", "delete"}
    with pytest.raises(InvalidationError):  # neither the entry nor the drop: said
        c.invalidate("k", strict=True)


def test_a_feed_entry_that_cannot_be_reached_is_a_failure() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    shared.failing = {"publish"}
    with pytest.raises(InvalidationError):
        c.invalidate("k", strict=True)
    assert "delete" not in shared.calls


def test_an_environment_reading_back_its_own_feed_entry_drops_nothing() -> None:
    clock = FakeClock()
    c, shared = feed_cache(clock)
    c.get("warm")  # the first check: this environment's place in the feed
    clock.advance(10)
    c.invalidate("k")
    c.set("k", "new")  # after the invalidation: current
    clock.advance(10)  # the next read checks the feed, and finds its own entry
    shared.calls.clear()
    assert c.get("k") == "new"
    assert "get" not in shared.calls  # from memory
    assert "get_with_feed" not in shared.calls
