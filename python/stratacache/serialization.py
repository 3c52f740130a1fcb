"""Serializers and the envelope that wraps every value stored in a byte tier.

The default :class:`JsonSerializer` cannot execute code: it writes JSON with a
few tagged types so that ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``, ``bytes``, ``tuple``, ``set``, ``frozenset`` and dicts
with non-string keys come back exactly as they went in. Dataclasses and
Pydantic models come back too, for the classes declared with
``JsonSerializer(types=[...])``: stored bytes name a declared class, they
never name one to import. Pickle is available only by explicit choice, and
then only signed (:class:`PickleSerializer`).

What wraps the serialized bytes in a tier (expiry, version, signature) is
:mod:`stratacache.envelope`'s job.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, Protocol

from stratacache.config import ENV_SIGNING_KEY, env_str
from stratacache.errors import ConfigurationError, SerializationError


class Serializer(Protocol):
    """Turns values into bytes and back. ``id`` is recorded in every envelope."""

    id: ClassVar[int]

    def dumps(self, value: object) -> bytes: ...

    def loads(self, data: bytes) -> object: ...


# ---------------------------------------------------------------- JSON with tags

_JSONABLE_SCALARS = (str, int, float, bool, type(None))


Encode = Callable[[object], object]
"""Turns one value into JSON types; passed down so containers encode their items alike."""


def _tag_dict(value: dict[Any, Any], encode: Encode) -> object:
    plain = all(type(k) is str for k in value) and not (len(value) == 1 and _is_tag_key(value))
    if plain:
        return {k: encode(v) for k, v in value.items()}
    return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}


def _is_tag_key(value: dict[Any, Any]) -> bool:
    (only,) = value
    return only in _DECODERS


def _encoder(objects: Mapping[type, Callable[[Any, Encode], object]]) -> Encode:
    """An encoder for the built-in tagged types plus ``objects`` (declared classes)."""

    def encode(value: object) -> object:
        kind = type(value)
        if kind in _JSONABLE_SCALARS:
            if kind is float and not math.isfinite(value):  # type: ignore[arg-type]
                return {"$float": repr(value)}
            return value
        if kind is list:
            return [encode(item) for item in value]  # type: ignore[attr-defined]
        if kind is dict:
            return _tag_dict(value, encode)  # type: ignore[arg-type]
        encoder = _ENCODERS.get(kind)
        if encoder is not None:
            return encoder(value, encode)
        declared = objects.get(kind)
        if declared is not None:
            return declared(value, encode)
        raise SerializationError(
            f"cannot serialize a value of type {kind.__qualname__} with the JSON serializer; "
            f"declare it with JsonSerializer(types=[{kind.__qualname__}]) if it is a dataclass "
            "or a Pydantic model, convert it to JSON types, or choose "
            "serializer=PickleSerializer(signing_key=...)"
        )

    return encode


def _sorted_items(items: Any, encode: Encode) -> list[object]:
    encoded = [encode(item) for item in items]
    # A stable order makes equal sets serialize to equal bytes.
    return sorted(encoded, key=lambda item: json.dumps(item, sort_keys=True))


def _with_fold(value: dt.datetime | dt.time) -> object:
    # isoformat() drops ``fold`` (which of a repeated wall-clock hour is meant); keep it.
    return [value.isoformat(), 1] if value.fold else value.isoformat()


def _without_fold(kind: type[dt.datetime] | type[dt.time], payload: Any) -> object:
    if isinstance(payload, list):
        return kind.fromisoformat(payload[0]).replace(fold=payload[1])
    return kind.fromisoformat(payload)


_ENCODERS: dict[type, Callable[[Any, Encode], object]] = {
    tuple: lambda v, encode: {"$tuple": [encode(item) for item in v]},
    set: lambda v, encode: {"$set": _sorted_items(v, encode)},
    frozenset: lambda v, encode: {"$frozenset": _sorted_items(v, encode)},
    bytes: lambda v, _: {"$bytes": base64.b64encode(v).decode("ascii")},
    dt.datetime: lambda v, _: {"$datetime": _with_fold(v)},
    dt.date: lambda v, _: {"$date": v.isoformat()},
    dt.time: lambda v, _: {"$time": _with_fold(v)},
    dt.timedelta: lambda v, _: {"$timedelta": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v, _: {"$decimal": str(v)},
    uuid.UUID: lambda v, _: {"$uuid": str(v)},
}

_encode = _encoder({})


def _undeclared(payload: Any) -> object:
    name = payload[0] if isinstance(payload, list) and payload else "?"
    raise SerializationError(
        f"stored value is a {name!r} object; this serializer declares no types "
        "(JsonSerializer(types=[...]))"
    )


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
    "$obj": _undeclared,
}


def _object_hook(obj: dict[str, Any]) -> object:
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(payload)
    return obj


# ---------------------------------------------------------------- declared classes


class _Declared(NamedTuple):
    """How one declared class is written and rebuilt."""

    name: str
    fields: Callable[[Any], dict[str, Any]]
    rebuild: Callable[[dict[str, Any]], object]


def _dataclass_fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _dataclass_rebuilder(cls: type) -> Callable[[dict[str, Any]], object]:
    known = {f.name for f in dataclasses.fields(cls)}
    init = {f.name for f in dataclasses.fields(cls) if f.init}

    def rebuild(fields: dict[str, Any]) -> object:
        if unknown := fields.keys() - known:
            raise TypeError(f"no field named {', '.join(sorted(unknown))}")
        value = cls(**{name: v for name, v in fields.items() if name in init})
        for name, v in fields.items():  # fields the constructor does not take
            if name not in init:
                object.__setattr__(value, name, v)
        return value

    return rebuild


def _declare(name: str, cls: type) -> _Declared:
    if dataclasses.is_dataclass(cls):
        return _Declared(name, _dataclass_fields, _dataclass_rebuilder(cls))
    if callable(getattr(cls, "model_validate", None)) and callable(
        getattr(cls, "model_dump", None)
    ):  # Pydantic v2
        validate: Callable[[Any], object] = cls.model_validate  # type: ignore[attr-defined]
        return _Declared(name, lambda v: v.model_dump(mode="python", round_trip=True), validate)
    if callable(getattr(cls, "parse_obj", None)) and callable(getattr(cls, "dict", None)):
        parse: Callable[[Any], object] = cls.parse_obj  # type: ignore[attr-defined]
        return _Declared(name, lambda v: v.dict(), parse)  # Pydantic v1, or pydantic.v1
    raise ConfigurationError(
        f"JsonSerializer types: {cls.__qualname__} is neither a dataclass nor a Pydantic model"
    )


def _declared_types(types: Iterable[type] | Mapping[str, type]) -> dict[type, _Declared]:
    named: list[tuple[str, type]] = []
    pairs: Iterable[tuple[str | None, object]] = (
        types.items() if isinstance(types, Mapping) else ((None, cls) for cls in types)
    )
    for name, cls in pairs:
        if not isinstance(cls, type):
            raise ConfigurationError(f"JsonSerializer types: {cls!r} is not a class")
        named.append((name or f"{cls.__module__}.{cls.__qualname__}", cls))
    declared: dict[type, _Declared] = {}
    names: dict[str, type] = {}
    for name, cls in named:
        if name in names and names[name] is not cls:
            raise ConfigurationError(
                f"JsonSerializer types: two classes are named {name!r}; "
                "pass types={name: class, ...} to name them apart"
            )
        names[name] = cls
        declared[cls] = _declare(name, cls)
    return declared


# One decoder for every read: json.loads builds a new JSONDecoder on each call
# that passes object_hook, which costs as much as parsing a small value.
_JSON_DECODER = json.JSONDecoder(object_hook=_object_hook)
_PLAIN_DECODER = json.JSONDecoder()
# The decoders' C scanners: (text, index) -> (value, end), StopIteration at no value.
_TAGGED_SCAN: Callable[[str, int], tuple[object, int]] = _JSON_DECODER.scan_once  # type: ignore[attr-defined]
_PLAIN_SCAN: Callable[[str, int], tuple[object, int]] = _PLAIN_DECODER.scan_once  # type: ignore[attr-defined]


class JsonSerializer:
    """The default: JSON plus exact round trips of common Python types; never runs code.

    Args:
        types: dataclasses and Pydantic models (v2, or v1's ``parse_obj`` API)
            to round-trip as themselves. Each is stored under its
            ``module.QualName`` (or the names of a ``{name: class}`` mapping),
            and rebuilt through its constructor (a dataclass) or its validation
            (a Pydantic model). Only the classes listed here are ever rebuilt:
            a stored name that is not among them is a miss, never an import.
            Writers and readers of a cache declare the same types.

    Example:
        >>> s = JsonSerializer()
        >>> s.loads(s.dumps({"at": (1, 2), "ids": {3}}))
        {'at': (1, 2), 'ids': {3}}
        >>> @dataclasses.dataclass
        ... class Quote:
        ...     symbol: str
        ...     price: Decimal
        >>> s = JsonSerializer(types=[Quote])
        >>> s.loads(s.dumps(Quote("AMZN", Decimal("178.25"))))
        Quote(symbol='AMZN', price=Decimal('178.25'))
    """

    id: ClassVar[int] = 1

    def __init__(self, types: Iterable[type] | Mapping[str, type] = ()) -> None:
        self._declared = _declared_types(types)
        self._encode = _encode
        self._tagged_scan = _TAGGED_SCAN
        if self._declared:
            self._by_name = {d.name: d for d in self._declared.values()}
            self._encode = _encoder({cls: self._write for cls in self._declared})
            decoder = json.JSONDecoder(object_hook=self._hook)
            self._tagged_scan = decoder.scan_once  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self._declared.values())
        return f"JsonSerializer(types=[{names}])" if names else "JsonSerializer()"

    def _write(self, value: Any, encode: Encode) -> object:
        declared = self._declared[type(value)]
        return {"$obj": [declared.name, encode(declared.fields(value))]}

    def _hook(self, obj: dict[str, Any]) -> object:
        if len(obj) == 1 and "$obj" in obj:
            return self._rebuild(obj["$obj"])
        return _object_hook(obj)

    def _rebuild(self, payload: Any) -> object:
        if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], dict)):
            raise SerializationError("stored object is not [name, fields]")
        name, fields = payload
        declared = self._by_name.get(name) if isinstance(name, str) else None
        if declared is None:
            raise SerializationError(
                f"stored value is a {name!r} object, which is not among this serializer's "
                "types; it is never imported"
            )
        try:
            return declared.rebuild(fields)
        except Exception as exc:  # the class changed since the entry was written
            raise SerializationError(
                f"stored {name} does not fit the class: {type(exc).__name__}: {exc}"
            ) from None

    def dumps(self, value: object) -> bytes:
        try:
            return json.dumps(
                self._encode(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode()
        except RecursionError as exc:
            raise SerializationError("value is nested too deeply to serialize") from exc

    def loads(self, data: bytes) -> object:
        # dumps always writes UTF-8 with no whitespace around the document, so neither
        # json.loads' encoding sniffing nor JSONDecoder.decode's whitespace skipping is
        # needed: the C scanner parses it directly.
        try:
            text = data.decode("utf-8", "surrogatepass")
            scan = _PLAIN_SCAN if '"$' not in text else self._tagged_scan  # no tags: no hook
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
