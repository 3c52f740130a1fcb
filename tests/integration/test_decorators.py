"""@cached and @cached_tiered as a user sees them: calls counted, values kept, errors named."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from typing import Any

import pytest

from stratacache import (
    CachedFunction,
    ConfigurationError,
    DynamoDBTier,
    KeyBuildError,
    MemoryTier,
    RedisTier,
    Tier,
    cached,
    cached_tiered,
)
from stratacache.tiers import MISS


class Colour(enum.StrEnum):
    RED = "red"


class Counter:
    """Counts calls of the function under test, so a test can tell a hit from a miss."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


@pytest.fixture
def origin() -> Counter:
    return Counter()


# ---------------------------------------------------------------- one tier


def test_bare_cached_runs_the_function_once_per_argument(origin: Counter) -> None:
    @cached(namespace="t")
    def square(x: int) -> int:
        origin(x)
        return x * x

    assert [square(3), square(3), square(4), square(3)] == [9, 9, 16, 9]
    assert origin.calls == [(3,), (4,)]


def test_positional_keyword_and_default_arguments_share_one_entry(origin: Counter) -> None:
    @cached(ttl=60, namespace="t")
    def greet(name: str, greeting: str = "hello") -> str:
        origin(name, greeting)
        return f"{greeting} {name}"

    assert (
        greet("ada") == greet(name="ada") == greet("ada", "hello") == greet("ada", greeting="hello")
    )
    assert len(origin.calls) == 1
    assert greet.cache_key("ada") == greet.cache_key(greeting="hello", name="ada")


@pytest.mark.parametrize("tier_name", ["redis", "dynamodb"])
def test_cached_on_a_shared_tier_from_the_environment(
    remote_env: dict[str, str], origin: Counter, tier_name: str
) -> None:
    @cached(tier=tier_name, ttl=60, namespace="t")
    def lookup(user_id: int) -> dict[str, Any]:
        origin(user_id)
        return {"id": user_id, "tags": ("a", "b")}

    assert lookup(7) == {"id": 7, "tags": ("a", "b")}
    assert lookup(7) == {"id": 7, "tags": ("a", "b")}
    assert origin.calls == [(7,)]
    assert [tier.name for tier in lookup.cache.tiers] == ["L2" if tier_name == "redis" else "L3"]
    assert lookup.cache.stats()[lookup.cache.tiers[0].name]["hits"] == 1


def test_cached_on_a_tier_instance(redis_client: Any, origin: Counter) -> None:
    tier = RedisTier(client=redis_client, name="sessions")

    @cached(tier=tier, ttl=60, namespace="t")
    def session(token: str) -> str:
        origin(token)
        return token.upper()

    assert session("abc") == session("abc") == "ABC"
    assert len(origin.calls) == 1
    assert redis_client.exists(session.cache.full_key(session.cache_key("abc"))) == 1


def test_cached_memory_gives_each_function_its_own_l1() -> None:
    @cached(namespace="t")
    def one() -> int:
        return 1

    @cached(namespace="t")
    def two() -> int:
        return 2

    assert one.cache.tiers[0] is not two.cache.tiers[0]


def test_an_unknown_tier_name_is_refused_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="tier must be one of"):
        cached(tier="memcached")


def test_an_unconfigured_shared_tier_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="STRATACACHE_REDIS_URL"):
        cached(tier="redis")


def test_a_bad_ttl_is_refused_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="ttl must be a positive"):
        cached(ttl=-1)


def test_a_non_callable_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="key must be a callable"):
        cached(key="user_id")  # type: ignore[call-overload]


def test_ignore_naming_an_unknown_argument_is_refused() -> None:
    with pytest.raises(KeyBuildError, match="clinet"):

        @cached(ignore=["clinet"], namespace="t")
        def fetch(client: object, item_id: int) -> int:
            return item_id


# ---------------------------------------------------------------- the chain


def test_cached_tiered_without_settings_is_l1_only(origin: Counter) -> None:
    @cached_tiered(namespace="t")
    def answer() -> int:
        origin()
        return 42

    assert [answer(), answer()] == [42, 42]
    assert len(origin.calls) == 1  # the second came from L1
    assert [tier.name for tier in answer.cache.tiers] == ["L1"]


