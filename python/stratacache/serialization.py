"""Serializers and the envelope that wraps every value stored in a byte tier.

The default :class:`JsonSerializer` cannot execute code: it writes JSON with a
few tagged types so that ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``, ``bytes``, ``tuple``, ``set``, ``frozenset`` and dicts
with non-string keys come back exactly as they went in. Pickle is available
only by explicit choice, and then only signed (:class:`PickleSerializer`).

Envelope layout (big-endian)::

    magic b"SC" | version u8 | flags u8 | expires_at_ms u64 (0 = never) | payload

``flags`` holds the serializer id (low nibble) and a compression bit.
Anything that does not parse is a miss for the caller, never a crash.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import struct
import uuid
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from stratacache.config import ENV_SIGNING_KEY, env_str
from stratacache.errors import ConfigurationError, SerializationError

FORMAT_VERSION: Final = 1
FRESHNESS_VERSION: Final = 2
"""Version 2 adds when the entry turns stale and how long it took to compute."""
_MAGIC: Final = b"SC"
_HEADER = struct.Struct(">2sBBQ")
_FRESHNESS = struct.Struct(">QI")  # stale_at in epoch ms (0: never), compute time in ms
HEADER_SIZE: Final = _HEADER.size
"""Bytes the envelope adds in front of every payload (version 1)."""
_COMPRESSED: Final = 0x10
_SERIALIZER_MASK: Final = 0x0F
COMPRESS_MIN_BYTES: Final = 1024
"""Payloads at least this large are compressed when that makes them smaller."""


class Serializer(Protocol):
    """Turns values into bytes and back. ``id`` is recorded in every envelope."""

    id: ClassVar[int]

    def dumps(self, value: object) -> bytes: ...

    def loads(self, data: bytes) -> object: ...


# ---------------------------------------------------------------- JSON with tags

_JSONABLE_SCALARS = (str, int, float, bool, type(None))


def _tag_dict(value: dict[Any, Any], encode: Callable[[object], object]) -> object:
    plain = all(type(k) is str for k in value) and not (len(value) == 1 and _is_tag_key(value))
    if plain:
        return {k: encode(v) for k, v in value.items()}
    return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}


def _is_tag_key(value: dict[Any, Any]) -> bool:
    (only,) = value
    return only in _DECODERS


def _encode(value: object) -> object:
    kind = type(value)
    if kind in _JSONABLE_SCALARS:
        if kind is float and not math.isfinite(value):  # type: ignore[arg-type]
            return {"$float": repr(value)}
        return value
    if kind is list:
        return [_encode(item) for item in value]  # type: ignore[attr-defined]
    if kind is dict:
        return _tag_dict(value, _encode)  # type: ignore[arg-type]
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise SerializationError(
            f"cannot serialize a value of type {kind.__qualname__} with the JSON serializer; "
            "convert it to JSON types or choose serializer=PickleSerializer(signing_key=...)"
        )
    return encoder(value)


def _sorted_items(items: Any) -> list[object]:
    encoded = [_encode(item) for item in items]
    # A stable order makes equal sets serialize to equal bytes.
    return sorted(encoded, key=lambda item: json.dumps(item, sort_keys=True))


def _with_fold(value: dt.datetime | dt.time) -> object:
    # isoformat() drops ``fold`` (which of a repeated wall-clock hour is meant); keep it.
    return [value.isoformat(), 1] if value.fold else value.isoformat()


def _without_fold(kind: type[dt.datetime] | type[dt.time], payload: Any) -> object:
    if isinstance(payload, list):
        return kind.fromisoformat(payload[0]).replace(fold=payload[1])
    return kind.fromisoformat(payload)


_ENCODERS: dict[type, Callable[[Any], object]] = {
    tuple: lambda v: {"$tuple": [_encode(item) for item in v]},
    set: lambda v: {"$set": _sorted_items(v)},
    frozenset: lambda v: {"$frozenset": _sorted_items(v)},
    bytes: lambda v: {"$bytes": base64.b64encode(v).decode("ascii")},
    dt.datetime: lambda v: {"$datetime": _with_fold(v)},
    dt.date: lambda v: {"$date": v.isoformat()},
    dt.time: lambda v: {"$time": _with_fold(v)},
    dt.timedelta: lambda v: {"$timedelta": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {"$decimal": str(v)},
    uuid.UUID: lambda v: {"$uuid": str(v)},
}

_DECODERS: dict[str, Callable[[Any], object]] = {
    "$tuple": tuple,
    "$set": set,
    "$frozenset": frozenset,
    "$bytes": lambda v: base64.b64decode(v.encode("ascii"), validate=True),
    "$datetime": lambda v: _without_fold(dt.datetime, v),
    "$date": dt.date.fromisoformat,
    "$time": lambda v: _without_fold(dt.time, v),
    "$timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$decimal": Decimal,
    "$uuid": uuid.UUID,
    "$float": float,
    "$dict": lambda pairs: {k: v for k, v in pairs},
}


def _object_hook(obj: dict[str, Any]) -> object:
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(payload)
    return obj


# One decoder for every read: json.loads builds a new JSONDecoder on each call
# that passes object_hook, which costs as much as parsing a small value.
_JSON_DECODER = json.JSONDecoder(object_hook=_object_hook)
_PLAIN_DECODER = json.JSONDecoder()


class JsonSerializer:
    """The default: JSON plus exact round trips of common Python types; never runs code.

    Example:
        >>> s = JsonSerializer()
        >>> s.loads(s.dumps({"at": (1, 2), "ids": {3}}))
        {'at': (1, 2), 'ids': {3}}
    """

    id: ClassVar[int] = 1

    def dumps(self, value: object) -> bytes:
        try:
            return json.dumps(
                _encode(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode()
        except RecursionError as exc:
            raise SerializationError("value is nested too deeply to serialize") from exc

    def loads(self, data: bytes) -> object:
        # dumps always writes UTF-8, so json.loads' encoding sniffing is not needed.
        text = data.decode("utf-8", "surrogatepass")
        if '"$' not in text:  # no tags anywhere: the C scanner alone, no hook per object
            return _PLAIN_DECODER.decode(text)
        return _JSON_DECODER.decode(text)


# ---------------------------------------------------------------- signed pickle


class PickleSerializer:
    """Pickle, for values JSON cannot hold, signed with HMAC-SHA256.

    An unsigned or tampered payload is refused before ``pickle.loads`` sees it.
    Every writer and reader of the cache must share ``signing_key`` (default:
    ``STRATACACHE_SIGNING_KEY``). Use it only for caches that you alone write.

    Example:
        >>> s = PickleSerializer(signing_key=b"a long random secret")
        >>> s.loads(s.dumps(complex(1, 2)))
        (1+2j)
    """

    id: ClassVar[int] = 2
    _DIGEST = 32

    def __init__(self, signing_key: bytes | str | None = None) -> None:
        key = signing_key if signing_key is not None else env_str(ENV_SIGNING_KEY)
        if not key:
            raise ConfigurationError(
                f"PickleSerializer needs signing_key (or {ENV_SIGNING_KEY}): "
                "unsigned pickle would let whoever can write the cache run code"
            )
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        if len(self._key) < 16:
            raise ConfigurationError("signing_key must be at least 16 bytes long")

    def __repr__(self) -> str:
        return "PickleSerializer(signing_key=***)"

    def _sign(self, data: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self._key, data, hashlib.sha256).digest()

    def dumps(self, value: object) -> bytes:
        try:
            import pickle  # opt-in only: import stratacache does not load it

            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(value).__qualname__}: {exc}") from exc
        return self._sign(data) + data

    def loads(self, data: bytes) -> object:
        signature, payload = data[: self._DIGEST], data[self._DIGEST :]
        import hmac
        import pickle

        if len(signature) != self._DIGEST or not hmac.compare_digest(
            signature, self._sign(payload)
        ):
            raise SerializationError("pickle payload signature does not match; refused")
        return pickle.loads(payload)


# ---------------------------------------------------------------- envelope


class Envelope(NamedTuple):
    """A decoded stored value and when it expires (epoch seconds, ``None`` = never).

    ``stale_at`` (when a grace period or early refresh is on) is when it should be
    recomputed; ``delta`` is how many seconds computing it took.
    """

    value: object
    expires_at: float | None
    stale_at: float | None = None
    delta: float = 0.0


def _millis(at: float | None) -> int:
    return 0 if at is None else max(1, math.ceil(at * 1000))


class Codec:
    """Wraps values in the envelope with one serializer; the cache owns one codec."""

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JsonSerializer()

    def payload(self, value: object) -> tuple[int, bytes]:
        """Serialize (and maybe compress) once; wrap the result per tier with :meth:`wrap`."""
        try:
            data = self.serializer.dumps(value)
        except SerializationError:
            raise
        except Exception as exc:
            # A str with a lone surrogate, an int past Python's digit limit, or a custom
            # serializer's own error: the value stays uncached, the caller still gets it.
            raise SerializationError(
                f"cannot serialize a {type(value).__qualname__}: {type(exc).__name__}: {exc}"
            ) from exc
        flags = self.serializer.id
        if len(data) >= COMPRESS_MIN_BYTES:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                return flags | _COMPRESSED, packed
        return flags, data

    @staticmethod
    def wrap(
        payload: tuple[int, bytes],
        expires_at: float | None,
        stale_at: float | None = None,
        delta: float = 0.0,
    ) -> bytes:
        flags, data = payload
        if stale_at is None and not delta:
            return _HEADER.pack(_MAGIC, FORMAT_VERSION, flags, _millis(expires_at)) + data
        head = _HEADER.pack(_MAGIC, FRESHNESS_VERSION, flags, _millis(expires_at))
        delta_ms = min(max(0, round(delta * 1000)), 0xFFFFFFFF)
        return head + _FRESHNESS.pack(_millis(stale_at), delta_ms) + data

    def encode(
        self,
        value: object,
        expires_at: float | None,
        stale_at: float | None = None,
        delta: float = 0.0,
    ) -> bytes:
        return self.wrap(self.payload(value), expires_at, stale_at, delta)

    def decode(self, blob: object) -> Envelope:
        """Parse an envelope; raise :class:`SerializationError` for anything foreign."""
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise SerializationError(f"stored value is {type(blob).__name__}, not bytes")
        blob = bytes(blob)
        if len(blob) < _HEADER.size:
            raise SerializationError("stored value is too short to be an envelope")
        magic, version, flags, millis = _HEADER.unpack_from(blob)
        if magic != _MAGIC or version not in (FORMAT_VERSION, FRESHNESS_VERSION):
            raise SerializationError(f"unknown envelope format (magic={magic!r}, v={version})")
        stale_ms, delta_ms, start = 0, 0, _HEADER.size
        if version == FRESHNESS_VERSION:
            if len(blob) < _HEADER.size + _FRESHNESS.size:
                raise SerializationError("stored value is too short to be an envelope")
            stale_ms, delta_ms = _FRESHNESS.unpack_from(blob, _HEADER.size)
            start += _FRESHNESS.size
        if flags & _SERIALIZER_MASK != self.serializer.id:
            raise SerializationError(
                f"entry was written by serializer {flags & _SERIALIZER_MASK}, "
                f"this cache reads serializer {self.serializer.id}"
            )
        data = blob[start:]
        try:
            if flags & _COMPRESSED:
                data = zlib.decompress(data)
            value = self.serializer.loads(data)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"cannot decode stored value: {exc}") from exc
        return Envelope(
            value,
            millis / 1000 if millis else None,
            stale_ms / 1000 if stale_ms else None,
            delta_ms / 1000,
        )

    @staticmethod
    def payload_of(blob: bytes) -> tuple[int, bytes]:
        """The serialized payload of a checked envelope, to re-wrap with a new expiry."""
        _, version, flags, _ = _HEADER.unpack_from(blob)
        start = _HEADER.size + (_FRESHNESS.size if version == FRESHNESS_VERSION else 0)
        return flags, bytes(blob[start:])
