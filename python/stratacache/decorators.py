"""``@cached`` and ``@cached_tiered``: memoize a function over a :class:`TieredCache`.

The wrapper that is built depends on the options: with a memory tier first,
an L1 hit costs two dict lookups and a clock read, with no key digest and no
lock. The digest of a call's arguments is computed once per distinct call and
remembered.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Final, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from stratacache import config
from stratacache.errors import ConfigurationError
from stratacache.freshness import Freshness
from stratacache.keys import KeyMaker, function_id
from stratacache.locks import DEFAULT_LEASE, DEFAULT_WAIT
from stratacache.serialization import Serializer
from stratacache.tiered import TieredCache
from stratacache.tiers import TIER_NAMES, MemoryTier, Tier, shared_tier, tiers_from_env

logger = logging.getLogger("stratacache")

P = ParamSpec("P")
R = TypeVar("R")

_KWARGS: Final = object()
_warned_disabled = False


class CachedFunction(Protocol, Generic[P, R]):
    """A cached function: call it as before; it also carries its cache and helpers."""

    cache: TieredCache
    __wrapped__: Callable[P, R]
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> CachedFunction[P, R]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., R]: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """Methods work: a cached function defined in a class binds like any function."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key of this call in ``.cache`` (``.cache.full_key()`` gives the stored form)."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove this call's entry from every tier; ``True`` when some tier had it."""
        ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Recompute this call now, rewrite every tier and return the fresh value."""
        ...

    def invalidate_all(self) -> None:
        """Make every entry of this function unreachable, here and (soon) everywhere."""
        ...


def _memo_key(args: tuple[Any, ...], kwargs: dict[str, Any], typed: bool) -> Hashable:
    key: tuple[Any, ...] = args
    if kwargs:
        key = (*args, _KWARGS, *kwargs.items())
    if typed:
        key = (*key, *(type(v) for v in args), *(type(v) for v in kwargs.values()))
    return key


def _bind(
    fn: Callable[P, Any],
    cache: TieredCache,
    make_key: KeyMaker,
    typed: bool,
) -> Any:
    """Build the wrapper for ``fn``: the fastest one the cache's tiers allow."""
    memo: dict[Hashable, str] = {}
    l1 = cache.tiers[0] if cache.tiers and isinstance(cache.tiers[0], MemoryTier) else None
    if cache.freshness.enabled:
        l1 = None  # L1 then holds refresh facts with each value: every call takes the full path
    memo_max = l1.maxsize if l1 is not None else config.DEFAULT_L1_MAXSIZE
    full_key = cache.full_key
    cache.on_generation.append(memo.clear)  # keys carry the generation: forget them on a bump
    # With a shared generation counter, every call checks (at most every
    # generation_check seconds) whether another environment called invalidate_all().
    watch = cache.generation_due != math.inf
    check_generation = cache.check_generation

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if watch and cache.monotonic() >= cache.generation_due:
            check_generation()
        try:
            memo_key = _memo_key(args, kwargs, typed)
            return memo[memo_key]
        except KeyError:
            made = memo[memo_key] = full_key(make_key(args, kwargs))
            if len(memo) > memo_max:
                memo.clear()
                memo[memo_key] = made
            return made
        except TypeError:  # an unhashable argument: digest it every call
            return full_key(make_key(args, kwargs))

    if l1 is not None:
        data = l1.data
        l1_timer = l1.timer
        l1_counts = cache.counts[0]
        recorder = cache.recorder
        same_clock = l1_timer is recorder.clock

        def l1_hit(full: str) -> tuple[bool, Any]:
            try:
                value, expires_at = data[full]
            except KeyError:
                return False, None
            now = l1_timer()
            if expires_at <= now:
                return False, None
            l1_counts.hits += 1
            if (now if same_clock else recorder.clock()) >= recorder.deadline:
                recorder.publish()
            return True, value

    else:

        def l1_hit(full: str) -> tuple[bool, Any]:
            return False, None

    wrapper: Any
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            full = key_of(args, kwargs)
            hit, value = l1_hit(full)
            if hit:
                return value
            return await cache.aget_or_compute(full, fn, args, kwargs)

        async def async_refresh(*args: Any, **kwargs: Any) -> Any:
            import asyncio  # loaded by the running event loop; kept off import stratacache

            result = await fn(*args, **kwargs)
            full = key_of(args, kwargs)
            if cache.remote:
                await asyncio.to_thread(cache.store, full, result)
            else:
                cache.store(full, result)
            return result

        wrapper = async_wrapper
        wrapper.refresh = async_refresh
    else:
        get_or_compute = cache.get_or_compute
        if l1 is not None and not typed:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                # l1_hit and key_of inlined: each call saved is a third of an L1 hit's cost.
                if watch and cache.monotonic() >= cache.generation_due:
                    check_generation()
                try:
                    full = memo[(*args, _KWARGS, *kwargs.items()) if kwargs else args]
                except (KeyError, TypeError):
                    full = key_of(args, kwargs)
                try:
                    value, expires_at = data[full]
                except KeyError:
                    return get_or_compute(full, fn, args, kwargs)
                now = l1_timer()
                if expires_at <= now:
                    return get_or_compute(full, fn, args, kwargs)
                l1_counts.hits += 1
                if (now if same_clock else recorder.clock()) >= recorder.deadline:
                    recorder.publish()
                return value

        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                full = key_of(args, kwargs)
                hit, value = l1_hit(full)
                if hit:
                    return value
                return get_or_compute(full, fn, args, kwargs)

        def refresh(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            cache.store(key_of(args, kwargs), result)
            return result

        wrapper.refresh = refresh

    def cache_key(*args: Any, **kwargs: Any) -> str:
        return make_key(args, kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        return cache.delete(make_key(args, kwargs))

    def invalidate_all() -> None:
        cache.invalidate_all()

    wrapper.cache = cache
    wrapper.cache_key = cache_key
    wrapper.invalidate_all = invalidate_all
    wrapper.invalidate = invalidate
    return wrapper


def _passthrough(fn: Callable[P, R], make_key: KeyMaker) -> Any:
    """``STRATACACHE_DISABLED``: call ``fn`` every time; the helpers exist but cache nothing."""
    global _warned_disabled  # noqa: PLW0603 - one warning per environment, not per function
    if not _warned_disabled:
        _warned_disabled = True
        logger.warning("%s is set: every @cached function runs uncached", config.ENV_DISABLED)

    wrapper: Any
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    wrapper.cache = TieredCache([], ttl=None)
    wrapper.cache_key = lambda *args, **kwargs: make_key(args, kwargs)
    wrapper.invalidate = lambda *args, **kwargs: False
    wrapper.invalidate_all = lambda: None
    wrapper.refresh = wrapper
    return wrapper


def _decorate(
    fn: Callable[P, R] | None,
    tiers: Callable[[], Sequence[Tier]],
    ttl: float | None,
    key: Callable[..., object] | None,
    namespace: str | None,
    serializer: Serializer | None,
    ignore: Iterable[str],
    typed: bool,
    options: dict[str, Any],
) -> Any:
    # Configuration is checked here, at decoration, so mistakes surface at import time.
    resolved_ttl = config.resolve_ttl(ttl)
    freshness = Freshness(
        grace=options.pop("grace"),
        early_refresh=options.pop("early_refresh"),
        jitter=options.pop("jitter"),
    )
    if options["lock"] is None and config.env_str(config.ENV_LOCK) is not None:
        options["lock"] = config.env_flag(config.ENV_LOCK)
    base_namespace = config.resolve_namespace(namespace)
    if key is not None and not callable(key):
        raise ConfigurationError(f"key must be a callable, got {type(key).__name__}")
    ignored = (ignore,) if isinstance(ignore, str) else tuple(ignore)

    def decorate(func: Callable[P, R]) -> CachedFunction[P, R]:
        if not callable(func):
            raise TypeError(f"@cached decorates a function, got {type(func).__name__}")
        make_key = KeyMaker(func, key=key, ignore=ignored)
        if config.env_flag(config.ENV_DISABLED):
            return cast("CachedFunction[P, R]", _passthrough(func, make_key))
        cache = TieredCache(
            tiers(),
            ttl=resolved_ttl,
            namespace=f"{base_namespace}:{function_id(func)}",
            serializer=serializer,
            freshness=freshness,
            **options,
        )
        return cast("CachedFunction[P, R]", _bind(func, cache, make_key, typed))

    return decorate if fn is None else decorate(fn)


def _options(
    lock: bool | None,
    lock_lease: float,
    lock_wait: float,
    grace: float | None,
    early_refresh: float | None,
    jitter: float | None,
) -> dict[str, Any]:
    """The stampede and freshness options, as :func:`_decorate` takes them."""
    return {
        "lock": lock,
        "lock_lease": lock_lease,
        "lock_wait": lock_wait,
        "grace": grace,
        "early_refresh": early_refresh,
        "jitter": jitter,
    }


def _one_tier(tier: str | Tier) -> Callable[[], Sequence[Tier]]:
    if isinstance(tier, str):
        if tier == "memory":
            return lambda: [MemoryTier()]
        if tier not in TIER_NAMES:
            raise ConfigurationError(
                f"tier must be one of {TIER_NAMES} or a Tier instance, got {tier!r}"
            )
        chosen = shared_tier(tier)
        return lambda: [chosen]
    if not isinstance(tier, Tier):
        raise ConfigurationError(
            f"tier must be one of {TIER_NAMES} or a Tier instance, got {type(tier).__name__}"
        )
    return lambda: [tier]


@overload
def cached(fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached(
    fn: None = None,
    /,
    *,
    ttl: float | None = None,
    tier: str | Tier = "memory",
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    ignore: Iterable[str] = (),
    typed: bool = False,
    lock: bool | None = None,
    lock_lease: float = DEFAULT_LEASE,
    lock_wait: float = DEFAULT_WAIT,
    grace: float | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached(
    fn: Callable[P, R] | None = None,
    /,
    *,
    ttl: float | None = None,
    tier: str | Tier = "memory",
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    ignore: Iterable[str] = (),
    typed: bool = False,
    lock: bool | None = None,
    lock_lease: float = DEFAULT_LEASE,
    lock_wait: float = DEFAULT_WAIT,
    grace: float | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache a function's results in one tier.

    Args:
        ttl: seconds a result is kept (default ``STRATACACHE_TTL`` or 300); the
            tier's own ``ttl`` wins.
        tier: ``"memory"`` (a new L1 for this function), ``"redis"``,
            ``"dynamodb"`` (the environment's shared tier) or a tier instance.
        key: builds the key from the call's arguments instead of the default digest.
        namespace: key namespace (default ``STRATACACHE_NAMESPACE`` or ``stratacache``).
        serializer: for byte tiers; default JSON with exact round trips, no pickle.
        ignore: argument names left out of the key (``"self"``, a client, a logger).
        typed: keep ``f(1)`` and ``f(1.0)`` apart in memory too (as ``lru_cache(typed=True)``).
        lock: on a full miss, let one caller across all environments compute while the
            others wait (default: on when a shared tier can hold a lease;
            ``STRATACACHE_LOCK``); ``lock_lease`` bounds how long a dead holder blocks
            others, ``lock_wait`` how long a waiter waits before computing itself.
        grace: seconds a stale entry is still served while one caller refreshes it,
            and instead of an error if the refresh fails.
        early_refresh: XFetch beta: refresh hot entries shortly before they turn stale.
        jitter: fraction of the ttl taken off at random (0.1: 90-100% of the ttl).

    Example:
        >>> @cached(ttl=60)
        ... def price(sku: str) -> int:
        ...     return len(sku)
        >>> price("abc"), price("abc")
        (3, 3)
    """
    options = _options(lock, lock_lease, lock_wait, grace, early_refresh, jitter)
    return _decorate(fn, _one_tier(tier), ttl, key, namespace, serializer, ignore, typed, options)  # type: ignore[no-any-return]


@overload
def cached_tiered(fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_tiered(
    fn: None = None,
    /,
    *,
    ttl: float | None = None,
    tiers: Sequence[Tier] | None = None,
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    ignore: Iterable[str] = (),
    typed: bool = False,
    lock: bool | None = None,
    lock_lease: float = DEFAULT_LEASE,
    lock_wait: float = DEFAULT_WAIT,
    grace: float | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached_tiered(
    fn: Callable[P, R] | None = None,
    /,
    *,
    ttl: float | None = None,
    tiers: Sequence[Tier] | None = None,
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    ignore: Iterable[str] = (),
    typed: bool = False,
    lock: bool | None = None,
    lock_lease: float = DEFAULT_LEASE,
    lock_wait: float = DEFAULT_WAIT,
    grace: float | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache a function's results in L1 memory, then L2 Redis, then L3 DynamoDB.

    With ``tiers=None`` the chain comes from the environment: memory always,
    Redis when ``STRATACACHE_REDIS_URL`` is set, DynamoDB when
    ``STRATACACHE_TABLE_NAME`` is set. A hit in a slower tier back-fills the
    faster ones with the entry's remaining lifetime. Other arguments as for
    :func:`cached`.

    Example:
        >>> @cached_tiered(ttl=300)
        ... def profile(user_id: int) -> dict[str, int]:
        ...     return {"id": user_id}
        >>> profile(7)
        {'id': 7}
    """
    if tiers is None:
        chain: Callable[[], Sequence[Tier]] = tiers_from_env
    else:
        given = list(tiers)
        chain = lambda: given  # noqa: E731
    options = _options(lock, lock_lease, lock_wait, grace, early_refresh, jitter)
    return _decorate(fn, chain, ttl, key, namespace, serializer, ignore, typed, options)  # type: ignore[no-any-return]