def test_cached_tiered_writes_every_tier_on_a_full_miss(
    remote_env: dict[str, str], redis_client: Any, dynamodb_client: Any, origin: Counter
) -> None:
    @cached_tiered(ttl=120, namespace="t")
    def price(sku: str) -> float:
        origin(sku)
        return 9.99

    assert price("A-1") == 9.99
    full_key = price.cache.full_key(price.cache_key("A-1"))
    assert redis_client.exists(full_key) == 1
    item = dynamodb_client.get_item(
        TableName=remote_env["STRATACACHE_TABLE_NAME"], Key={"pk": {"S": full_key}}
    )
    assert "Item" in item
    assert [tier.name for tier in price.cache.tiers] == ["L1", "L2", "L3"]


def test_cached_tiered_takes_explicit_tiers(
    redis_client: Any, dynamodb_client: Any, table_name: str, origin: Counter
) -> None:
    tiers: list[Tier] = [
        MemoryTier(ttl=5),
        RedisTier(client=redis_client),
        DynamoDBTier(table_name, client=dynamodb_client, ttl=86400),
    ]

    @cached_tiered(ttl=300, tiers=tiers, namespace="t")
    def report(day: str) -> str:
        origin(day)
        return f"report {day}"

    assert report("mon") == "report mon"
    tiers[0].clear("")
    tiers[1].clear("")
    assert report("mon") == "report mon"  # from L3
    assert len(origin.calls) == 1


# ---------------------------------------------------------------- values and errors


@pytest.mark.parametrize("value", [None, 0, "", [], False])
def test_none_and_falsy_results_are_cached(remote_env: dict[str, str], value: object) -> None:
    calls = Counter()

    @cached_tiered(namespace="t")
    def maybe() -> object:
        calls()
        return value

    assert maybe() == value
    assert maybe() == value
    maybe.cache.tiers[0].clear("")  # force the answer to come from L2
    assert maybe() == value
    assert len(calls.calls) == 1


def test_exceptions_are_not_cached(remote_env: dict[str, str], origin: Counter) -> None:
    @cached_tiered(namespace="t")
    def flaky(x: int) -> int:
        origin(x)
        if len(origin.calls) == 1:
            raise TimeoutError("upstream timed out")
        return x

    with pytest.raises(TimeoutError, match="upstream timed out"):
        flaky(1)
    assert flaky.cache.has(flaky.cache_key(1)) is False
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert len(origin.calls) == 2


def test_an_unserializable_result_is_returned_and_kept_in_l1_only(
    remote_env: dict[str, str], caplog: pytest.LogCaptureFixture, origin: Counter
) -> None:
    sentinel = object()

    @cached_tiered(namespace="t")
    def make() -> object:
        origin()
        return sentinel

    with caplog.at_level(logging.WARNING, "stratacache"):
        assert make() is sentinel
        assert make() is sentinel
    assert len(origin.calls) == 1  # L1 keeps it; the shared tiers cannot
    assert len(caplog.records) == 1  # one line per function, not per call
    assert "out of the shared tiers" in caplog.records[0].getMessage()


def test_an_argument_that_cannot_be_keyed_is_named(origin: Counter) -> None:
    @cached(namespace="t")
    def fetch(session: object, item_id: int) -> int:
        return item_id

    with pytest.raises(TypeError, match=r"argument 'session'.*key=") as caught:
        fetch(object(), 1)
    assert isinstance(caught.value, KeyBuildError)


def test_ignore_leaves_an_argument_out_of_the_key(origin: Counter) -> None:
    @cached(ignore="session", namespace="t")
    def fetch(session: object, item_id: int) -> int:
        origin(item_id)
        return item_id

    assert fetch(object(), 1) == fetch(object(), 1) == 1
    assert len(origin.calls) == 1


def test_a_custom_key_decides_what_is_the_same_call(origin: Counter) -> None:
    @cached(key=lambda user, **_: user["id"], namespace="t")
    def profile(user: dict[str, Any], verbose: bool = False) -> str:
        origin(user["id"])
        return f"user {user['id']}"

    assert profile({"id": 1, "name": "a"}) == profile({"id": 1, "name": "b"}, verbose=True)
    assert len(origin.calls) == 1


