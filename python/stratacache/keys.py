"""Cache keys: an injective layout of namespace, function identity and argument digest.

Three jobs, each one function or class:

- :func:`canonical` turns any argument into a typed text form, or refuses it
  with :class:`~stratacache.errors.KeyBuildError`. ``1``, ``1.0``, ``True``
  and ``"1"`` stay apart, dict and set order does not matter, and the form is
  the same in every process (no ``hash()``).
- :func:`function_id` names a function so that two different functions never
  share entries (lambdas, closures, redefinitions) while the same function
  imported in two environments does.
- :class:`KeyLayout` lays out the stored key. Every segment is percent-encoded,
  so ``:``, ``|`` and ``#`` only ever appear as separators and no two different
  (namespace, key) pairs meet: ``ns1:ns2|key``, ``ns1:ns2#gen`` for the
  generation counter, ``ns1:ns2|key#lock`` for a lease.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import inspect
import math
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Final

from stratacache.errors import ConfigurationError, KeyBuildError

try:  # CPython's own BLAKE2, without the OpenSSL bindings that hashlib loads (~2 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b

MAX_KEY_LENGTH: Final = 1024
"""Longest stored key in bytes (DynamoDB allows 2048, Redis far more); longer ones are shortened."""
MAX_NAMESPACE_LENGTH: Final = 256
"""An encoded namespace longer than this keeps its start and a digest of the whole."""
MAX_DEPTH: Final = 100
"""Arguments nested deeper than this are refused rather than risk a RecursionError."""

_DIGEST_SIZE: Final = 16
_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._<>@+=,!")
_ALL_SAFE: Final = re.compile(r"[A-Za-z0-9\-._<>@+=,!]*")
_SHORT: Final = "~"  # never safe, so a shortened part cannot be mistaken for a literal one


class _Unkeyable(Exception):  # noqa: N818 - internal signal, turned into KeyBuildError
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- canonical form


def _canon(value: object, out: list[str], active: set[int], depth: int) -> None:
    """Append a typed, order-independent text form of ``value`` to ``out``."""
    kind = type(value)
    if value is None:
        out.append("N")
    elif kind is bool:
        out.append("T" if value else "F")
    elif kind is int:
        out.append(f"i{value:x};")  # hex: no limit on digits, unlike str(int)
    elif kind is float:
        out.append(f"f{value!r};" if math.isfinite(value) else f"f{value};")  # type: ignore[arg-type]
    elif kind is str:
        out.append(f"s{len(value)}:{value}")  # type: ignore[arg-type]
    elif kind is bytes:
        out.append(f"b{value.hex()};")  # type: ignore[attr-defined]
    elif isinstance(value, enum.Enum):
        out.append(f"e{kind.__module__}.{kind.__qualname__}.{value.name};")
    elif kind is Decimal or kind is uuid.UUID:
        out.append(f"{kind.__name__}({value});")
    elif kind in (dt.datetime, dt.date, dt.time):
        fold = f"|{value.fold}" if getattr(value, "fold", 0) else ""  # type: ignore[attr-defined]
        out.append(f"{kind.__name__}({value.isoformat()}{fold});")  # type: ignore[attr-defined]
    elif kind is dt.timedelta:
        out.append(f"timedelta({value.days},{value.seconds},{value.microseconds});")  # type: ignore[attr-defined]
    else:
        _canon_container(value, kind, out, active, depth)


def _canon_container(value: Any, kind: type, out: list[str], active: set[int], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _Unkeyable(f"is nested more than {MAX_DEPTH} levels deep")
    marker = id(value)
    if marker in active:
        raise _Unkeyable("contains itself")
    active.add(marker)
    depth += 1
    if kind is list or kind is tuple:
        out.append("l[" if kind is list else "t[")
        for item in value:
            _canon(item, out, active, depth)
        out.append("]")
    elif kind is dict:
        out.append("d{")
        out.extend(
            sorted(
                _part(k, active, depth) + "=" + _part(v, active, depth) for k, v in value.items()
            )
        )
        out.append("}")
    elif kind is set or kind is frozenset:
        out.append("S{" if kind is set else "Z{")
        out.extend(sorted(_part(item, active, depth) for item in value))
        out.append("}")
    elif isinstance(value, tuple) and hasattr(kind, "_fields"):  # a NamedTuple
        out.append(f"n{kind.__module__}.{kind.__qualname__}[")
        for item in value:
            _canon(item, out, active, depth)
        out.append("]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"D{kind.__module__}.{kind.__qualname__}(")
        for field in dataclasses.fields(value):
            out.append(f"{field.name}=")
            _canon(getattr(value, field.name), out, active, depth)
        out.append(")")
    else:
        raise _Unkeyable(f"is a {kind.__qualname__}, which has no stable key")
    active.discard(marker)


def _part(value: object, active: set[int], depth: int) -> str:
    out: list[str] = []
    _canon(value, out, active, depth)
    return "".join(out)


def canonical(value: object) -> str:
    """The typed, stable text form of ``value`` that keys are digested from.

    Raises :class:`KeyBuildError` for a value that has no stable form (an
    arbitrary object, a cycle, nesting deeper than :data:`MAX_DEPTH`).

    Example:
        >>> canonical({"b": 1, "a": (1.0, None)})
        'd{s1:a=t[f1.0;N]s1:b=i1;}'
    """
    try:
        return _part(value, set(), 0)
    except _Unkeyable as exc:
        raise KeyBuildError(f"the value {exc.reason}") from None


def digest(text: str) -> str:
    """A 32-character hex BLAKE2b digest of ``text`` (lone surrogates included)."""
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_SIZE).hexdigest()


# ---------------------------------------------------------------- function identity

_claimed: dict[str, tuple[str, int, int, str]] = {}
"""Identity -> where the function that first claimed it was defined."""


def _position(code: types.CodeType) -> tuple[int, int]:
    """Line and column of a function's first instruction after its prologue.

    Two lambdas on one line differ in column; before Python 3.11 there are no
    columns, and :func:`function_id` tells such twins apart by their code.
    """
    positions = getattr(code, "co_positions", None)
    found = (
        [(line, column or 0) for line, _, column, _ in positions() if line is not None]
        if positions
        else []
    )
    if len(found) > 1:
        return found[1]  # found[0] is the RESUME of the function's prologue
    return found[0] if found else (code.co_firstlineno, 0)


def _fingerprint(code: types.CodeType) -> str:
    """A digest of what a function does, the same in every process of one Python version."""
    return digest(repr((code.co_code, code.co_consts, code.co_names, code.co_varnames)))[:12]


def _module_of(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    if module == "__main__":
        # ``python -m pkg.mod`` runs pkg.mod as __main__; key it by its real name.
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
    return module


def _free_value(value: object, seen: set[int]) -> str:
    """The stable form of one free variable of a closure."""
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if isinstance(value, type):
        return f"class:{value.__module__}.{value.__qualname__}"
    wrapped = getattr(value, "__wrapped__", None)
    if callable(wrapped) and hasattr(value, "cache"):  # a cached function: name what it wraps
        value = wrapped
    if isinstance(value, types.FunctionType):
        if id(value) in seen:
            return "self"
        return "function:" + _identity(value, seen)
    return _part(value, set(), 0)


def _identity(fn: types.FunctionType, seen: set[int]) -> str:
    seen.add(id(fn))
    name = f"{_module_of(fn)}.{fn.__qualname__}"
    if "<lambda>" in fn.__qualname__:
        line, column = _position(fn.__code__)
        name += f"@L{line}C{column}"
    cells = fn.__closure__ or ()
    if cells:
        parts = []
        for var, cell in zip(fn.__code__.co_freevars, cells, strict=True):
            try:
                content = cell.cell_contents
            except ValueError:  # not bound yet (a function that refers to itself)
                parts.append(f"{var}=<unbound>")
                continue
            try:
                parts.append(f"{var}={_free_value(content, seen)}")
            except _Unkeyable as exc:
                raise _Unkeyable(f"closes over {var!r}, which {exc.reason}") from None
        name += "@" + digest(";".join(parts))[:12]
    return name


def function_id(fn: Callable[..., Any], *, closure: bool = True) -> str:
    """A name for ``fn`` that no other function shares and every environment agrees on.

    ``module.qualname`` for a plain function. A lambda adds where it stands
    (``@L12C8``), a closure a digest of its free variables' values (so
    ``scaled_by(2)`` and ``scaled_by(3)`` differ), and a second, different
    function that claims a name already taken in this process adds where it
    stands. ``closure=False`` (an explicit ``namespace=``) leaves the free
    variables out.

    Raises:
        ConfigurationError: a closure over a value with no stable form; pass
            ``namespace=`` to the decorator to name it yourself.

    Example:
        >>> def scaled_by(k):
        ...     def scale(x):
        ...         return k * x
        ...     return scale
        >>> function_id(scaled_by(2)) != function_id(scaled_by(3))
        True
    """
    if not isinstance(fn, types.FunctionType):
        return f"{_module_of(fn)}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    try:
        name = _identity(fn, set()) if closure else f"{_module_of(fn)}.{fn.__qualname__}"
    except _Unkeyable as exc:
        raise ConfigurationError(
            f"{_module_of(fn)}.{fn.__qualname__} {exc.reason}, so it has no identity that "
            "other environments would agree on; pass namespace=... to the decorator to "
            "name its cache yourself"
        ) from None
    line, column = _position(fn.__code__)
    where = (fn.__code__.co_filename, line, column, _fingerprint(fn.__code__))
    first = _claimed.setdefault(name, where)
    if first != where:  # another function of the same name: tell them apart by place
        if f"@L{line}C{column}" not in name:
            name += f"@L{line}C{column}"
        if _claimed.setdefault(name, where) != where:  # and by code, on the same spot
            name += "@" + where[3]
            _claimed.setdefault(name, where)
    return name


# ---------------------------------------------------------------- stored layout


def encode_segment(text: str) -> str:
    """Percent-encode every character outside ``A-Z a-z 0-9 - . _ < > @ + = , !``.

    Example:
        >>> encode_segment("t:vip")
        't%3Avip'
    """
    if _ALL_SAFE.fullmatch(text):
        return text
    return "".join(
        char
        if char in _SAFE
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in text
    )


class KeyLayout:
    """Where one namespace's entries, generation counter and leases live.

    Args:
        namespace: one name, or several (``("stratacache", "app.quote")``) that
            are encoded one by one and joined with ``:``.

    Example:
        >>> layout = KeyLayout(("t", "vip"))
        >>> layout.key("secret"), KeyLayout("t:vip").key("secret")
        ('t:vip|secret', 't%3Avip|secret')
    """

    __slots__ = ("feed_key", "generation_key", "prefix")

    def __init__(self, namespace: str | Sequence[str]) -> None:
        parts = (namespace,) if isinstance(namespace, str) else tuple(namespace)
        encoded = ":".join(encode_segment(part) for part in parts)
        if len(encoded) > MAX_NAMESPACE_LENGTH:
            encoded = encoded[: MAX_NAMESPACE_LENGTH - 40] + _SHORT + digest(encoded)
        self.prefix = encoded + "|"
        """What every entry key of this namespace starts with; ``clear()`` matches on it."""
        self.generation_key = encoded + "#gen"
        self.feed_key = encoded + "#feed{" + encoded + "}"
        """The namespace's invalidation feed: it starts like the namespace's other keys (for
        ACL key patterns), and its hash tag, the namespace (braces are never part of an
        encoded name), keeps it in one slot of a Redis Cluster."""

    def key(self, key: str) -> str:
        """The stored form of ``key``: the prefix, then the encoded key (or its digest)."""
        full = self.prefix + encode_segment(key)
        if len(full) > MAX_KEY_LENGTH:
            full = self.prefix + _SHORT + digest(key)
        return full

    def keys_under(self, head: str) -> KeysUnder:
        """:meth:`key` of ``head + tail`` for many tails, ``head`` encoded once.

        Example:
            >>> layout = KeyLayout("t")
            >>> layout.keys_under("f:a|")("i1") == layout.key("f:a|i1")
            True
        """
        return KeysUnder(self, head)


class KeysUnder:
    """The stored keys of one head and many tails (a batch's ids): the head encoded once.

    Encoding works character by character, so the encoded head and the encoded tail
    are the encoded whole: ``under(tail) == layout.key(head + tail)``, always.
    """

    __slots__ = ("head", "layout", "room", "start")

    def __init__(self, layout: KeyLayout, head: str) -> None:
        self.layout = layout
        self.head = head
        self.start = layout.prefix + encode_segment(head)
        """The stored keys' common beginning."""
        self.room = MAX_KEY_LENGTH - len(self.start)
        """The longest tail of only safe characters that ``start + tail`` may end with."""

    def __call__(self, tail: str) -> str:
        if len(tail) <= self.room and _ALL_SAFE.fullmatch(tail):
            return self.start + tail
        full = self.start + encode_segment(tail)
        return full if len(full) <= MAX_KEY_LENGTH else self.layout.key(self.head + tail)


def lock_key(full_key: str) -> str:
    """Where the refresh lease of an entry lives (never a possible entry key)."""
    return full_key + "#lock"


# ---------------------------------------------------------------- argument keys


class KeyMaker:
    """Builds the argument part of a cached function's keys.

    Arguments are bound to the signature first, so ``f(1)``, ``f(x=1)`` and a
    default left out all give one key. ``ignore`` names arguments left out of
    the key (``self``, a logger, a client). ``key`` replaces the whole scheme:
    it gets the call's arguments and returns a short printable string used as
    it is, or any keyable value, which is digested (marked with ``~``).

    Example:
        >>> def price(sku, currency="EUR"): ...
        >>> make = KeyMaker(price)
        >>> make(("A1",), {}) == make((), {"sku": "A1", "currency": "EUR"})
        True
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        key: Callable[..., object] | None = None,
        ignore: Iterable[str] = (),
    ) -> None:
        self._fn_name = f"{_module_of(fn)}.{getattr(fn, '__qualname__', '?')}"
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
                _canon(value, out, set(), 0)
            except _Unkeyable as exc:
                raise KeyBuildError(
                    f"cannot build a cache key for {self._fn_name}: argument {name!r} "
                    f"{exc.reason}; pass key=... to the decorator, or ignore=[...] to "
                    "leave it out"
                ) from None
        return digest("".join(out))

    def _from_custom(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self._custom is not None
        made = self._custom(*args, **kwargs)
        if (
            type(made) is str
            and made.isprintable()
            and len(made) <= 200
            and not made.startswith(_SHORT)
        ):
            return made
        try:
            return _SHORT + digest(canonical(made))
        except KeyBuildError as exc:
            raise KeyBuildError(
                f"key= of {self._fn_name} returned a value that {exc}; "
                "return a str or a value made of JSON types, tuples and dataclasses"
            ) from None
