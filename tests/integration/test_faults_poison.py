"""Poisoned and foreign entries written straight into Redis and DynamoDB.

Each is a counted miss, never code execution, and is replaced by the fresh value.
"""

from __future__ import annotations

import builtins
import os
import pickle
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stratacache import JsonSerializer, PickleSerializer, cached_tiered
from stratacache.envelope import Codec
from stratacache.serialization import Serializer
from stratacache.tiers import DynamoDBTier, RedisTier
from stratacache.tiers.base import Tier

KEY = b"a signing key of 32 bytes, or so"
_HEADER = struct.Struct(">2sBB8sQQQQI")


class CreatesFile:
    """Unpickling this opens ``path`` for writing, which creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return builtins.open, (self.path, "w")


def envelope(flags: int, payload: bytes, fmt: int = 3) -> bytes:
    """An envelope header around any payload, as an attacker would write one."""
    return _HEADER.pack(b"SC", fmt, flags, b"attacker", 0, 0, 0, 0, 0) + payload


def zlib_bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9)
    return (
        b"".join(packer.compress(b" " * (1 << 20)) for _ in range(inflated >> 20)) + packer.flush()
    )


def poisons(path: Path, codec: Codec, key: str, other_key: str) -> dict[str, bytes]:
    """Bytes an attacker or another program could leave under ``key``."""
    pickled = codec.serializer.id == PickleSerializer.id
    other = Codec(JsonSerializer() if pickled else PickleSerializer(signing_key=KEY))
    evil = pickle.dumps(CreatesFile(path))
    big = zlib.compress(b'"' + b"x" * 5000 + b'"')
    found = {
        "garbage": os.urandom(64),
        "empty": b"",
        "bare json": b'{"value": 1}',
        "bare pickle that creates a file": evil,
        "envelope of unsigned pickle": envelope(2, evil),
        "envelope of pickle with a forged signature": envelope(2 | 0x20, os.urandom(32) + evil),
        "truncated compressed payload": envelope(1 | 0x10, big[: len(big) // 2]),
        "a zlib bomb of 256 MiB": envelope(1 | 0x10, b'"' + zlib_bomb(256 << 20)),
        "an older format": envelope(1, b'"x"', fmt=1),
        "another serializer's entry": envelope(7, b"\x00\x01"),
        "the other serializer's valid entry": wrap(other, key, {"fresh": "forged"}),
    }
    if codec.key is not None:  # what only a signature can tell from the real thing
        found["another key's valid entry"] = wrap(codec, other_key, {"fresh": "someone else"})
        edited = bytearray(wrap(codec, key, {"fresh": "expired"}, expires_at=1.0))
        edited[20:28] = struct.pack(">Q", 0)  # expiry 0: never expires
        found["an expired entry edited to never expire"] = bytes(edited)
    return found


def wrap(codec: Codec, key: str, value: object, expires_at: float | None = None) -> bytes:
    return codec.wrap(
        key, codec.payload(value), version=b"12345678", generation=0,
        expires_at=expires_at, keep_until=None,
    )  # fmt: skip


def _check(
    tier: Tier,
    write_raw: Any,
    read_raw: Any,
    foreign: dict[str, Any],
    serializer: Serializer | None,
    signing_key: bytes | None,
    namespace: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "pwned"
    computed: Counter[str] = Counter()

    @cached_tiered(
        tiers=[tier], ttl=60, namespace=namespace, serializer=serializer, signing_key=signing_key
    )
    def fetch(name: str) -> dict[str, str]:
        computed[name] += 1
        return {"fresh": name}

    codec = fetch.cache.codec
    key_of = fetch.cache.full_key
    entries: dict[str, Any] = {
        name: (lambda full, blob=blob: write_raw(full, blob))
        for name, blob in poisons(target, codec, key_of("x"), key_of("y")).items()
    }
    entries.update(foreign)
    for name, poison in entries.items():
        full_key = key_of(fetch.cache_key(name))
        poison(full_key)

        assert fetch(name) == {"fresh": name}, name
        assert codec.decode(full_key, read_raw(full_key)).value == {"fresh": name}, (
            f"{name} was not replaced"
        )
        assert fetch(name) == {"fresh": name}  # now a hit
    assert not target.exists(), "a poisoned pickle was unpickled"
    assert set(computed.values()) == {1}
    stats = fetch.cache.stats()[tier.name]
    assert stats["errors"] == len(entries)  # each poisoned read counted once
    assert stats["hits"] == len(entries)
    assert tier.breaker is not None
    assert tier.breaker.failures == 0  # bad bytes are not a sick server
    assert tier.breaker.state == "closed"


SERIALIZERS = [
    pytest.param(None, None, id="json"),
    pytest.param(None, KEY, id="signed-json"),
    pytest.param(PickleSerializer(signing_key=KEY), None, id="pickle"),
]


@pytest.mark.parametrize(("serializer", "signing_key"), SERIALIZERS)
def test_poisoned_redis_entries(
    redis_client: Any, tmp_path: Path, serializer: Any, signing_key: bytes | None
) -> None:
    tier = RedisTier(client=redis_client)

    def a_list(full_key: str) -> None:
        redis_client.rpush(full_key, "another app's list")

    _check(
        tier,
        redis_client.set,
        redis_client.get,
        {"a Redis list at the key": a_list},
        serializer,
        signing_key,
        f"poison-redis-{serializer is not None}-{signing_key is not None}",
        tmp_path,
    )


@pytest.mark.parametrize(("serializer", "signing_key"), SERIALIZERS)
def test_poisoned_dynamodb_entries(
    dynamodb_client: Any,
    table_name: str,
    tmp_path: Path,
    serializer: Any,
    signing_key: bytes | None,
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)

    def put(key: str, value: dict[str, Any]) -> None:
        item = {"pk": {"S": key}, "v": value, "ttl": {"N": "99999999999"}}
        dynamodb_client.put_item(TableName=table_name, Item=item)

    def read_raw(key: str) -> bytes:
        item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}})["Item"]
        return bytes(item["v"]["B"])

    _check(
        tier,
        lambda key, blob: put(key, {"B": blob}),
        read_raw,
        {"a String where the value goes": lambda key: put(key, {"S": "another app's text"})},
        serializer,
        signing_key,
        f"poison-ddb-{serializer is not None}-{signing_key is not None}",
        tmp_path,
    )


def test_six_foreign_keys_leave_every_function_its_tier(redis_client: Any) -> None:
    tier = RedisTier(client=redis_client)

    @cached_tiered(tiers=[tier], ttl=60, namespace="foreign")
    def fetch(n: int) -> int:
        return n

    for n in range(6):
        redis_client.rpush(fetch.cache.full_key(fetch.cache_key(n)), "not ours")
    assert [fetch(n) for n in range(6)] == list(range(6))
    assert tier.breaker is not None
    assert tier.breaker.state == "closed"
    assert [fetch(n) for n in range(6)] == list(range(6))
    assert fetch.cache.stats()["L2"]["hits"] == 6  # written over, then served


def test_the_file_payload_is_live(tmp_path: Path) -> None:
    """The poison is real: unpickling it without the signature check creates the file."""
    target = tmp_path / "pwned"
    blob = poisons(target, Codec(), "x", "y")["bare pickle that creates a file"]
    pickle.loads(blob).close()
    assert target.exists()
