"""Poisoned and foreign entries written straight into Redis and DynamoDB.

Each is a counted miss, never code execution, and is replaced by the fresh value.
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from devkit.servers import RedisServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratacache import JsonSerializer, PickleSerializer, TieredCache, cached_tiered
from stratacache.envelope import DEFAULT_MAX_BYTES, Codec
from stratacache.serialization import Serializer
from stratacache.tiers import DynamoDBTier, RedisTier
from stratacache.tiers.base import Tier
from tests.support import FakeClock, dynamodb_attribute_values, zlib_bomb

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
        if not pickled:
            found["a valid entry, unsigned"] = wrap(Codec(), key, {"fresh": "unsigned"})
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

    codec = fetch.cache._engine.chain.codec
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


# ---------------------------------------------------------------- a zlib bomb, measured

# Run in a fresh interpreter, so the peak memory it reports is this read's alone.
BOMB_READER = """
import gc, json, resource, struct, sys, zlib
import redis
from stratacache import cached_tiered
from stratacache.tiers import RedisTier

url, signed = sys.argv[1], sys.argv[2] == "signed"
tier = RedisTier(url)
key = b"a signing key of 32 bytes, or so" if signed else None

@cached_tiered(tiers=[tier], ttl=60, namespace="bomb", signing_key=key)
def report(day):
    return "fresh " + day

report("warm-up")  # imports, the connection, the generation: all before the baseline
packer = zlib.compressobj(9)
megabyte = b" " * (1 << 20)
bomb = b"".join(packer.compress(megabyte) for _ in range(512)) + packer.flush()
flags = 0x01 | 0x10 | (0x20 if signed else 0)  # JSON, compressed, maybe signed
header = struct.pack(">2sBB8sQQQQI", b"SC", 3, flags, b"attacker", 0, 0, 0, 0, 0)
full_key = report.cache.full_key(report.cache_key("today"))
client = redis.Redis.from_url(url)
client.set(full_key, header + (b"forged signature" * 2 if signed else b"") + bomb)
del megabyte
gc.collect()
counts = report.cache.stats()["L2"]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
value = report("today")
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
after = report.cache.stats()["L2"]
inflater, inflated = zlib.decompressobj(), 0  # what the bomb really holds, counted in steps
while not inflater.eof:
    inflated += len(inflater.decompress(inflater.unconsumed_tail or bomb, 1 << 20))
print(json.dumps({
    "value": value,
    "counts": {name: after[name] - counts[name] for name in counts},
    "breaker_failures": tier.breaker.failures,
    "overwritten": report.cache._engine.chain.codec.decode(full_key, client.get(full_key)).value,
    "stored_bytes": len(bomb),
    "inflated_bytes": inflated,
    "grown_kib": grown,
}))
"""


@pytest.mark.parametrize(
    ("signed", "allowed_growth"),
    [
        pytest.param(False, DEFAULT_MAX_BYTES + (4 << 20), id="inflated-up-to-the-limit"),
        pytest.param(True, 4 << 20, id="signed-refused-before-inflating"),
    ],
)
def test_a_512_mib_zlib_bomb_in_redis_is_a_counted_miss_and_costs_at_most_the_limit(
    redis_server: RedisServer, redis_client: Any, signed: bool, allowed_growth: int
) -> None:
    mode = "signed" if signed else "plain"
    reader = subprocess.run(
        [sys.executable, "-c", BOMB_READER, redis_server.url, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr
    result = json.loads(reader.stdout)
    assert result["inflated_bytes"] == 512 << 20  # the bomb is real...
    assert result["stored_bytes"] < 600_000  # ...and small in Redis
    assert result["value"] == "fresh today"
    assert result["counts"] == {"hits": 0, "misses": 1, "errors": 1}
    assert result["breaker_failures"] == 0
    assert result["overwritten"] == "fresh today"
    assert result["grown_kib"] * 1024 <= allowed_growth


def test_the_file_payload_is_live(tmp_path: Path) -> None:
    """The poison is real: unpickling it without the signature check creates the file."""
    target = tmp_path / "pwned"
    blob = poisons(target, Codec(), "x", "y")["bare pickle that creates a file"]
    pickle.loads(blob).close()
    assert target.exists()


# ---------------------------------------------------------------- any DynamoDB item

VERSION = b"ver-8byt"
NOW = time.time()
_examples = itertools.count()


def dynamodb_items() -> Any:
    """What can sit at a cache key of a shared table: ``v``, ``ver`` and ``ttl`` of any shape.

    ``"ours"`` stands for this cache's own, valid envelope (version :data:`VERSION`).
    """
    values = dynamodb_attribute_values()
    return st.fixed_dictionaries(
        {},
        optional={
            "v": st.one_of(st.just("ours"), values),
            "ver": st.one_of(st.just({"B": VERSION}), values),
            "ttl": st.one_of(
                st.builds(lambda s: {"N": str(int(NOW + s))}, st.integers(-86_400, 86_400)),
                values,
            ),
            "other": values,
        },
    )


def _expired(item: dict[str, Any]) -> bool:
    ttl = item.get("ttl", {})
    return "N" in ttl and float(ttl["N"]) <= time.time()


@settings(
    max_examples=80,
    deadline=None,
    # One table for every example: each example writes a key of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(item=dynamodb_items())
def test_any_dynamodb_item_at_a_key_is_its_value_or_a_counted_miss(
    dynamodb_client: Any, table_name: str, item: dict[str, Any]
) -> None:
    clock = FakeClock(0.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    tier = DynamoDBTier(table_name, client=dynamodb_client)
    cache = TieredCache([tier], ttl=60, namespace="any-item", monotonic=clock, sleep=sleep)
    user_key = f"example-{next(_examples)}"
    full_key = cache.full_key(user_key)
    stored = {name: value for name, value in item.items()}
    if stored.get("v") == "ours":
        blob = cache._engine.chain.codec.wrap(
            full_key, cache._engine.chain.codec.payload("stored"), version=VERSION, generation=0,
            expires_at=NOW + 86_400, keep_until=None,
        )  # fmt: skip
        stored["v"] = {"B": blob}
    dynamodb_client.put_item(TableName=table_name, Item={"pk": {"S": full_key}, **stored})
    ours = item.get("v") == "ours" and item.get("ver") == {"B": VERSION} and not _expired(item)

    value = cache.get_or_compute(user_key, lambda: "fresh")  # never raises

    counts = cache.stats()["L3"]
    assert tier.breaker is not None
    assert tier.breaker.failures == 0  # whatever the item, the table is healthy
    assert waits == []  # nobody holds a lease: nothing to wait for
    if ours:
        assert value == "stored"
        assert counts["hits"] == 1
        return
    assert value == "fresh"
    assert counts["hits"] == 0
    assert counts["misses"] >= 1
    assert cache.get_or_compute(user_key, lambda: "recomputed") == "fresh"  # overwritten
    assert cache.stats()["L3"]["hits"] == 1
