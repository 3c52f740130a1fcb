"""Any boto3-shaped DynamoDB client works as L3 (the real ``AmazonDaxClient`` against the moto
server), batches keep what DynamoDB did answer, and ``AWS_REGION`` alone is enough."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from botocore.exceptions import ClientError
from devkit.dax import moto_dax_client
from devkit.servers import MotoServer

from stratacache import TieredCache, cached_tiered
from stratacache._engine.lease import HELD, WAIT
from stratacache.errors import PartialReadError, StratacacheError
from stratacache.metrics import MetricsRecorder
from stratacache.tiers import MISS, DynamoDBTier, MemoryTier, Tier
from stratacache.tiers.dynamodb import error_code
from tests.support import throttle_call

pytestmark = pytest.mark.slow


@pytest.fixture
def dax(moto_server: MotoServer) -> Iterator[Any]:
    """``amazondax.AmazonDaxClient``, its cluster's one node served by the moto server."""
    with moto_dax_client(moto_server.endpoint) as client:
        yield client


def stored_keys(dynamodb_client: Any, table_name: str) -> set[str]:
    items = dynamodb_client.scan(TableName=table_name)["Items"]
    return {item["pk"]["S"] for item in items}


# ---------------------------------------------------------------- DAX


def test_the_dax_client_has_neither_exceptions_nor_a_scan_paginator(dax: Any) -> None:
    # What broke the lease and clear() before: the tier relied on both.
    assert type(dax).__name__ == "AmazonDaxClient"
    assert not hasattr(dax, "exceptions")
    with pytest.raises(NotImplementedError):
        dax.get_paginator(operation_name="scan")


def test_lease_contention_through_dax(dax: Any, dynamodb_client: Any, table_name: str) -> None:
    through_dax = TieredCache([DynamoDBTier(table_name, client=dax)], namespace="dax-lease")
    direct = TieredCache([DynamoDBTier(table_name, client=dynamodb_client)], namespace="dax-lease")
    key = through_dax.full_key("k")
    (a, b), c = (through_dax._engine.chain.begin() for _ in "ab"), direct._engine.chain.begin()
    dax_lease, direct_lease = through_dax._engine.lease, direct._engine.lease
    dax_guard, direct_guard = dax_lease.guard(a), direct_lease.guard(c)
    assert dax_guard is not None
    assert direct_guard is not None
    assert dax_lease.acquire(dax_guard, key, a, b"token-a!") == HELD
    assert dax_lease.acquire(dax_guard, key, b, b"token-b!") == WAIT  # before: AttributeError
    assert direct_lease.acquire(direct_guard, key, c, b"token-c!") == WAIT
    dax_lease.give_up(dax_guard, key, b, b"token-b!")  # not the holder: nothing happens
    assert (
        direct_lease.acquire(direct_guard, key, direct._engine.chain.begin(), b"token-c!") == WAIT
    )
    dax_lease.give_up(dax_guard, key, a, b"token-a!")
    assert (
        direct_lease.acquire(direct_guard, key, direct._engine.chain.begin(), b"token-c!") == HELD
    )
    direct_lease.give_up(direct_guard, key, c, b"token-c!")
    assert direct.get("k") is None
    assert (
        dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}}).get("Item") is None
    )


def test_four_environments_on_dax_make_one_origin_call(
    moto_server: MotoServer, table_name: str
) -> None:
    origin_calls: list[str] = []
    computing = threading.Event()
    waiters_tried: set[int] = set()
    all_tried = threading.Event()

    def on_poll(params: dict[str, Any], **_: Any) -> None:
        # A waiter that polls has seen the holder's lease in the entry's key: once all
        # three have, the holder may finish.
        if threading.current_thread().name.startswith("waiter"):
            waiters_tried.add(threading.get_ident())
            if len(waiters_tried) == 3:
                all_tried.set()

    def environment(client: Any) -> Any:
        tiers: list[Tier] = [MemoryTier(), DynamoDBTier(table_name, client=client)]

        @cached_tiered(ttl=60, tiers=tiers, namespace="dax-herd", lock=True, lock_wait=30)
        def quote(symbol: str) -> str:
            origin_calls.append(symbol)
            if len(origin_calls) == 1:
                computing.set()
                assert all_tried.wait(30), "the other environments never tried for the lease"
            return f"{symbol}:42"

        return quote

    results: list[str] = []
    with ExitStack() as stack:
        clients = [stack.enter_context(moto_dax_client(moto_server.endpoint)) for _ in range(4)]
        for client in clients:
            client.meta.events.register("provide-client-params.dynamodb.GetItem", on_poll)
        functions = [environment(client) for client in clients]
        holder = threading.Thread(target=lambda: results.append(functions[0]("ACME")))
        holder.start()
        assert computing.wait(30)
        waiters = [
            threading.Thread(target=lambda f=f: results.append(f("ACME")), name=f"waiter-{i}")
            for i, f in enumerate(functions[1:])
        ]
        for thread in waiters:
            thread.start()
        for thread in [holder, *waiters]:
            thread.join(60)
    assert results == ["ACME:42"] * 4
    assert origin_calls == ["ACME"]  # before: 4, every waiter's lease failed open
    for f in functions:
        assert f.cache.stats()["L3"]["errors"] == 0


