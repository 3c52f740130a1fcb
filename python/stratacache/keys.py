"""Cache keys: namespace + function identity + a stable digest of the arguments.

The digest is the same for the same call in every process and every Python
run (no ``hash()``), tells ``1``, ``1.0``, ``True`` and ``"1"`` apart, and
does not depend on dict or set ordering.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import inspect
import math
import sys
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Final

from stratacache.errors import KeyBuildError

try:  # CPython's own BLAKE2, without the OpenSSL bindings that hashlib loads (~2 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b

MAX_KEY_LENGTH: Final = 1024
"""Longer keys are shortened to a digest (DynamoDB allows 2048 bytes, Redis far more)."""

_DIGEST_SIZE: Final = 16


class _UnkeyableError(Exception):
    def __init__(self, kind: type) -> None:
        super().__init__(kind)
        self.kind = kind


def _canon(value: object, out: list[str]) -> None:
    """Append a typed, order-independent text form of ``value`` to ``out``."""
    kind = type(value)
    if value is None:
        out.append("N")
    elif kind is bool:
        out.append("T" if value else "F")
    elif kind is int:
        out.append(f"i{value};")
    elif kind is float:
        out.append(f"f{value!r};" if math.isfinite(value) else f"f{value};")  # type: ignore[arg-type]
    elif kind is str:
        out.append(f"s{len(value)}:{value}")  # type: ignore[arg-type]
    elif kind is bytes:
        out.append(f"b{value.hex()};")  # type: ignore[attr-defined]
    elif kind is list or kind is tuple:
        out.append("l[" if kind is list else "t[")
        for item in value:  # type: ignore[attr-defined]
            _canon(item, out)
        out.append("]")
    elif kind is dict:
        out.append("d{")
        for part in sorted(_canon_pair(k, v) for k, v in value.items()):  # type: ignore[attr-defined]
            out.append(part)
        out.append("}")
    elif kind is set or kind is frozenset:
        out.append("S{" if kind is set else "Z{")
        out.extend(sorted(canonical(item) for item in value))  # type: ignore[attr-defined]
        out.append("}")
    elif isinstance(value, enum.Enum):
        out.append(f"e{kind.__module__}.{kind.__qualname__}.{value.name};")
    elif kind is Decimal or kind is uuid.UUID:
        out.append(f"{kind.__name__}({value});")
    elif kind in (dt.datetime, dt.date, dt.time):
        out.append(f"{kind.__name__}({value.isoformat()});")  # type: ignore[attr-defined]
    elif kind is dt.timedelta:
        out.append(f"timedelta({value.total_seconds()!r});")  # type: ignore[attr-defined]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"D{kind.__module__}.{kind.__qualname__}(")
        for field in dataclasses.fields(value):
            out.append(f"{field.name}=")
            _canon(getattr(value, field.name), out)
        out.append(")")
    else:
        raise _UnkeyableError(kind)


def _canon_pair(key: object, value: object) -> str:
    return canonical(key) + "=" + canonical(value)


def canonical(value: object) -> str:
    """The typed, stable text form of ``value`` that keys are digested from.

    Example:
        >>> canonical({"b": 1, "a": (1.0, None)})
        'd{s1:a=t[f1.0;N]s1:b=i1;}'
    """
    out: list[str] = []
    _canon(value, out)
    return "".join(out)


def digest(text: str) -> str:
    """A 32-character hex BLAKE2b digest of ``text``."""
    return blake2b(text.encode(), digest_size=_DIGEST_SIZE).hexdigest()


def function_id(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, the part of its keys that tells functions apart.

    A module run with ``python -m pkg.mod`` is ``__main__`` to Python but
    ``pkg.mod`` here, so it shares keys with the same module imported by name.
    """
    module = fn.__module__
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
    return f"{module}.{fn.__qualname__}"


def fit_key(key: str) -> str:
    """Return ``key`` itself when short enough, else a digest of it with its start kept."""
    if len(key.encode()) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:64]}~{digest(key)}"


class KeyMaker:
    """Builds the argument part of a cached function's keys.

    Arguments are bound to the signature first, so ``f(1)``, ``f(x=1)`` and a
    default left out all give one key. ``ignore`` names arguments left out of
    the key (``self``, a logger, a client). ``key`` replaces the whole scheme:
    it gets the call's arguments and returns a value that is digested, or a
    string used as it is.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        key: Callable[..., object] | None = None,
        ignore: Iterable[str] = (),
    ) -> None:
        self._fn_name = function_id(fn)
        self._custom = key
        self._ignore = frozenset(ignore)
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None
        if self._signature is not None:
            unknown = self._ignore - set(self._signature.parameters)
            if unknown:
                raise KeyBuildError(
                    f"ignore names {sorted(unknown)} that {self._fn_name} does not take"
                )

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self._custom is not None:
            return self._from_custom(args, kwargs)
        if self._signature is None:
            named: Iterable[tuple[str, object]] = [("*", args), ("**", kwargs)]
        else:
            try:
                bound = self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self._fn_name}(): {exc}") from None
            bound.apply_defaults()
            named = bound.arguments.items()
        out: list[str] = []
        for name, value in named:
            if name in self._ignore:
                continue
            out.append(f"{name}=")
            try:
                _canon(value, out)
            except _UnkeyableError as exc:
                raise KeyBuildError(
                    f"cannot build a cache key for {self._fn_name}: argument {name!r} is a "
                    f"{exc.kind.__qualname__}, which has no stable key; pass key=... to the "
                    "decorator, or ignore=[...] to leave it out"
                ) from None
        return digest("".join(out))

    def _from_custom(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self._custom is not None
        made = self._custom(*args, **kwargs)
        if isinstance(made, str) and made.isprintable() and len(made) <= 200:
            return made
        try:
            return digest(canonical(made))
        except _UnkeyableError as exc:
            raise KeyBuildError(
                f"key= of {self._fn_name} returned a {exc.kind.__qualname__}; "
                "return a str or a value made of JSON types, tuples and dataclasses"
            ) from None
