"""The envelope: round trips, versions, signatures bound to key and header, bounded inflation."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratacache import ConfigurationError, SerializationError
from stratacache.envelope import (
    HEADER_SIZE,
    LEASE,
    MAC_SIZE,
    TOMBSTONE,
    VALUE,
    Codec,
    new_version,
    version_of,
)
from stratacache.serialization import JsonSerializer, PickleSerializer
from stratacache.tiered import TieredCache
from stratacache.tiers import MemoryTier
from tests.support import zlib_bomb

KEY = b"0123456789abcdef0123"


def encode(codec: Codec, key: str, value: object, **facts: Any) -> bytes:
    facts.setdefault("version", b"v" * 8)
    facts.setdefault("generation", 0)
    facts.setdefault("expires_at", None)
    facts.setdefault("keep_until", None)
    return codec.wrap(key, codec.payload(value), **facts)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=15,
    ),
    expires_at=st.one_of(st.none(), st.floats(1, 4e9)),
    generation=st.integers(0, 2**63),
    signed=st.booleans(),
)
def test_values_round_trip_with_their_facts(
    value: object, expires_at: float | None, generation: int, signed: bool
) -> None:
    codec = Codec(signing_key=KEY if signed else None)
    version = new_version()
    record = codec.decode(
        "k",
        encode(codec, "k", value, version=version, generation=generation, expires_at=expires_at),
    )
    assert (record.kind, record.value, record.version, record.generation) == (
        VALUE, value, version, generation,
    )  # fmt: skip
    if expires_at is None:
        assert record.expires_at is None
    else:
        assert record.expires_at == pytest.approx(expires_at, abs=0.001)


def test_the_version_sits_where_conditional_writes_read_it() -> None:
    codec = Codec()
    blob = encode(codec, "k", [1], version=b"12345678")
    assert version_of(blob) == b"12345678"
    assert version_of(codec.tombstone("k", b"abcdefgh", 0, 10.0)) == b"abcdefgh"


def test_tombstones_and_leases_are_records_without_values() -> None:
    codec = Codec(signing_key=KEY)
    assert codec.decode("k", codec.tombstone("k", b"t" * 8, 3, 99.0)).kind == TOMBSTONE
    lease = codec.decode("k", codec.lease("k", b"l" * 8, 50.0, 99.0))
    assert (lease.kind, lease.version, lease.expires_at, lease.keep_until) == (
        LEASE, b"l" * 8, 50.0, 99.0,
    )  # fmt: skip


def test_keep_is_never_earlier_than_expiry() -> None:
    codec = Codec()
    record = codec.decode("k", encode(codec, "k", 1, expires_at=100.0, keep_until=50.0))
    assert record.keep_until == 100.0


def test_large_payloads_are_compressed_and_small_ones_stored_plain() -> None:
    codec = Codec()
    value = {"rows": ["the same line of text"] * 2000}
    blob = encode(codec, "k", value)
    assert len(blob) < len(JsonSerializer().dumps(value)) / 10
    assert codec.decode("k", blob).value == value
    assert encode(codec, "k", "tiny").endswith(b'"tiny"')


# ---------------------------------------------------------------- signatures


def test_a_signed_entry_copied_onto_another_key_is_refused() -> None:
    codec = Codec(PickleSerializer(signing_key=KEY))
    alice = encode(codec, "account|alice", {"balance": 1_000_000})
    with pytest.raises(SerializationError, match="signature"):
        codec.decode("account|mallory", alice)


@pytest.mark.parametrize("offset", range(2, HEADER_SIZE))
def test_any_edit_of_the_header_is_refused(offset: int) -> None:
    codec = Codec(signing_key=KEY)
    blob = bytearray(encode(codec, "k", "v", expires_at=1000.0))
    blob[offset] ^= 0x01
    with pytest.raises(SerializationError):
        codec.decode("k", bytes(blob))


def test_an_expiry_set_to_never_by_hand_is_refused() -> None:
    codec = Codec(PickleSerializer(signing_key=KEY))
    blob = bytearray(encode(codec, "k", "v", expires_at=1000.0))
    blob[20:28] = struct.pack(">Q", 0)  # expires_ms: 0 means never
    with pytest.raises(SerializationError, match="signature"):
        codec.decode("k", bytes(blob))


def test_signed_json_refuses_unsigned_and_forged_entries() -> None:
    signed, unsigned = Codec(signing_key=KEY), Codec()
    with pytest.raises(SerializationError, match="not signed"):
        signed.decode("k", encode(unsigned, "k", {"admin": True}))
    forged = encode(Codec(signing_key=b"another key of 16+ bytes"), "k", {"admin": True})
    with pytest.raises(SerializationError, match="signature"):
        signed.decode("k", forged)


def test_the_signing_key_comes_from_the_environment_and_must_be_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", "a-key-from-the-environment")
    assert Codec().key == b"a-key-from-the-environment"
    with pytest.raises(ConfigurationError, match="16 bytes"):
        Codec(signing_key="short")


def test_the_signature_is_checked_before_decompression() -> None:
    codec = Codec(signing_key=KEY)
    bomb = encode(Codec(), "k", "x" * 10_000)  # unsigned, compressed
    blob = bomb[:3] + bytes([bomb[3] | 0x20]) + bomb[4:HEADER_SIZE] + b"\0" * MAC_SIZE
    blob += bomb[HEADER_SIZE:]
    with pytest.raises(SerializationError, match="signature"):
        codec.decode("k", blob)


# ---------------------------------------------------------------- hostile bytes


def test_a_zlib_bomb_is_refused_without_inflating_it() -> None:
    codec = Codec(max_bytes=1 << 20)
    honest = encode(Codec(), "k", "x")
    bomb = honest[:3] + bytes([honest[3] | 0x10]) + honest[4:HEADER_SIZE] + zlib_bomb(512 << 20)
    # tracemalloc sees the peak of this call alone (ru_maxrss, a process's lifetime peak,
    # could not see growth below an earlier test's).
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match="inflates past"):
            codec.decode("k", bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # 512 MiB inflated would have shown here


def test_the_limit_is_32_mib_unless_the_cache_sets_another() -> None:
    assert Codec().max_bytes == 32 * 1024 * 1024
    assert TieredCache([MemoryTier()], max_value_bytes=1000)._engine.chain.codec.max_bytes == 1000


def test_values_over_the_limit_are_not_written() -> None:
    with pytest.raises(SerializationError, match="over the limit"):
        Codec(max_bytes=100).payload("x" * 200)


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "too short"),
        (b"hello world, not ours, not ours, not ours, not ours", "unknown envelope"),
        (b"SC\x01\x01" + b"\x00" * 60, "unknown envelope"),  # an older format
        ("text", "not bytes"),
    ],
)
def test_foreign_bytes_are_refused_with_a_reason(blob: Any, reason: str) -> None:
    with pytest.raises(SerializationError, match=reason):
        Codec().decode("k", blob)


def test_a_truncated_compressed_payload_is_refused() -> None:
    codec = Codec()
    blob = encode(codec, "k", "x" * 5000)
    assert zlib.decompressobj().decompress(blob[HEADER_SIZE:])  # it really is compressed
    with pytest.raises(SerializationError):
        codec.decode("k", blob[:-10])


def test_an_entry_of_another_serializer_is_refused() -> None:
    pickled = encode(Codec(PickleSerializer(signing_key=KEY)), "k", [1])
    with pytest.raises(SerializationError, match="serializer 2"):
        Codec().decode("k", pickled)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.sampled_from([b"", b"SC\x03", b"SC\x03\x11", b"SC\x03\x31", b"SC\x03\x01"]),
    body=st.binary(max_size=400),
    signed=st.booleans(),
)
def test_arbitrary_bytes_decode_to_a_record_or_a_serialization_error(
    head: bytes, body: bytes, signed: bool
) -> None:
    codec = Codec(signing_key=KEY if signed else None, max_bytes=1 << 16)
    try:
        record = codec.decode("k", head + body)
    except SerializationError:
        return
    assert record.kind in (VALUE, TOMBSTONE, LEASE)
