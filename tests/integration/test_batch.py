"""@cached_many: per-id caching of batch functions, with round trips counted on real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stratacache import (
    ConfigurationError,
    DynamoDBTier,
    KeyBuildError,
    MemoryTier,
    RedisTier,
    cached_many,
)
from stratacache.metrics import MetricsRecorder


class Source:
    """A batch origin that records which ids it was asked for."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def __call__(self, ids: list[int]) -> dict[int, dict[str, int]]:
        self.asked.append(list(ids))
        return {i: {"id": i, "square": i * i} for i in ids if i % 7}  # multiples of 7 don't exist


def commandstat(redis_client: Any, command: str) -> int:
    stats = redis_client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_250_ids_from_four_places_fetch_exactly_the_missing_ones(
    redis_client: Any, dynamodb_client: Any, table_name: str
) -> None:
    source = Source()
    l1, l2 = MemoryTier(maxsize=1000), RedisTier(client=redis_client)
    l3 = DynamoDBTier(table_name, client=dynamodb_client)

    @cached_many(ttl=300, tiers=[l1, l2, l3], namespace="t")
    def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        return source(ids)

    squares.cache._engine.chain.recorder = MetricsRecorder()
    ids = list(range(1, 251))
    in_l1, in_l2, in_l3 = ids[:20], ids[20:40], ids[40:140]
    nowhere = ids[140:]
    keys = squares.cache_keys(ids)
    # Seed each tier directly, through a cache over just that tier.
    for tier, chosen in ((l1, in_l1), (l2, in_l2), (l3, in_l3)):
        seeded = squares.cache.__class__(
            [tier], ttl=300, namespace=squares.cache._parts, recorder=MetricsRecorder()
        )
        seeded.set_many({keys[i]: {"id": i, "square": i * i} for i in chosen})

    batch_gets: list[int] = []
    dynamodb_client.meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem",
        lambda params, **_: batch_gets.append(len(params["RequestItems"][table_name]["Keys"])),
    )
    mgets_before = commandstat(redis_client, "mget")

    asked_for = [*ids, *ids[:10]]  # duplicates are fine
    result = squares(asked_for)

    assert source.asked == [nowhere]
    expected = [*ids[:140], *(i for i in nowhere if i % 7)]  # the source lacks multiples of 7
    assert list(result) == expected  # first-seen order, duplicates folded
    assert all(result[i] == {"id": i, "square": i * i} for i in expected)
    assert commandstat(redis_client, "mget") - mgets_before == 1
    assert batch_gets == [100, 100, 10]  # 250 - 20 (L1) - 20 (L2) asked of L3, in 100s
    stats = squares.cache.stats()
    assert (stats["L1"]["hits"], stats["L2"]["hits"], stats["L3"]["hits"]) == (20, 20, 100)


def test_a_second_call_is_served_without_the_origin(redis_client: Any) -> None:
    source = Source()

    @cached_many(ttl=60, tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="t")
    def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        return source(ids)

    assert squares([1, 2, 3]) == {i: {"id": i, "square": i * i} for i in (1, 2, 3)}
    assert squares([3, 2, 1, 4]) == {i: {"id": i, "square": i * i} for i in (3, 2, 1, 4)}
    assert source.asked == [[1, 2, 3], [4]]


def test_ids_the_function_does_not_return_are_left_out_and_asked_again() -> None:
    source = Source()

    @cached_many(namespace="t")
    def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        return source(ids)

    assert 7 not in squares([6, 7])
    squares([7])
    assert source.asked == [[6, 7], [7]]


def test_cache_absent_remembers_ids_that_do_not_exist() -> None:
    source = Source()

    @cached_many(cache_absent=True, absent_ttl=30, namespace="t")
    def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        return source(ids)

    assert squares([6, 7]) == {6: {"id": 6, "square": 36}}
    assert squares([7, 6]) == {6: {"id": 6, "square": 36}}
    assert source.asked == [[6, 7]]
    assert squares.cache.ttl(squares.cache_keys([7])[7]) == pytest.approx(30, abs=1)


def test_other_arguments_are_part_of_every_ids_key() -> None:
    asked: list[tuple[str, list[int]]] = []

    @cached_many(ids="ids", namespace="t")
    def names(locale: str, ids: list[int]) -> dict[int, str]:
        asked.append((locale, list(ids)))
        return {i: f"{locale}-{i}" for i in ids}

    assert names("en", [1, 2]) == {1: "en-1", 2: "en-2"}
    assert names("fr", ids=[1]) == {1: "fr-1"}
    assert names("en", [2]) == {2: "en-2"}
    assert asked == [("en", [1, 2]), ("fr", [1])]


def test_invalidate_drops_the_given_ids_only() -> None:
    source = Source()

    @cached_many(namespace="t")
    def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        return source(ids)

    squares([1, 2, 3])
    squares.invalidate([2])
    squares([1, 2, 3])
    assert source.asked == [[1, 2, 3], [2]]


def test_async_batch_functions_are_cached(redis_client: Any) -> None:
    source = Source()

    @cached_many(tiers=[MemoryTier(), RedisTier(client=redis_client)], namespace="t")
    async def squares(ids: list[int]) -> dict[int, dict[str, int]]:
        await asyncio.sleep(0)
        return source(ids)

    async def scenario() -> tuple[dict[int, Any], dict[int, Any]]:
        return await squares([1, 2]), await squares([2, 3])

    first, second = asyncio.run(scenario())
    assert list(first) == [1, 2]
    assert list(second) == [2, 3]
    assert source.asked == [[1, 2], [3]]


def test_mistakes_are_named() -> None:
    with pytest.raises(ConfigurationError, match="ids='items'"):

        @cached_many(ids="items", namespace="t")
        def f(ids: list[int]) -> dict[int, int]:
            return {}

    @cached_many(namespace="t")
    def g(ids: list[Any]) -> Any:
        return [1]

    with pytest.raises(TypeError, match="collection of ids"):
        g("abc")  # type: ignore[arg-type]
    with pytest.raises(KeyBuildError, match="hashable"):
        g([[1]])
    with pytest.raises(TypeError, match="must return a mapping"):
        g([1])
