"""An environment's place in the invalidation feed: what each read makes it drop."""

from __future__ import annotations

from stratacache._engine.feed import EVERYTHING, READ, Feed
from stratacache.tiers.base import FeedEntries


def test_a_first_read_takes_its_place_and_drops_nothing() -> None:
    feed = Feed("f")
    assert feed.follow(None, [("7-0", ("ns|a",))]) == (set(), False)
    assert feed.place == "7-0"


def test_entries_after_the_place_drop_their_keys() -> None:
    feed = Feed("f")
    feed.place = "7-0"
    got = feed.follow("7-0", [("7-0", ("ns|a",)), ("8-0", ("ns|b", "ns|c")), ("9-0", ("ns|d",))])
    assert got == ({"ns|b", "ns|c", "ns|d"}, False)
    assert feed.place == "9-0"


def test_a_place_no_longer_in_the_feed_drops_everything() -> None:
    feed = Feed("f")
    feed.place = "7-0"
    assert feed.follow("7-0", [("9-0", ("ns|d",))]) == (set(), True)  # trimmed past
    assert feed.place == "9-0"
    assert feed.follow("9-0", []) == (set(), True)  # the feed is gone
    assert feed.place == ""


def test_a_read_that_fills_its_count_drops_everything() -> None:
    feed = Feed("f")
    feed.place = "1-0"
    entries: FeedEntries = [(f"{n}-0", (f"ns|{n}",)) for n in range(1, READ + 1)]
    assert feed.follow("1-0", entries) == (set(), True)
    assert feed.place == f"{READ}-0"  # the next read goes on from there


def test_a_feed_seen_missing_is_read_from_its_start() -> None:
    feed = Feed("f")
    feed.place = ""
    assert feed.follow("", [("3-0", ()), ("4-0", ("ns|a",))]) == ({"ns|a"}, False)
    feed.place = ""
    assert feed.follow("", [(f"{n}-0", ()) for n in range(READ)]) == (set(), True)


def test_everything_drops_everything() -> None:
    feed = Feed("f")
    feed.place = "1-0"
    assert feed.follow("1-0", [("1-0", ()), ("2-0", (EVERYTHING,))]) == (set(), True)


def test_its_own_entries_drop_nothing() -> None:
    feed = Feed("f")
    feed.place = "1-0"
    feed.published("2-0")
    assert feed.follow("1-0", [("1-0", ()), ("2-0", ("ns|a",)), ("3-0", ("ns|b",))]) == (
        {"ns|b"},
        False,
    )
    assert feed.mine == set()


def test_a_read_that_lost_a_race_does_not_move_the_place_back() -> None:
    feed = Feed("f")
    feed.place = "5-0"  # a concurrent read moved on from 1-0 already
    feed.follow("1-0", [("1-0", ()), ("2-0", ("ns|a",))])
    assert feed.place == "5-0"
