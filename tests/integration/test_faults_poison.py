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

from stratacache import PickleSerializer, cached_tiered
from stratacache.serialization import Codec, Serializer
from stratacache.tiers import DynamoDBTier, RedisTier
from stratacache.tiers.base import Tier

KEY = b"a signing key of 32 bytes, or so"


class CreatesFile:
    """Unpickling this opens ``path`` for writing, which creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return builtins.open, (self.path, "w")


def poisons(path: Path, pickled: bool) -> dict[str, bytes]:
    """Bytes an attacker or another program could leave under a cache key."""
    # A valid entry of the serializer the cache does not use.
    other = Codec(None if pickled else PickleSerializer(signing_key=KEY))
    evil = pickle.dumps(CreatesFile(path))
    forged_signature = os.urandom(32) + evil
    big = zlib.compress(b'"' + b"x" * 5000 + b'"')
    return {
        "garbage": os.urandom(64),
        "empty": b"",
        "bare json": b'{"value": 1}',
        "bare pickle that creates a file": evil,
        "envelope of unsigned pickle": Codec.wrap((2, evil), None),
        "envelope of pickle with a forged signature": Codec.wrap((2, forged_signature), None),
        "truncated compressed payload": Codec.wrap((1 | 0x10, big[: len(big) // 2]), None),
        "another format version": struct.pack(">2sBBQ", b"SC", 9, 1, 0) + b'"x"',
        "another serializer's entry": Codec.wrap((7, b"\x00\x01"), None),
        "the other serializer's valid entry": other.encode({"fresh": "forged"}, None),
    }


def _check(
    tier: Tier,
    write_raw: Any,
    read_raw: Any,
    serializer: Serializer | None,
    namespace: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "pwned"
    computed: Counter[str] = Counter()

    @cached_tiered(tiers=[tier], ttl=60, namespace=namespace, serializer=serializer)
    def fetch(name: str) -> dict[str, str]:
        computed[name] += 1
        return {"fresh": name}

    codec = fetch.cache.codec
    entries = poisons(target, pickled=serializer is not None)
    for name, blob in entries.items():
        full_key = fetch.cache.full_key(fetch.cache_key(name))
        write_raw(full_key, blob)
        assert fetch(name) == {"fresh": name}, name
        stored = read_raw(full_key)
        assert codec.decode(stored).value == {"fresh": name}, f"{name} was not replaced"
        assert fetch(name) == {"fresh": name}  # now a hit
    assert not target.exists(), "a poisoned pickle was unpickled"
    assert set(computed.values()) == {1}
    stats = fetch.cache.stats()[tier.name]
    assert stats["errors"] == len(entries)  # each poisoned read counted once
    assert stats["hits"] == len(entries)
    breaker = getattr(tier, "breaker", None)
    assert breaker is None or breaker.failures == 0  # bad bytes are not a sick server


@pytest.mark.parametrize("serializer", [None, PickleSerializer(signing_key=KEY)])
def test_poisoned_redis_entries(redis_client: Any, tmp_path: Path, serializer: Any) -> None:
    tier = RedisTier(client=redis_client)
    _check(
        tier,
        redis_client.set,
        redis_client.get,
        serializer,
        f"poison-redis-{serializer is not None}",
        tmp_path,
    )


@pytest.mark.parametrize("serializer", [None, PickleSerializer(signing_key=KEY)])
def test_poisoned_dynamodb_entries(
    dynamodb_client: Any, table_name: str, tmp_path: Path, serializer: Any
) -> None:
    tier = DynamoDBTier(table_name, client=dynamodb_client)

    def write_raw(key: str, blob: bytes) -> None:
        item = {"pk": {"S": key}, "v": {"B": blob}, "ttl": {"N": "99999999999"}}
        dynamodb_client.put_item(TableName=table_name, Item=item)

    def read_raw(key: str) -> bytes:
        item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": key}})["Item"]
        return bytes(item["v"]["B"])

    _check(tier, write_raw, read_raw, serializer, f"poison-ddb-{serializer is not None}", tmp_path)


def test_the_file_payload_is_live(tmp_path: Path) -> None:
    """The poison is real: unpickling it without the signature check creates the file."""
    target = tmp_path / "pwned"
    pickle.loads(poisons(target, pickled=False)["bare pickle that creates a file"]).close()
    assert target.exists()
