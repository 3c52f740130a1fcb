"""Serializers and the envelope that wraps every value stored in a byte tier.

The default :class:`JsonSerializer` cannot execute code: it writes JSON with a
few tagged types so that ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``, ``bytes``, ``tuple``, ``set``, ``frozenset`` and dicts
with non-string keys come back exactly as they went in. Pickle is available
only by explicit choice, and then only signed (:class:`PickleSerializer`).

What wraps the serialized bytes in a tier (expiry, version, signature) is
:mod:`stratacache.envelope`'s job.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from stratacache.config import ENV_SIGNING_KEY, env_str
from stratacache.errors import ConfigurationError, SerializationError


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
# The decoders' C scanners: (text, index) -> (value, end), StopIteration at no value.
_TAGGED_SCAN: Callable[[str, int], tuple[object, int]] = _JSON_DECODER.scan_once  # type: ignore[attr-defined]
_PLAIN_SCAN: Callable[[str, int], tuple[object, int]] = _PLAIN_DECODER.scan_once  # type: ignore[attr-defined]


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
        # dumps always writes UTF-8 with no whitespace around the document, so neither
        # json.loads' encoding sniffing nor JSONDecoder.decode's whitespace skipping is
        # needed: the C scanner parses it directly.
        try:
            text = data.decode("utf-8", "surrogatepass")
            scan = _PLAIN_SCAN if '"$' not in text else _TAGGED_SCAN  # no tags: no hook
            value, end = scan(text, 0)
        except StopIteration as exc:
            raise SerializationError(f"stored JSON is not a document (at {exc.value})") from None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise SerializationError(f"stored JSON does not parse: {exc}") from None
        if end != len(text):
            raise SerializationError(f"stored JSON has extra data at {end}")
        return value


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
            setting = "signing_key" if signing_key is not None else ENV_SIGNING_KEY
            raise ConfigurationError(
                f"{setting} must be at least 16 bytes long, got {len(self._key)}"
            )

    def __repr__(self) -> str:
        return "PickleSerializer(signing_key=***)"

    @property
    def signing_key(self) -> bytes:
        """The HMAC key; the envelope signs the whole entry with it too."""
        return self._key

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
