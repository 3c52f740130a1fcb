"""``@cached`` and ``@cached_tiered``: memoize a function over a :class:`TieredCache`.

A call's key is built once per distinct call and remembered in a small memo,
so a repeated call costs a memo lookup, a type check per argument and an L1
lookup: no digest, no lock. Only arguments of exactly ``str``, ``int``,
``bool``, ``bytes`` or ``None`` are remembered, and a remembered key is used
only for arguments of exactly the same types: ``f(1)``, ``f(1.0)``,
``f(True)`` and ``f("1")`` are four calls here as in the key digest, whatever
was called before. The memo is bounded by what it pins, whatever the arguments'
size: at most 4,096 calls and 256 KiB of arguments and keys per function (each
value counted at least 64 bytes); a call over that is not remembered, and a
memo that would pass it starts over. Everything else (the miss path, freshness, the lease) is
:mod:`stratacache._engine.compute`'s algorithm. The L1 hit path is built once
(:func:`_fast_path`) for ``def`` and ``async def`` functions alike.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Final, Generic, NamedTuple, ParamSpec, Protocol, TypeVar, cast, overload

from stratacache._engine import compute
from stratacache.config import Seconds
from stratacache.keys import KeyMaker
from stratacache.options import CacheOptions
from stratacache.serialization import Serializer
from stratacache.tiered import DEFAULT_LEASE, DEFAULT_WAIT, TieredCache
from stratacache.tiers import MemoryTier, Tier

P = ParamSpec("P")
R = TypeVar("R")

_KWARGS: Final = object()
_MEMO_TYPES: Final = frozenset({str, int, bool, bytes, type(None)})
"""Types whose equal values always have equal keys: only these are remembered."""
_MEMO_MAX: Final = 4096
_MEMO_BYTES: Final = 256 * 1024
"""What the memo may pin per function: arguments' bytes, each value counted at least 64.

A call whose arguments alone exceed it is not remembered (its key is digested again
each time); when an entry would pass it, the memo starts over."""
_VALUE_BYTES: Final = 64


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

    def cache_clear(self) -> None:
        """``functools`` habit: :meth:`invalidate_all` (every entry, every environment)."""
        ...

    def cache_info(self) -> CacheInfo:
        """``functools`` habit: hits, misses, L1's maxsize and current size."""
        ...


class _Keys:
    """A function's call -> stored key, remembered for repeated calls of simple arguments."""

    __slots__ = ("cache", "make", "memo", "pinned")

    def __init__(self, cache: TieredCache, make: KeyMaker) -> None:
        self.cache = cache
        self.make = make
        # args (or args + kwargs) -> (stored key, the type of the one value, or None and
        # the types of all values): a remembered key serves only values of those types
        self.memo: dict[Hashable, tuple[str, type | None, tuple[type, ...] | None]] = {}
        self.pinned = 0  # the bytes the memo's keys hold, as _MEMO_BYTES counts them

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        memo_key: Hashable = (*args, _KWARGS, *kwargs.items()) if kwargs else args
        values = (*args, *kwargs.values()) if kwargs else args
        try:
            full, first, rest = self.memo[memo_key]
            if type(values[0]) is first if rest is None else _same_types(values, rest):
                return full
        except (KeyError, TypeError, IndexError):
            pass
        full = self.cache.full_key(self.make(args, kwargs))
        types = tuple(type(value) for value in values)
        if all(kind in _MEMO_TYPES for kind in types):
            size = len(full) + sum(
                len(value) + _VALUE_BYTES if kind is str or kind is bytes else _VALUE_BYTES
                for value, kind in zip(values, types, strict=True)
            )
            if size > _MEMO_BYTES:
                return full
            if len(self.memo) >= _MEMO_MAX or self.pinned + size > _MEMO_BYTES:
                self.memo.clear()
                self.pinned = 0
            self.pinned += size
            if len(types) == 1 and not kwargs:
                self.memo[memo_key] = (full, types[0], None)
            else:
                self.memo[memo_key] = (full, None, types)
        return full


