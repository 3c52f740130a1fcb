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
from stratacache.config import Seconds
from stratacache.errors import ConfigurationError, KeyBuildError
from stratacache.freshness import Fresh
from stratacache.keys import KeyMaker, KeysUnder, canonical, digest, function_id
from stratacache.options import CacheOptions
from stratacache.serialization import Serializer
from stratacache.tiered import TieredCache
from stratacache.tiers import Tier
from stratacache.tiers.base import MISS, Missing

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


def _stored_keys(under: KeysUnder, given: Iterable[Any]) -> dict[Any, str]:
    """Each id's stored key: ``under(_id_key(item))``, ints (the usual ids) inline."""
    start, room = under.start, under.room
    keys: dict[Any, str] = {}
    for item in given:
        if type(item) is int:
            tail = f"i{item}"  # _id_key's, of safe characters only
            keys[item] = start + tail if len(tail) <= room else under(tail)
        else:
            keys[item] = under(_id_key(item))
    return keys


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
    ttl: Seconds | None = None,
    tiers: Sequence[Tier] | None = None,
    ids: str | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    cache_absent: bool = False,
    absent_ttl: Seconds | None = None,
) -> Callable[[Callable[P, R]], ManyFunction[P, R]]: ...


def cached_many(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    ttl: Seconds | None = None,
    tiers: Sequence[Tier] | None = None,
    ids: str | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    cache_absent: bool = False,
    absent_ttl: Seconds | None = None,
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
        if options.disabled:
            options.warn_disabled()
            cache = TieredCache([], ttl=None)
        else:
            cache = options.cache_for(func)
        batch = _Batch(func, signature, ids_param, cache, absent_lifetime if cache_absent else MISS)
        wrapper: Any
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> dict[Any, Any]:
                return await batch.acall(*args, **kwargs)

        else:

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> dict[Any, Any]:
                return batch.call(*args, **kwargs)

        wrapper.cache = cache
        wrapper.cache_keys = batch.cache_keys
        wrapper.invalidate = batch.invalidate
        return cast("ManyFunction[P, R]", wrapper)

    return decorate if fn is None else decorate(fn)


class _Batch:
    """One ``@cached_many`` function: its ids' keys, the lookup, the fetch and the write."""

    def __init__(
        self,
        func: Callable[..., Any],
        signature: inspect.Signature,
        ids_param: str,
        cache: TieredCache,
        absent_lifetime: float | None | Missing,
    ) -> None:
        self.func = func
        self.signature = signature
        self.ids_param = ids_param
        self.make_key = KeyMaker(func, ignore=[ids_param])
        self.cache = cache
        self.chain = cache._engine.chain
        self.absent_lifetime = absent_lifetime
        """Seconds an id the function did not return is remembered (``MISS``: it is not)."""

    def plan(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[Any, str]]:
        """The call bound to the signature, and each id's stored key."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments[self.ids_param]
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise TypeError(
                f"{function_id(self.func)}(): {self.ids_param} must be a collection of ids"
            )
        under = self.cache._layout.keys_under(self.make_key(args, kwargs) + ":")
        try:
            keys = _stored_keys(under, given)
        except TypeError as exc:
            raise KeyBuildError(
                f"{function_id(self.func)}(): the ids in {self.ids_param!r} must be hashable: {exc}"
            ) from None
        return bound, keys

    def lookup(self, keys: Mapping[Any, str], trace: Trace) -> tuple[dict[Any, Any], list[Any]]:
        found = self.chain.read_many(list(keys.values()), trace)
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
        self, keys: Mapping[Any, str], missing: list[Any], fetched: object, trace: Trace
    ) -> dict[Any, Any]:
        if not isinstance(fetched, Mapping):
            raise TypeError(
                f"@cached_many: {function_id(self.func)} must return a mapping of id to value, "
                f"got {type(fetched).__name__}"
            )
        new = {item: fetched[item] for item in missing if item in fetched}
        self.chain.write_many({keys[item]: value for item, value in new.items()}, trace)
        if self.absent_lifetime is not MISS:
            gone = {keys[item]: ABSENT for item in missing if item not in fetched}
            if gone:
                self.chain.write_many(gone, trace, ttl=self.absent_lifetime)
        return new

    def from_memory(self, keys: Mapping[Any, str]) -> dict[Any, Any] | None:
        """Every id's value when L1 holds them all, else ``None`` (the full path then runs).

        The batch's counterpart of the decorators' L1 fast path: one check of the shared
        generation when due, no other tier, the hits counted and the metrics published
        on the usual schedule.
        """
        chain = self.chain
        l1 = chain.l1
        if l1 is None or not keys or chain.generation_moved():
            return None
        entries = l1.entries
        touch = l1.touch
        now = l1.timer()
        found: dict[Any, Any] = {}
        for item, full in keys.items():
            entry = entries.get(full)
            if entry is None or entry[1] <= now or type(entry[0]) is Fresh:
                return None  # the entries touched so far only moved up in the LRU order
            # Not contextlib.suppress: a context manager per id would double the cost.
            try:  # noqa: SIM105
                touch(full)
            except KeyError:
                pass  # evicted meanwhile by another thread: the value read stands
            value = entry[0]
            if not (isinstance(value, dict) and value == ABSENT):
                found[item] = value
        chain.counts[0].hits += len(keys)
        recorder = chain.recorder
        if recorder.clock() >= recorder.deadline:
            recorder.publish()
        return found

    def call(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        bound, keys = self.plan(args, kwargs)
        found = self.from_memory(keys)
        if found is not None:
            return found
        trace = self.chain.begin()
        hits, missing = self.lookup(keys, trace)
        if missing:
            bound.arguments[self.ids_param] = missing
            self.chain.recorder.origin_call()
            fetched = self.func(*bound.args, **bound.kwargs)
            hits.update(self.remember(keys, missing, fetched, trace))
        return {item: hits[item] for item in keys if item in hits}

    async def acall(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        bound, keys = self.plan(args, kwargs)
        found = self.from_memory(keys)
        if found is not None:
            return found
        trace = self.chain.begin()
        hits, missing = await offload(self.lookup, keys, trace)
        if missing:
            bound.arguments[self.ids_param] = missing
            self.chain.recorder.origin_call()
            fetched = await self.func(*bound.args, **bound.kwargs)
            hits.update(await offload(self.remember, keys, missing, fetched, trace))
        return {item: hits[item] for item in keys if item in hits}

    def cache_keys(self, *args: Any, **kwargs: Any) -> dict[Any, str]:
        """Each id's key in ``.cache`` for this call (``.cache.get(key)`` finds its value)."""
        prefix = len(self.cache.full_key(""))
        return {item: _unstored(key[prefix:]) for item, key in self.plan(args, kwargs)[1].items()}

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Remove the entries of every id of this call from every tier."""
        self.cache._engine.invalidate_many(list(self.plan(args, kwargs)[1].values()))
