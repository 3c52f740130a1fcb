"""L3 keeps within DynamoDB's request limits, which moto does not enforce, and a batched
conditional write through DAX keeps the items whose condition held, as through boto3.

``enforce_limits`` refuses at botocore's ``provide-client-params`` what real DynamoDB
refuses: more than 100 items or 4 MiB of items in a ``TransactWriteItems``, more than
25 items or 16 MiB in a ``BatchWriteItem``, more than 100 keys in a ``BatchGetItem``,
an item over 400 KiB.
"""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError
from devkit.dax import moto_dax_client
from devkit.servers import MotoServer

from stratacache import cached_many
from stratacache.tiers import DynamoDBTier, MemoryTier
from stratacache.tiers.dynamodb import cancellation_reasons, item_size

pytestmark = pytest.mark.slow

KIB = 1024
MIB = 1024 * KIB


def _size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: names plus values (a Number as its digits, generously)."""
    total = 0
    for name, value in item.items():
        ((kind, data),) = value.items()
        total += len(name.encode())
        total += len(data) if kind == "B" else len(str(data).encode())
    return total


def _refuse(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def enforce_limits(client: Any) -> list[tuple[str, int, int]]:
    """Refuse what real DynamoDB refuses; returns the requests seen: (operation, items, bytes)."""
    seen: list[tuple[str, int, int]] = []

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        items: list[Mapping[str, Any]] = []
        count = 0
        if operation == "TransactWriteItems":
            actions = params["TransactItems"]
            count = len(actions)
            items = [action["Put"]["Item"] for action in actions if "Put" in action]
            if count > 100 or sum(map(_size, items)) > 4 * MIB:
                raise _refuse(operation, "Transaction request cannot exceed 100 items or 4 MB")
        elif operation == "BatchWriteItem":
            requests = [r for table in params["RequestItems"].values() for r in table]
            count = len(requests)
            items = [r["PutRequest"]["Item"] for r in requests if "PutRequest" in r]
            if count > 25 or sum(map(_size, items)) > 16 * MIB:
                raise _refuse(operation, "Too many items or bytes in one BatchWriteItem")
        elif operation == "BatchGetItem":
            count = sum(len(table["Keys"]) for table in params["RequestItems"].values())
            if count > 100:
                raise _refuse(operation, "Too many items requested for the BatchGetItem call")
        elif operation == "PutItem":
            count, items = 1, [params["Item"]]
        for item in items:
            if _size(item) > 400 * KIB:
                raise _refuse(operation, "Item size has exceeded the maximum allowed size")
        seen.append((operation, count, sum(map(_size, items))))

    client.meta.events.register("provide-client-params.dynamodb", check)
    return seen


def test_the_hook_refuses_what_dynamodb_refuses(dynamodb_client: Any, table_name: str) -> None:
    enforce_limits(dynamodb_client)
    big = [
        {
            "Put": {
                "TableName": table_name,
                "Item": {"pk": {"S": f"k{i}"}, "v": {"B": b"x" * 60_000}},
            }
        }
        for i in range(100)
    ]
    with pytest.raises(ClientError, match="4 MB"):
        dynamodb_client.transact_write_items(TransactItems=big)
    dynamodb_client.transact_write_items(TransactItems=big[:60])


def value(seed: int) -> str:
    """At least 60 KB once compressed: base64 of random bytes."""
    return base64.b64encode(random.Random(seed).randbytes(60_000)).decode()


def test_100_values_of_60_kb_through_cached_many_all_reach_l3(
    dynamodb_client: Any, table_name: str
) -> None:
    requests = enforce_limits(dynamodb_client)
    calls: list[list[int]] = []

    def environment() -> Any:
        l3 = DynamoDBTier(table_name, client=dynamodb_client)

        @cached_many(tiers=[MemoryTier(), l3], ttl=600, namespace="big")
        def fetch(ids: list[int]) -> dict[int, str]:
            calls.append(list(ids))
            return {i: value(i) for i in ids}

        return fetch

    ids = list(range(100))
    first = environment()(ids)
    assert len(first) == 100
    transactions = [r for r in requests if r[0] == "TransactWriteItems"]
    assert len(transactions) == 2, transactions  # over 6 MB of items: two transactions
    assert all(items <= 100 and size <= 4 * MIB for _, items, size in transactions)
    assert sum(items for _, items, _ in transactions) == 100
    assert environment()(ids) == first  # a fresh environment: every value from L3
    assert calls == [ids]
    reads = [r for r in requests if r[0] == "BatchGetItem"]
    assert all(items <= 100 for _, items, _ in reads)


def test_batch_writes_keep_to_25_items(dynamodb_client: Any, table_name: str) -> None:
    requests = enforce_limits(dynamodb_client)
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    blob = b"SC\x03\x00" + b"v" * 8 + b"x" * 1_000
    keys = [f"k{i}" for i in range(260)]
    tier.set_many(dict.fromkeys(keys, blob), 60)
    writes = [items for operation, items, _ in requests if operation == "BatchWriteItem"]
    assert writes == [25] * 10 + [10]
    assert tier.get_many(keys) == [blob] * 260  # BatchGetItem: 100, 100, 60
    assert [items for operation, items, _ in requests if operation == "BatchGetItem"] == [
        100,
        100,
        60,
    ]
    assert tier.delete_many(keys) == 260


def answer_at_most_16_mb(client: Any) -> None:
    """As DynamoDB does, answer a ``BatchGetItem`` with at most 16 MiB of items and
    return the keys of the rest as ``UnprocessedKeys``."""

    def trim(parsed: dict[str, Any], **_: Any) -> None:
        for table, items in parsed.get("Responses", {}).items():
            kept, total = [], 0
            for item in items:
                total += _size(item)
                if total <= 16 * MIB:
                    kept.append(item)
                else:
                    left = parsed.setdefault("UnprocessedKeys", {}).setdefault(table, {"Keys": []})
                    left["Keys"].append({"pk": item["pk"]})
            parsed["Responses"][table] = kept

    client.meta.events.register("after-call.dynamodb.BatchGetItem", trim)


def test_a_batch_read_over_16_mb_arrives_whole(dynamodb_client: Any, table_name: str) -> None:
    requests = enforce_limits(dynamodb_client)
    answer_at_most_16_mb(dynamodb_client)
    tier = DynamoDBTier(table_name, client=dynamodb_client)
    blobs = {f"k{i}": b"SC\x03\x00" + bytes([i]) * 8 + random.randbytes(350_000) for i in range(60)}
    tier.set_many(blobs, 60)
    assert tier.get_many(list(blobs)) == list(blobs.values())  # 21 MB of items
    assert [items for operation, items, _ in requests if operation == "BatchGetItem"][:2] == [
        60,
        13,
    ]


@pytest.mark.parametrize(
    "reasons",
    [
        [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
        [("ConditionalCheckFailed", "The conditional request failed", None), ("None", None, None)],
    ],
)
def test_cancellation_reasons_from_either_client(reasons: list[Any]) -> None:
    class DaxError(Exception):
        response: dict[str, Any] = {"Error": {"Code": "TransactionCanceledException"}}  # noqa: RUF012
        cancellation_reasons = reasons

    codes = [reason["Code"] for reason in cancellation_reasons(DaxError())]
    assert codes == ["ConditionalCheckFailed", "None"]


# ---------------------------------------------------------------- DAX


@pytest.fixture
def dax_clients(moto_server: MotoServer) -> Iterator[list[Any]]:
    """Three ``AmazonDaxClient`` (one per environment), their node served by moto."""
    with (
        moto_dax_client(moto_server.endpoint) as a,
        moto_dax_client(moto_server.endpoint) as b,
        moto_dax_client(moto_server.endpoint) as c,
    ):
        yield [a, b, c]


def test_two_environments_racing_through_dax_leave_every_value_in_l3(
    dax_clients: list[Any], table_name: str
) -> None:
    """B reads 50 ids (all missing) and computes; meanwhile A fills 10 of them. B's batched
    conditional write then fails for those 10 only: the 40 others must still be written."""
    calls: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    b_computing = threading.Event()
    a_done = threading.Event()

    def environment(name: str, client: Any) -> Any:
        l3 = DynamoDBTier(table_name, client=client)

        @cached_many(tiers=[MemoryTier(), l3], ttl=600, namespace="race")
        def fetch(ids: list[int]) -> dict[int, str]:
            calls[name] += ids
            if name == "b":
                b_computing.set()
                assert a_done.wait(10)
            return {i: f"v{i}" for i in ids}

        return fetch

    a, b, c = (environment(n, client) for n, client in zip("abc", dax_clients, strict=True))
    ids = list(range(50))
    answers: list[Any] = []
    racer = threading.Thread(target=lambda: answers.append(b(ids)))
    racer.start()
    assert b_computing.wait(10)
    assert a(ids[:10]) == {i: f"v{i}" for i in ids[:10]}
    a_done.set()
    racer.join(10)
    assert answers == [{i: f"v{i}" for i in ids}]
    assert c(ids) == {i: f"v{i}" for i in ids}
    assert calls["c"] == []  # all 50 in L3: 10 from A, 40 from B


def test_item_size_counts_at_least_what_dynamodb_counts() -> None:
    item = {"pk": {"S": "clé"}, "v": {"B": b"12345"}, "ttl": {"N": "1700000000"}}
    assert item_size(item) >= _size(item)