def bind(fn: Callable[P, Any], cache: TieredCache, make_key: KeyMaker) -> Any:
    """Build the wrapper for ``fn``: the fastest one the cache's tiers allow."""
    engine = cache._engine
    chain = engine.chain
    lease = engine.lease
    keys = _Keys(cache, make_key)
    wrapper: Any
    if inspect.iscoroutinefunction(fn):
        remote = chain.remote
        steps = compute.get_or_compute
        flights = chain.flights

        def pending(full: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return _Pending(full)

        probe = _fast_path(cache, keys, pending)

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            found = probe(*args, **kwargs)
            if type(found) is not _Pending:
                return found
            return await compute.arun(
                steps(chain, lease, found.full), lambda: fn(*args, **kwargs), flights, remote
            )

        async def async_refresh(*args: Any, **kwargs: Any) -> Any:
            return await engine.arefresh(keys(args, kwargs), lambda: fn(*args, **kwargs))

        wrapper = async_wrapper
        wrapper.refresh = async_refresh
    else:
        wrapper = functools.wraps(fn)(_fast_path(cache, keys, _sync_miss(fn, cache)))

        def refresh(*args: Any, **kwargs: Any) -> Any:
            return engine.refresh(keys(args, kwargs), lambda: fn(*args, **kwargs))

        wrapper.refresh = refresh

    def cache_key(*args: Any, **kwargs: Any) -> str:
        return make_key(args, kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        return engine.invalidate(keys(args, kwargs))

    wrapper.cache = cache
    wrapper.cache_key = cache_key
    wrapper.invalidate = invalidate
    wrapper.invalidate_all = cache.invalidate_all
    wrapper.cache_clear = cache.invalidate_all
    wrapper.cache_info = functools.partial(cache_info, cache)
    return wrapper


class CacheInfo(NamedTuple):
    """What ``f.cache_info()`` answers, shaped like ``functools``' own.

    ``hits``: calls answered by some tier; ``misses``: calls no tier answered
    (the slowest tier's misses); ``maxsize`` and ``currsize``: L1's, ``None``
    without a memory tier.
    """

    hits: int
    misses: int
    maxsize: int | None
    currsize: int | None


def cache_info(cache: TieredCache) -> CacheInfo:
    """Hits, misses and L1's size for a decorated function's cache.

    Example:
        >>> @cached(ttl=60)
        ... def double(n: int) -> int:
        ...     return 2 * n
        >>> double(2), double(2), double.cache_info()
        (4, 4, CacheInfo(hits=1, misses=1, maxsize=1024, currsize=1))
    """
    stats = cache.stats()
    tiers = cache.tiers
    memory = tiers[0] if tiers and isinstance(tiers[0], MemoryTier) else None
    return CacheInfo(
        hits=sum(counts["hits"] for counts in stats.values()),
        misses=stats[tiers[-1].name]["misses"] if tiers else 0,
        maxsize=None if memory is None else memory.maxsize,
        currsize=None if memory is None else len(memory),
    )


class _Pending:
    """What the async wrapper's fast path answers when the full path must run."""

    __slots__ = ("full",)

    def __init__(self, full: str) -> None:
        self.full = full


Miss = Callable[[str, tuple[Any, ...], dict[str, Any]], Any]
"""What a fast path calls when L1 does not answer: ``miss(stored key, args, kwargs)``."""


def _sync_miss(fn: Callable[..., Any], cache: TieredCache) -> Miss:
    """The full path of a ``def`` function: the lookup, then (unless a plain hit) the algorithm."""
    engine = cache._engine
    chain = engine.chain
    lease = engine.lease
    flights = chain.flights
    sleep = engine.sleep
    steps = compute.get_or_compute
    run = compute.run
    begin = chain.begin
    read = chain.read
    refresh_due = compute.refresh_due

    def miss(full: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The lookup comes first, here: a plain hit needs none of the algorithm's steps.
        trace = begin()
        record = read(full, trace)
        if record is not None and (record.stale_at is None or not refresh_due(chain, record)):
            return record.value
        return run(
            steps(chain, lease, full, (trace, record)), lambda: fn(*args, **kwargs), flights, sleep
        )

    return miss


def _fast_path(cache: TieredCache, keys: _Keys, miss: Miss) -> Callable[..., Any]:
    """The one L1 hit path, for ``def`` and ``async def`` functions alike.

    The returned function answers a call from L1 when it can (counted, with the
    metrics published on the same schedule as every other read, and the shared
    generation checked when due) and hands everything else to ``miss``: the
    full path itself for a ``def`` function, a :class:`_Pending` the async
    wrapper awaits the full path for.
    """
    chain = cache._engine.chain
    l1 = chain.l1
    if l1 is None:
        return _memo_path(keys, miss)
    memo = keys.memo
    # The memory tier's fast accessors (MemoryTier.entries, .touch, .timer): everything
    # they do not answer goes the full way.
    entries = l1.entries
    touch = l1.touch
    timer = l1.timer
    generation = chain.generation
    check_generation = chain.check_generation
    counts = chain.counts[0]
    recorder = chain.recorder
    same_clock = recorder.clock is timer

    # The memo check below is _Keys.__call__'s, inlined: each call saved is a sixth of
    # an L1 hit's cost.
    def fast(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            full = keys(args, kwargs)
        else:
            try:
                full, first, rest = memo[args]
                if (first is not None and type(args[0]) is not first) or (
                    rest is not None and not _same_types(args, rest)
                ):
                    full = keys(args, kwargs)
            except (KeyError, TypeError):
                full = keys(args, kwargs)
        try:
            value, expires_at = entries[full]
            touch(full)
        except KeyError:
            return miss(full, args, kwargs)  # the read checks the generation in its round trip
        now = timer()
        clock = generation.clock  # its due time is never, without a shared generation
        if expires_at <= now or (
            (now if clock is timer else clock()) >= generation.due and check_generation(None, full)
        ):
            return miss(full, args, kwargs)
        counts.hits += 1
        if (now if same_clock else recorder.clock()) >= recorder.deadline:
            recorder.publish()
        return value

    return fast


def _memo_path(keys: _Keys, miss: Miss) -> Callable[..., Any]:
    """The path without an L1 to read directly: the memo of keys, then ``miss``."""
    memo = keys.memo

    def plain(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            full = keys(args, kwargs)
        else:  # the memo check of _Keys.__call__, inlined as in _fast_path
            try:
                full, first, rest = memo[args]
                if (first is not None and type(args[0]) is not first) or (
                    rest is not None and not _same_types(args, rest)
                ):
                    full = keys(args, kwargs)
            except (KeyError, TypeError):
                full = keys(args, kwargs)
        return miss(full, args, kwargs)  # the read checks the generation

    return plain


def _same_types(values: tuple[Any, ...], types: tuple[type, ...]) -> bool:
    return len(values) == len(types) and all(
        type(value) is kind for value, kind in zip(values, types, strict=True)
    )


def _passthrough(fn: Callable[P, R], make_key: KeyMaker) -> Any:
    """``STRATACACHE_DISABLED``: call ``fn`` every time; the helpers exist but cache nothing."""
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
    wrapper.cache_clear = lambda: None
    wrapper.cache_info = lambda: CacheInfo(0, 0, None, None)
    wrapper.refresh = wrapper
    return wrapper


def _decorate(fn: Callable[P, R] | None, options: CacheOptions) -> Any:
    def decorate(func: Callable[P, R]) -> CachedFunction[P, R]:
        if not callable(func):
            raise TypeError(f"@cached decorates a function, got {type(func).__name__}")
        make_key = KeyMaker(func, key=options.key, ignore=options.ignore)
        if options.disabled:
            options.warn_disabled()
            return cast("CachedFunction[P, R]", _passthrough(func, make_key))
        return cast("CachedFunction[P, R]", bind(func, options.cache_for(func), make_key))

    return decorate if fn is None else decorate(fn)


@overload
def cached(fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached(
    fn: None = None,
    /,
    *,
    ttl: Seconds | None = None,
    tier: str | Tier = "memory",
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    signing_key: bytes | str | None = None,
    ignore: Iterable[str] = (),
    lock: bool | None = None,
    lock_lease: Seconds = DEFAULT_LEASE,
    lock_wait: Seconds = DEFAULT_WAIT,
    grace: Seconds | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached(
    fn: Callable[P, R] | None = None,
    /,
    *,
    ttl: Seconds | None = None,
    tier: str | Tier = "memory",
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    signing_key: bytes | str | None = None,
    ignore: Iterable[str] = (),
    lock: bool | None = None,
    lock_lease: Seconds = DEFAULT_LEASE,
    lock_wait: Seconds = DEFAULT_WAIT,
    grace: Seconds | None = None,
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
        namespace: key namespace (default ``STRATACACHE_NAMESPACE`` or ``stratacache``);
            given explicitly, it also names a closure's cache (its free variables
            are then not part of the key).
        serializer: for byte tiers; default JSON with exact round trips, no pickle.
        signing_key: authenticate every stored entry (default ``STRATACACHE_SIGNING_KEY``).
        ignore: argument names left out of the key (``"self"``, a client, a logger).
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
    options = CacheOptions.build(
        ttl=ttl, tier=tier, key=key, namespace=namespace, serializer=serializer,
        signing_key=signing_key, ignore=ignore, lock=lock, lock_lease=lock_lease,
        lock_wait=lock_wait, grace=grace, early_refresh=early_refresh, jitter=jitter,
    )  # fmt: skip
    return _decorate(fn, options)  # type: ignore[no-any-return]


@overload
def cached_tiered(fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_tiered(
    fn: None = None,
    /,
    *,
    ttl: Seconds | None = None,
    tiers: Sequence[Tier] | None = None,
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    signing_key: bytes | str | None = None,
    ignore: Iterable[str] = (),
    lock: bool | None = None,
    lock_lease: Seconds = DEFAULT_LEASE,
    lock_wait: Seconds = DEFAULT_WAIT,
    grace: Seconds | None = None,
    early_refresh: float | None = None,
    jitter: float | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached_tiered(
    fn: Callable[P, R] | None = None,
    /,
    *,
    ttl: Seconds | None = None,
    tiers: Sequence[Tier] | None = None,
    key: Callable[..., object] | None = None,
    namespace: str | None = None,
    serializer: Serializer | None = None,
    signing_key: bytes | str | None = None,
    ignore: Iterable[str] = (),
    lock: bool | None = None,
    lock_lease: Seconds = DEFAULT_LEASE,
    lock_wait: Seconds = DEFAULT_WAIT,
    grace: Seconds | None = None,
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
    options = CacheOptions.build(
        ttl=ttl, tiers=tiers, key=key, namespace=namespace, serializer=serializer,
        signing_key=signing_key, ignore=ignore, lock=lock, lock_lease=lock_lease,
        lock_wait=lock_wait, grace=grace, early_refresh=early_refresh, jitter=jitter,
    )  # fmt: skip
    return _decorate(fn, options)  # type: ignore[no-any-return]