def test_dicts_lists_and_dataclasses_are_keyed_without_help(origin: Counter) -> None:
    @dataclasses.dataclass(frozen=True)
    class Query:
        table: str
        limit: int

    @cached(namespace="t")
    def run(query: Query, filters: dict[str, list[int]]) -> int:
        origin(query)
        return query.limit

    assert run(Query("t", 5), {"b": [2], "a": [1]}) == 5
    assert run(Query("t", 5), {"a": [1], "b": [2]}) == 5  # same dict, other order
    assert run(Query("t", 6), {"a": [1], "b": [2]}) == 6
    assert len(origin.calls) == 2


EQUAL_BUT_DIFFERENT = [
    1,
    1.0,
    True,
    "1",
    0,
    0.0,
    -0.0,
    False,
    (1,),
    (1.0,),
    (True,),
    Colour.RED,
    "red",
]


@pytest.mark.parametrize("order", [1, -1])
def test_the_answer_never_depends_on_what_was_called_before(order: int) -> None:
    """``1 == 1.0 == True`` in Python; they are still three different calls here."""

    @cached(namespace="t")
    def show(x: object) -> str:
        return repr(x)

    for value in EQUAL_BUT_DIFFERENT[::order]:
        assert show(value) == repr(value)
        assert show(x=value) == repr(value)
    for value in EQUAL_BUT_DIFFERENT[::-order]:  # now all from L1, whatever came first
        assert show(value) == repr(value)


def test_int_and_float_arguments_have_different_keys() -> None:
    @cached(namespace="t")
    def show(x: float) -> str:
        return repr(x)

    keys = [show.cache_key(v) for v in (1, 1.0, True)]
    assert len(set(keys)) == 3


def test_two_functions_never_share_entries(remote_env: dict[str, str]) -> None:
    @cached_tiered(namespace="t")
    def a(x: int) -> str:
        return "a"

    @cached_tiered(namespace="t")
    def b(x: int) -> str:
        return "b"

    assert (a(1), b(1)) == ("a", "b")
    assert a.cache.full_key(a.cache_key(1)) != b.cache.full_key(b.cache_key(1))


def test_methods_can_leave_self_out_of_the_key(origin: Counter) -> None:
    class Repo:
        @cached(ignore=["self"], namespace="t")
        def get(self, item_id: int) -> int:
            origin(item_id)
            return item_id * 10

    assert Repo().get(1) == Repo().get(1) == 10
    assert len(origin.calls) == 1


# ---------------------------------------------------------------- helpers on the wrapper


def test_invalidate_removes_the_entry_from_every_tier(
    remote_env: dict[str, str], origin: Counter
) -> None:
    @cached_tiered(namespace="t")
    def load(x: int) -> int:
        origin(x)
        return x

    load(1)
    assert load.invalidate(1) is True
    assert not load.cache.has(load.cache_key(1))  # tombstones in L2 and L3, nothing in L1
    assert load.cache.tiers[0].get(load.cache.full_key(load.cache_key(1))) is MISS
    load(1)
    assert len(origin.calls) == 2
    assert load.invalidate(99) is False


def test_refresh_recomputes_and_rewrites_every_tier(remote_env: dict[str, str]) -> None:
    version = [1]

    @cached_tiered(namespace="t")
    def config(name: str) -> int:
        return version[0]

    assert config("x") == 1
    version[0] = 2
    assert config("x") == 1
    assert config.refresh("x") == 2
    assert config("x") == 2
    config.cache.tiers[0].clear("")
    assert config("x") == 2  # L2 was rewritten too


def test_the_wrapper_keeps_the_functions_name_and_doc() -> None:
    @cached(namespace="t")
    def documented(x: int) -> int:
        """Doubles."""
        return 2 * x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles."
    assert documented.__wrapped__(2) == 4


def test_an_l1_entry_expires_with_its_ttl(monkeypatch: pytest.MonkeyPatch, origin: Counter) -> None:
    now = [100.0]
    tier = MemoryTier(timer=lambda: now[0])

    @cached(tier=tier, ttl=10, namespace="t")
    def tick() -> int:
        origin()
        return len(origin.calls)

    assert tick() == 1
    now[0] += 9
    assert tick() == 1
    now[0] += 2
    assert tick() == 2


