"""``@cached_many`` with every id in L1 (issue 18): as fast as a loop of L1 hits, so it
must touch no other tier and read the shared generation at most once per batch."""

from __future__ import annotations

import math
from typing import Any

import pytest
from devkit.roundtrips import redis_round_trips

from stratacache import MemoryTier, RedisTier, cached_many
from stratacache.keys import KeyLayout


def _commands(control: Any) -> int:
    stats = control.info("commandstats")
    return sum(
        int(entry["calls"])
        for name, entry in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    )


def test_a_batch_all_in_l1_makes_no_remote_call_and_one_generation_read(
    redis_client: Any,
) -> None:
    asked: list[list[int]] = []

    @cached_many(ttl=60, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="w")
    def squares(ids: list[int]) -> dict[int, int]:
        asked.append(list(ids))
        return {i: i * i for i in ids}

    ids = list(range(1000))
    assert squares(ids) == {i: i * i for i in ids}
    chain = squares.cache._engine.chain
    chain.generation.due = math.inf  # not due: L1 alone answers
    redis_client.config_resetstat()
    hits = chain.counts[0].hits
    assert squares(ids) == {i: i * i for i in ids}
    assert _commands(redis_client) == 0
    assert chain.counts[0].hits == hits + 1000
    chain.generation.due = -math.inf  # due: one check of the shared counter for the batch
    redis_client.config_resetstat()
    with redis_round_trips() as trips:
        assert squares(ids) == {i: i * i for i in ids}
    assert len(trips) == 1  # the counter and the invalidation feed, pipelined
    assert _commands(redis_client) == len(trips[0])
    assert asked == [ids]


def test_a_batch_with_one_id_not_in_l1_takes_the_full_path_for_it_alone(
    redis_client: Any,
) -> None:
    asked: list[list[int]] = []

    @cached_many(ttl=60, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="w2")
    def squares(ids: list[int]) -> dict[int, int]:
        asked.append(list(ids))
        return {i: i * i for i in ids}

    assert squares([1, 2, 3]) == {1: 1, 2: 4, 3: 9}
    assert squares([3, 1, 4, 2]) == {3: 9, 1: 1, 4: 16, 2: 4}
    assert asked == [[1, 2, 3], [4]]


@pytest.mark.parametrize(
    "tail",
    ["i1", "i-5", "sABC", "s a:b|c", "s%41", "s\u00e9\u2603", "x" * 300, "s" + "é" * 200, ""],
)
def test_keys_under_a_head_are_the_keys_of_the_whole(tail: str) -> None:
    for head in ("f:a|:", "x" * 180 + ":", "m:" + "é" * 40 + ":"):
        layout = KeyLayout(("stratacache", "app.f"))
        assert layout.keys_under(head)(tail) == layout.key(head + tail)