def force_pages(client: Any, limit: int) -> None:
    """Make every Scan return at most ``limit`` items, so clear() must follow the pages."""

    def add_limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = limit

    client.meta.events.register("provide-client-params.dynamodb.Scan", add_limit)


@pytest.mark.parametrize("kind", ["dax", "boto3"])
def test_clear_pages_by_last_evaluated_key(
    kind: str, dax: Any, dynamodb_client: Any, table_name: str
) -> None:
    client = dax if kind == "dax" else dynamodb_client
    tier = DynamoDBTier(table_name, client=client, key_prefix="cache#")
    other = DynamoDBTier(table_name, client=dynamodb_client, key_prefix="other#")
    tier.set_many({f"ns:{n}": b"v" for n in range(7)}, 60)
    tier.set("elsewhere:1", b"v", 60)
    other.set("ns:1", b"v", 60)
    force_pages(client, 2)
    assert tier.clear("ns:") == 7  # before, through DAX: NotImplementedError
    assert stored_keys(dynamodb_client, table_name) == {"cache#elsewhere:1", "other#ns:1"}


# ---------------------------------------------------------------- partial batches


class Stuck:
    """Keys DynamoDB never gets to: removed from each batch request before it is sent and
    handed back as unprocessed, as sustained throttling of those keys would. A request
    left with nothing to send is answered here, as DynamoDB would answer it."""

    def __init__(self, client: Any, table: str, operation: str, stuck: set[str]) -> None:
        self.table, self.operation, self.stuck = table, operation, stuck
        self.calls = 0
        self.held: list[Any] = []
        self.nothing_left = False
        events = client.meta.events
        events.register(f"provide-client-params.dynamodb.{operation}", self._hold)
        events.register(f"before-call.dynamodb.{operation}", self._short_circuit)
        events.register(f"after-call.dynamodb.{operation}", self._hand_back)

    def _name(self, entry: dict[str, Any]) -> str:
        if self.operation == "BatchWriteItem":
            entry = entry.get("PutRequest", {}).get("Item") or entry["DeleteRequest"]["Key"]
        return str(entry["pk"]["S"]).split(":")[-1]

    def _hold(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        request = params["RequestItems"][self.table]
        entries = request["Keys"] if self.operation == "BatchGetItem" else request
        self.held = [entry for entry in entries if self._name(entry) in self.stuck]
        kept = [entry for entry in entries if entry not in self.held]
        self.nothing_left = not kept
        if kept:
            if self.operation == "BatchGetItem":
                request["Keys"] = kept
            else:
                params["RequestItems"][self.table] = kept

    def _short_circuit(self, **_: Any) -> Any:
        if not self.nothing_left:
            return None
        from botocore.awsrequest import AWSResponse

        return AWSResponse("http://stuck", 200, {}, None), {"Responses": {}}

    def _hand_back(self, parsed: dict[str, Any], **_: Any) -> None:
        if not self.held:
            return
        if self.operation == "BatchGetItem":
            parsed["UnprocessedKeys"] = {self.table: {"Keys": self.held}}
        else:
            parsed["UnprocessedItems"] = {self.table: self.held}


def test_get_many_keeps_what_arrived_when_keys_stay_unprocessed(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    tier.set_many({f"k:{name}": name.encode() for name in "abcde"}, 60)
    stuck = Stuck(dynamodb_client, table_name, "BatchGetItem", {"c", "d"})
    keys = ["k:a", "k:b", "k:c", "k:d", "k:e", "k:absent"]
    with pytest.raises(PartialReadError) as raised:
        tier.get_many(keys)  # before: RuntimeError, and a, b, e thrown away
    assert raised.value.found == [b"a", b"b", MISS, MISS, b"e", MISS]
    assert raised.value.failed == 2
    assert stuck.calls == 4  # the first request and three retries
    assert "answered 4 of 6 keys" in str(raised.value)


def test_get_many_is_whole_when_the_retries_catch_up(dynamodb_client: Any, table_name: str) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    tier.set_many({f"k:{name}": name.encode() for name in "abc"}, 60)
    stuck = Stuck(dynamodb_client, table_name, "BatchGetItem", {"b"})

    def release(**_: Any) -> None:
        stuck.stuck = set()  # the next attempt goes through

    dynamodb_client.meta.events.register("after-call.dynamodb.BatchGetItem", release)
    assert tier.get_many(["k:a", "k:b", "k:c"]) == [b"a", b"b", b"c"]
    assert stuck.calls == 2


def test_get_many_keeps_earlier_chunks_when_a_later_one_fails(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    keys = [f"k:{n}" for n in range(150)]  # two BatchGetItem chunks: 100 + 50
    tier.set_many({key: key.encode() for key in keys}, 60)
    throttle_call(dynamodb_client, "BatchGetItem", 2)
    with pytest.raises(PartialReadError) as raised:
        tier.get_many(keys)
    assert raised.value.found == [key.encode() for key in keys[:100]] + [MISS] * 50
    assert raised.value.failed == 50
    assert error_code(raised.value.__cause__) == "ThrottlingException"  # type: ignore[arg-type]


def test_a_batch_read_that_gets_nothing_fails_as_a_whole(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "BatchGetItem")

    dynamodb_client.meta.events.register("before-call.dynamodb.BatchGetItem", throttle)
    with pytest.raises(ClientError) as raised:
        tier.get_many(["k:a"])
    assert not isinstance(raised.value, PartialReadError)
    assert error_code(raised.value) == "ThrottlingException"


def test_batch_writes_go_on_past_a_chunk_with_leftovers_and_report_them(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    items = {f"k:{n}": b"v" for n in range(30)}  # two BatchWriteItem chunks: 25 + 5
    Stuck(dynamodb_client, table_name, "BatchWriteItem", {"1", "2", "3"})
    with pytest.raises(StratacacheError, match="left 3 of 30 batch writes"):
        tier.set_many(items, 60)
    written = stored_keys(dynamodb_client, table_name)
    assert written == {f"k:{n}" for n in range(30)} - {"k:1", "k:2", "k:3"}  # before: 22


# ---------------------------------------------------------------- region


@pytest.fixture
def only_aws_region(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, tmp_path: Any
) -> pytest.MonkeyPatch:
    """The environment a process gets when only ``AWS_REGION`` names the region."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # no profile region
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.endpoint)
    return monkeypatch


def test_aws_region_alone_is_enough(only_aws_region: pytest.MonkeyPatch, table_name: str) -> None:
    only_aws_region.setenv("AWS_REGION", "us-east-1")  # where the table was created
    tier = DynamoDBTier(table_name)
    tier.set("k", b"v", 60)  # before: ConfigurationError "needs an AWS region"
    assert tier.get("k") == b"v"
    assert tier.client.meta.region_name == "us-east-1"
    tier.close()


def test_aws_region_is_the_one_used(only_aws_region: pytest.MonkeyPatch) -> None:
    only_aws_region.setenv("AWS_REGION", "eu-west-3")
    only_aws_region.setenv("AWS_DEFAULT_REGION", "us-west-2")  # as set by an older tool
    assert DynamoDBTier("cache-table").client.meta.region_name == "eu-west-3"
    assert DynamoDBTier("cache-table", region_name="ap-south-1").client.meta.region_name == (
        "ap-south-1"
    )


def test_a_partial_batch_read_keeps_what_arrived_and_counts_the_rest(
    dynamodb_client: Any, table_name: str
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    cache = TieredCache([MemoryTier(), tier], namespace="partial", recorder=MetricsRecorder())
    cache.set_many({f"k{n}": n for n in range(10)})
    cache.tiers[0].clear("")

    def leave_some_unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        keys = parsed.get("Responses", {}).get(table_name)
        if keys:  # every answer drops its last item into UnprocessedKeys
            dropped = keys.pop()
            parsed["UnprocessedKeys"] = {table_name: {"Keys": [{"pk": dropped["pk"]}]}}

    dynamodb_client.meta.events.register("after-call.dynamodb.BatchGetItem", leave_some_unprocessed)
    found = cache.get_many([f"k{n}" for n in range(10)])
    assert 0 < len(found) < 10  # what arrived is kept ...
    assert all(found[key] == int(key[1:]) for key in found)
    stats = cache.stats()["L3"]
    assert stats["hits"] == len(found)
    assert stats["errors"] == 10 - len(found)  # ... and each key not read is a counted error