# ---------------------------------------------------------------- async


def test_async_functions_are_cached(remote_env: dict[str, str], origin: Counter) -> None:
    @cached_tiered(ttl=60, namespace="t")
    async def fetch(x: int) -> dict[str, int]:
        origin(x)
        await asyncio.sleep(0)
        return {"x": x}

    async def scenario() -> list[dict[str, int]]:
        first = await fetch(1)
        second = await fetch(1)
        fetch.cache.tiers[0].clear("")
        third = await fetch(1)  # from L2, through a worker thread
        return [first, second, third]

    assert asyncio.run(scenario()) == [{"x": 1}] * 3
    assert origin.calls == [(1,)]
    assert fetch.cache.stats()["L2"]["hits"] == 1


def test_async_exceptions_are_not_cached(origin: Counter) -> None:
    @cached(namespace="t")
    async def fail() -> int:
        origin()
        raise ValueError("nope")

    for _ in range(2):
        with pytest.raises(ValueError, match="nope"):
            asyncio.run(fail())
    assert len(origin.calls) == 2


def test_async_refresh_rewrites_the_entry() -> None:
    version = [1]

    @cached(namespace="t")
    async def read() -> int:
        return version[0]

    async def scenario() -> tuple[int, int, int]:
        first = await read()
        version[0] = 2
        return first, await read.refresh(), await read()

    assert asyncio.run(scenario()) == (1, 2, 2)


# ---------------------------------------------------------------- kill switch


def test_disabled_turns_every_decorator_into_a_pass_through(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, origin: Counter
) -> None:
    import stratacache.options

    monkeypatch.setenv("STRATACACHE_DISABLED", "1")
    monkeypatch.setattr(stratacache.options, "_warned_disabled", False)
    with caplog.at_level(logging.WARNING, "stratacache"):

        @cached(namespace="t")
        def a() -> int:
            origin("a")
            return 1

        @cached_tiered(namespace="t")
        async def b() -> int:
            origin("b")
            return 2

    assert [a(), a(), asyncio.run(b()), asyncio.run(b())] == [1, 1, 2, 2]
    assert origin.calls == [("a",), ("a",), ("b",), ("b",)]
    assert [r.getMessage() for r in caplog.records] == [
        "STRATACACHE_DISABLED is set: every cached function runs uncached"
    ]
    assert a.invalidate() is False
    assert isinstance(a.cache_key(), str)


def test_a_bad_disabled_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_DISABLED", "maybe")
    with pytest.raises(ConfigurationError, match="STRATACACHE_DISABLED"):
        cached(lambda: 1)


# ---------------------------------------------------------------- configuration precedence


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def make(**options: Any) -> CachedFunction[[], int]:
        @cached(**options)
        def f() -> int:
            return 1

        return f

    assert make().cache.default_ttl == 300
    assert make().cache.namespace.startswith("stratacache:")
    monkeypatch.setenv("STRATACACHE_TTL", "42")
    monkeypatch.setenv("STRATACACHE_NAMESPACE", "shop")
    assert make().cache.default_ttl == 42
    assert make().cache.namespace.startswith("shop:")
    assert make(ttl=7, namespace="ops").cache.default_ttl == 7
    assert make(ttl=7, namespace="ops").cache.namespace.startswith("ops:")


def test_a_bad_ttl_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_TTL", "five minutes")
    with pytest.raises(ConfigurationError, match="STRATACACHE_TTL"):
        cached(lambda: 1)


def scaled_by(factor: int, remote_env: dict[str, str]) -> Any:
    @cached_tiered(ttl=60)
    def scale(x: int) -> int:
        return factor * x

    return scale


def test_closures_from_one_factory_never_share_entries_in_l2_and_l3(
    remote_env: dict[str, str],
) -> None:
    double, triple = scaled_by(2, remote_env), scaled_by(3, remote_env)
    assert double(5) == 10
    triple.cache.tiers[0].clear("")  # only the shared tiers could make them meet
    assert triple(5) == 15
    again = scaled_by(2, remote_env)  # the same closure, as another environment builds it
    assert again(5) == 10
    assert again.cache.stats()["L2"]["hits"] == 1  # it shares double's entry, from L2
    assert double.cache.namespace != triple.cache.namespace
