"""``@cached_many``: cache a batch function per id, fetching only the ids no tier has.

For ``fetch(ids) -> {id: value}``: L1 lookups, then one ``MGET`` for what L1
lacks, then DynamoDB ``BatchGetItem`` in chunks of 100 for what Redis lacks,
then one call of the function with exactly the ids still missing. Hits in a
slower tier are copied into the faster ones with their remaining lifetime, and
what the function returns is written to every tier.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from stratacache import config
from stratacache._engine.compute import offload
from stratacache._engine.guard import Trace
from stratacache.errors import ConfigurationError, KeyBuildError
from stratacache.keys import KeyMaker, canonical, digest, function_id
from stratacache.options import CacheOptions
from stratacache.serialization import Serializer
from stratacache.tiered import TieredCache
from stratacache.tiers import Tier

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

ABSENT: Final = {"$stratacache": "absent"}
"""What ``cache_absent=True`` stores for an id the function did not return."""


def _unstored(encoded: str) -> str:
    from urllib.parse import unquote

    return unquote(encoded, errors="surrogatepass")


def _id_key(item: object) -> str:
    if type(item) is int or (type(item) is str and item.isprintable() and len(item) <= 100):
        return f"{type(item).__name__[0]}{item}"
    return digest(canonical(item))


class ManyFunction(Protocol, Generic[P, R_co]):
    """A ``@cached_many`` function: call it as before; it also carries its cache."""

    cache: TieredCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def cache_keys(self, *args: P.args, **kwargs: P.kwargs) -> dict[Any, str]:
        """Each id's key in ``.cache`` for this call."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Remove the entries of every id of this call from every tier."""
        ...


@overload
def cached_many(fn: Callable[P, R], /) -> ManyFunction[P, R]: ...


@overload
def cached_many(
    fn: None = None,
    /,
    *,
    ttl: float | None = None,
    tiers: Sequence[Tier] | None = None,
    ids: str | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    cache_absent: bool = False,
    absent_ttl: float | None = None,
) -> Callable[[Callable[P, R]], ManyFunction[P, R]]: ...


def cached_many(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    ttl: float | None = None,
    tiers: Sequence[Tier] | None = None,
    ids: str | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    cache_absent: bool = False,
    absent_ttl: float | None = None,
) -> Any:
    """Cache a function that takes many ids and returns ``{id: value}``, one entry per id.

    Args:
        ttl: seconds each id's value is kept (default ``STRATACACHE_TTL`` or 300).
        tiers: the chain, fastest first (default: from the environment, as
            :func:`~stratacache.cached_tiered`).
        ids: the parameter that carries the ids (default: the first one); the
            other arguments are part of every id's key.
        cache_absent: also remember ids the function did not return, for
            ``absent_ttl`` seconds (default: ``ttl``), so they are not asked for again.

    Example:
        >>> @cached_many(ttl=60)
        ... def prices(skus: list[str]) -> dict[str, int]:
        ...     return {sku: len(sku) for sku in skus}
        >>> prices(["ab", "abc", "ab"])
        {'ab': 2, 'abc': 3}
    """
    options = CacheOptions.build(ttl=ttl, tiers=tiers, namespace=namespace, serializer=serializer)
    absent_lifetime = config.check_ttl(absent_ttl, "absent_ttl") if absent_ttl else options.ttl

    def decorate(func: Callable[P, R]) -> ManyFunction[P, R]:
        signature = inspect.signature(func)
        params = list(signature.parameters)
        if not params:
            raise ConfigurationError(f"@cached_many needs {function_id(func)} to take the ids")
        ids_param = ids if ids is not None else params[0]
        if ids_param not in params:
            raise ConfigurationError(f"ids={ids_param!r} is not a parameter of {function_id(func)}")
        make_key = KeyMaker(func, ignore=[ids_param])
        call: Callable[..., Any] = func
        if options.disabled:
            options.warn_disabled()
            cache = TieredCache([], ttl=None)
        else:
            cache = options.cache_for(func)
        chain = cache._engine.chain

        def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[Any, str]]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = bound.arguments[ids_param]
            if isinstance(given, str | bytes) or not isinstance(given, Iterable):
                raise TypeError(f"{function_id(func)}(): {ids_param} must be a collection of ids")
            base = make_key(args, kwargs)
            try:
                keys = {item: cache.full_key(f"{base}:{_id_key(item)}") for item in given}
                # stored keys here; cache_keys() shows the keys as .cache takes them
            except TypeError as exc:
                raise KeyBuildError(
                    f"{function_id(func)}(): the ids in {ids_param!r} must be hashable: {exc}"
                ) from None
            return bound, keys

        def lookup(keys: Mapping[Any, str], run: Trace) -> tuple[dict[Any, Any], list[Any]]:
            found = chain.read_many(list(keys.values()), run)
            hits: dict[Any, Any] = {}
            missing: list[Any] = []
            for item, key in keys.items():
                record = found.get(key)
                if record is None:
                    missing.append(item)
                elif record.value != ABSENT:
                    hits[item] = record.value
            return hits, missing

        def remember(
            keys: Mapping[Any, str], missing: list[Any], fetched: object, run: Trace
        ) -> dict[Any, Any]:
            if not isinstance(fetched, Mapping):
                raise TypeError(
                    f"@cached_many: {function_id(func)} must return a mapping of id to value, "
                    f"got {type(fetched).__name__}"
                )
            new = {item: fetched[item] for item in missing if item in fetched}
            chain.write_many({keys[item]: value for item, value in new.items()}, run)
            if cache_absent:
                gone = {keys[item]: ABSENT for item in missing if item not in fetched}
                if gone:
                    chain.write_many(gone, run, ttl=absent_lifetime)
            return new

        def ordered(keys: Mapping[Any, str], values: Mapping[Any, Any]) -> dict[Any, Any]:
            return {item: values[item] for item in keys if item in values}

        wrapper: Any
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> dict[Any, Any]:
                bound, keys = plan(args, kwargs)
                run = chain.begin()
                hits, missing = await offload(lookup, keys, run)
                if missing:
                    bound.arguments[ids_param] = missing
                    chain.recorder.origin_call()
                    fetched = await call(*bound.args, **bound.kwargs)
                    hits.update(await offload(remember, keys, missing, fetched, run))
                return ordered(keys, hits)

        else:

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> dict[Any, Any]:
                bound, keys = plan(args, kwargs)
                run = chain.begin()
                hits, missing = lookup(keys, run)
                if missing:
                    bound.arguments[ids_param] = missing
                    chain.recorder.origin_call()
                    hits.update(remember(keys, missing, call(*bound.args, **bound.kwargs), run))
                return ordered(keys, hits)

        def cache_keys(*args: Any, **kwargs: Any) -> dict[Any, str]:
            """Each id's key in ``.cache`` for this call (``.cache.get(key)`` finds its value)."""
            prefix = len(cache._layout.prefix)
            return {item: _unstored(key[prefix:]) for item, key in plan(args, kwargs)[1].items()}

        def invalidate(*args: Any, **kwargs: Any) -> None:
            """Remove the entries of every id of this call from every tier."""
            cache._engine.invalidate_many(list(plan(args, kwargs)[1].values()))

        wrapper.cache = cache
        wrapper.cache_keys = cache_keys
        wrapper.invalidate = invalidate
        return cast("ManyFunction[P, R]", wrapper)

    return decorate if fn is None else decorate(fn)
