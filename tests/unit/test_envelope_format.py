"""The envelope's bytes and facts, pinned exactly: every stored record in every tier has this
layout, so a change must be deliberate (a new format number), never an accident.

Written for the mutants of envelope.py that the other tests let live.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import ClassVar

import pytest

from stratacache import ConfigurationError, SerializationError
from stratacache.envelope import (
    DEFAULT_MAX_BYTES,
    HEADER_SIZE,
    LEASE,
    MAC_SIZE,
    TOMBSTONE,
    VALUE,
    Codec,
    resolve_signing_key,
)
from stratacache.serialization import JsonSerializer, PickleSerializer

KEY = b"0123456789abcdef"  # the shortest signing key accepted
VERSION = b"12345678"
HEADER = struct.Struct(">2sBB8sQQQQI")


def test_a_value_record_has_the_documented_header() -> None:
    codec = Codec()
    blob = codec.wrap(
        "k",
        codec.payload("x"),
        version=VERSION,
        generation=7,
        expires_at=100.0005,  # rounded up to the millisecond
        keep_until=50.0,  # never earlier than the expiry
        stale_at=90.25,
        delta=1.2344,
    )
    assert blob == HEADER.pack(b"SC", 3, 0x01, VERSION, 7, 100_001, 100_001, 90_250, 1234) + b'"x"'
    record = codec.decode("k", blob)
    assert record == (VALUE, "x", VERSION, 7, 100.001, 100.001, 90.25, 1.234)


def test_times_never_or_not_set_are_zero_and_read_back_as_none() -> None:
    codec = Codec()
    blob = codec.wrap(
        "k", codec.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    assert blob[:HEADER_SIZE] == HEADER.pack(b"SC", 3, 0x01, VERSION, 0, 0, 0, 0, 0)
    assert codec.decode("k", blob) == (VALUE, 1, VERSION, 0, None, None, None, 0.0)


def test_keep_without_an_expiry_is_kept_as_given() -> None:
    codec = Codec()
    blob = codec.wrap(
        "k", codec.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=5.0
    )
    assert codec.decode("k", blob).keep_until == 5.0


def test_extreme_facts_are_clamped_into_their_fields() -> None:
    codec = Codec()
    blob = codec.wrap(
        "k",
        codec.payload(1),
        version=VERSION,
        generation=2**70,
        expires_at=0.0000001,  # a moment after the epoch is still a time, not "never"
        keep_until=1e30,
        stale_at=None,
        delta=-3.0,
    )
    fields = HEADER.unpack_from(blob)
    assert fields[4:] == (2**64 - 1, 1, 2**63 - 1, 0, 0)
    huge = codec.wrap(
        "k", codec.payload(1), version=VERSION, generation=0, expires_at=None,
        keep_until=None, delta=1e12,
    )  # fmt: skip
    assert HEADER.unpack_from(huge)[8] == 0xFFFFFFFF


def test_a_tombstone_and_a_lease_carry_no_value() -> None:
    codec = Codec()
    tomb = codec.tombstone("k", VERSION, 4, 900.0)
    assert tomb == HEADER.pack(b"SC", 3, 0x41, VERSION, 4, 900_000, 900_000, 0, 0)
    assert codec.decode("k", tomb) == (TOMBSTONE, None, VERSION, 4, 900.0, 900.0, None, 0.0)
    lease = codec.lease("k", b"tokentok", 10.0, 30.0)
    assert lease == HEADER.pack(b"SC", 3, 0x81, b"tokentok", 0, 10_000, 30_000, 0, 0)
    assert codec.decode("k", lease) == (LEASE, None, b"tokentok", 0, 10.0, 30.0, None, 0.0)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("value", ["small", "x" * 5000])
def test_a_promoted_record_keeps_everything_but_its_expiry(signed: bool, value: str) -> None:
    codec = Codec(signing_key=KEY if signed else None)
    blob = codec.wrap(
        "k",
        codec.payload(value),
        version=VERSION,
        generation=3,
        expires_at=500.0,
        keep_until=900.0,
        stale_at=400.0,
        delta=0.5,
    )
    record = codec.decode("k", blob)
    promoted = codec.rewrap("k", record, blob, 200.0)
    assert promoted[3] == blob[3]  # the same flags (compressed, signed, serializer)
    assert (
        promoted[HEADER_SIZE + (MAC_SIZE if signed else 0) :]
        == blob[HEADER_SIZE + (MAC_SIZE if signed else 0) :]
    )
    # keep is not carried over: the promoting cache passes the lifetime it wants kept
    assert codec.decode("k", promoted) == (VALUE, value, VERSION, 3, 200.0, None, 400.0, 0.5)
    never = codec.rewrap("k", record, blob, None)
    assert codec.decode("k", never)[4:6] == (None, None)


def test_a_promoted_unsigned_record_can_be_signed_by_a_signing_cache() -> None:
    plain, signing = Codec(), Codec(signing_key=KEY)
    blob = plain.wrap(
        "k", plain.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    promoted = signing.rewrap("k", plain.decode("k", blob), blob, 60.0)
    assert signing.decode("k", promoted).value == 1


def test_a_signed_record_is_readable_without_the_key() -> None:
    signed = Codec(signing_key=KEY)
    blob = signed.wrap(
        "k", signed.payload([1]), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    assert blob[3] == 0x21
    assert len(blob) == HEADER_SIZE + MAC_SIZE + len(b"[1]")
    assert Codec().decode("k", blob).value == [1]  # the signature is skipped, not parsed


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        ("text", "stored value is str, not bytes"),
        (b"short", "stored value is too short to be an envelope"),
        (b"XX" + bytes(46), r"unknown envelope format \(magic=b'XX', format=0\)"),
        (b"SC\x02" + bytes(45), r"unknown envelope format \(magic=b'SC', format=2\)"),
        (
            HEADER.pack(b"SC", 3, 0x02, VERSION, 0, 0, 0, 0, 0),
            "entry was written by serializer 2, ",
        ),
        (HEADER.pack(b"SC", 3, 0x11, VERSION, 0, 0, 0, 0, 0) + b"junk", "cannot decode stored "),
        (HEADER.pack(b"SC", 3, 0x01, VERSION, 0, 0, 0, 0, 0) + b"{", "stored JSON does not parse"),
    ],
)
def test_what_does_not_parse_is_refused_with_its_reason(blob: object, message: str) -> None:
    with pytest.raises(SerializationError, match=f"^{message}"):
        Codec().decode("k", blob)


def test_bytearray_and_memoryview_are_read_as_bytes() -> None:
    codec = Codec()
    blob = codec.wrap(
        "k", codec.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    assert codec.decode("k", bytearray(blob)).value == 1
    assert codec.decode("k", memoryview(blob)).value == 1


def test_a_signing_cache_refuses_what_is_unsigned_or_signed_for_another_key() -> None:
    plain, signing = Codec(), Codec(signing_key=KEY)
    blob = plain.wrap(
        "k", plain.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    with pytest.raises(SerializationError, match=r"^entry is not signed"):
        signing.decode("k", blob)
    forged = blob[:3] + bytes([blob[3] | 0x20]) + blob[4:HEADER_SIZE]  # flagged, too short
    with pytest.raises(SerializationError, match=r"^entry is not signed"):
        signing.decode("k", forged)
    other = Codec(signing_key=b"another key, 16+ bytes")
    theirs = other.wrap(
        "k", other.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    with pytest.raises(SerializationError, match=r"^entry signature does not match"):
        signing.decode("k", theirs)


class RawBytes:
    """A serializer that stores bytes as they are (id 3)."""

    id: ClassVar[int] = 3

    def dumps(self, value: object) -> bytes:
        assert isinstance(value, bytes)
        return value

    def loads(self, data: bytes) -> object:
        return data


def test_compression_keeps_only_what_shrinks() -> None:
    codec = Codec(RawBytes())
    assert codec.payload(b"a" * 2000) == (0x13, zlib.compress(b"a" * 2000, 6))
    noise = os.urandom(2000)  # zlib cannot make it smaller
    assert codec.payload(noise) == (0x03, noise)


def test_the_size_limit_is_inclusive_on_write_and_on_inflate() -> None:
    limit = 2000
    codec = Codec(max_bytes=limit)
    fits = "a" * (limit - 2)  # two quotes
    payload = codec.payload(fits)
    assert payload.flags == 0x11  # compressed
    blob = codec.wrap("k", payload, version=VERSION, generation=0, expires_at=None, keep_until=None)
    assert codec.decode("k", blob).value == fits  # inflates to exactly the limit
    with pytest.raises(SerializationError, match=f"has {limit + 1} bytes, over the limit"):
        codec.payload(fits + "a")
    assert Codec().max_bytes == DEFAULT_MAX_BYTES


def test_a_truncated_compressed_record_is_refused() -> None:
    codec = Codec()
    header = HEADER.pack(b"SC", 3, 0x11, VERSION, 0, 0, 0, 0, 0)
    data = zlib.compress(b'"' + b"a" * 3000 + b'"')
    with pytest.raises(SerializationError, match=r"^compressed entry is truncated"):
        codec.decode("k", header + data[: len(data) // 2])


def test_the_overhead_is_the_header_and_the_signature() -> None:
    assert Codec().overhead == HEADER_SIZE
    assert Codec(signing_key=KEY).overhead == HEADER_SIZE + MAC_SIZE


def test_the_signing_key_comes_from_the_argument_the_serializer_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_signing_key(None, JsonSerializer()) is None
    assert resolve_signing_key("k" * 16, JsonSerializer()) == b"k" * 16
    buffer: object = bytearray(b"b" * 16)  # any bytes-like key
    assert resolve_signing_key(buffer, JsonSerializer()) == b"b" * 16  # type: ignore[arg-type]
    assert resolve_signing_key(None, PickleSerializer(signing_key=b"p" * 16)) == b"p" * 16
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", "e" * 16)
    assert resolve_signing_key(None, JsonSerializer()) == b"e" * 16
    assert resolve_signing_key(b"a" * 16, JsonSerializer()) == b"a" * 16
    with pytest.raises(ConfigurationError, match=r"^signing_key must be at least 16 bytes"):
        resolve_signing_key(b"a" * 15, JsonSerializer())


# ---------------------------------------------------------------- what mutation testing found


class Failing:
    """A serializer whose dumps fails with its own error."""

    id: ClassVar[int] = 4

    def dumps(self, value: object) -> bytes:
        raise ValueError("no")

    def loads(self, data: bytes) -> object:
        return data


def test_a_serializers_own_error_is_named_with_the_value_type() -> None:
    with pytest.raises(SerializationError) as raised:
        Codec(Failing()).payload([1])
    assert str(raised.value) == "cannot serialize a list: ValueError: no"


def test_compression_starts_at_exactly_1_kib() -> None:
    codec = Codec(RawBytes())
    assert codec.payload(b"a" * 1023).flags == 0x03
    assert codec.payload(b"a" * 1024).flags == 0x13


def test_the_signature_is_hmac_sha256_of_the_key_name_header_and_payload() -> None:
    import hashlib
    import hmac

    codec = Codec(signing_key=KEY)
    key = "t|k\udc80"  # a lone surrogate in a key (from an event body) is signed too
    blob = codec.wrap(
        key, codec.payload(1), version=VERSION, generation=0, expires_at=None, keep_until=None
    )
    name = key.encode("utf-8", "surrogatepass")
    header, data = blob[:HEADER_SIZE], blob[HEADER_SIZE + MAC_SIZE :]
    expected = hmac.new(
        KEY, len(name).to_bytes(4, "big") + name + header + data, hashlib.sha256
    ).digest()
    assert blob[HEADER_SIZE : HEADER_SIZE + MAC_SIZE] == expected
    assert codec.decode(key, blob).value == 1


def test_a_long_unsigned_entry_is_refused_as_unsigned_not_as_forged() -> None:
    plain = Codec()
    blob = plain.wrap(
        "k", plain.payload("x" * 100), version=VERSION, generation=0, expires_at=None,
        keep_until=None,
    )  # fmt: skip
    with pytest.raises(SerializationError, match=r"^entry is not signed"):
        Codec(signing_key=KEY).decode("k", blob)


def test_a_value_that_inflates_past_one_step_comes_back_whole() -> None:
    codec = Codec()
    value = "ab" * (1 << 20)  # 2 MiB of JSON: inflated in several steps
    blob = codec.wrap(
        "k", codec.payload(value), version=VERSION, generation=0, expires_at=None,
        keep_until=None,
    )  # fmt: skip
    assert codec.decode("k", blob).value == value
