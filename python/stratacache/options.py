"""The decorators' options: checked once, at decoration, and turned into a cache per function.

``@cached``, ``@cached_tiered`` and ``@cached_many`` all build a
:class:`CacheOptions`, so every setting is validated in one place (a mistake
raises :class:`~stratacache.errors.ConfigurationError` naming it, at import
time) and ``STRATACACHE_DISABLED`` is honoured by all of them alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from stratacache import config
from stratacache.config import Seconds
from stratacache.errors import ConfigurationError
from stratacache.freshness import Freshness
from stratacache.keys import function_id
from stratacache.serialization import Serializer
from stratacache.tiered import DEFAULT_LEASE, DEFAULT_WAIT, TieredCache
from stratacache.tiers import TIER_NAMES, MemoryTier, Tier, shared_tier, tiers_from_env

logger = logging.getLogger("stratacache")

_warned_disabled = False


class CacheOptions:
    """Everything a decorator was asked for, validated.

    Example:
        >>> options = CacheOptions.build(ttl=60, tier="memory")
        >>> options.ttl, options.disabled
        (60.0, False)
    """

    # A plain class, not a dataclass: a dataclass is generated and compiled at import,
    # about 0.9 ms of every cold start for this one (issue 18).
    __slots__ = (
        "chain",
        "disabled",
        "explicit_namespace",
        "freshness",
        "ignore",
        "key",
        "lock",
        "lock_lease",
        "lock_wait",
        "namespace",
        "serializer",
        "signing_key",
        "ttl",
    )

    def __init__(
        self,
        *,
        chain: Callable[[], Sequence[Tier]],
        ttl: float | None,
        namespace: str,
        explicit_namespace: bool,
        serializer: Serializer | None,
        signing_key: bytes | str | None,
        key: Callable[..., object] | None,
        ignore: tuple[str, ...],
        lock: bool | None,
        lock_lease: Seconds,
        lock_wait: Seconds,
        freshness: Freshness,
        disabled: bool,
    ) -> None:
        self.chain = chain
        self.ttl = ttl
        self.namespace = namespace
        self.explicit_namespace = explicit_namespace
        self.serializer = serializer
        self.signing_key = signing_key
        self.key = key
        self.ignore = ignore
        self.lock = lock
        self.lock_lease = lock_lease
        self.lock_wait = lock_wait
        self.freshness = freshness
        self.disabled = disabled

    @classmethod
    def build(
        cls,
        *,
        ttl: Seconds | None = None,
        tier: str | Tier | None = None,
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
    ) -> CacheOptions:
        """Check every option and resolve it against the environment."""
        if key is not None and not callable(key):
            raise ConfigurationError(f"key must be a callable, got {type(key).__name__}")
        if lock is None and config.env_str(config.ENV_LOCK) is not None:
            lock = config.env_flag(config.ENV_LOCK)
        return cls(
            chain=_chain(tier, tiers),
            ttl=config.resolve_ttl(ttl),
            namespace=config.resolve_namespace(namespace),
            explicit_namespace=namespace is not None,
            serializer=serializer,
            signing_key=signing_key,
            key=key,
            ignore=(ignore,) if isinstance(ignore, str) else tuple(ignore),
            lock=lock,
            lock_lease=lock_lease,
            lock_wait=lock_wait,
            freshness=Freshness(grace=grace, early_refresh=early_refresh, jitter=jitter),
            disabled=config.env_flag(config.ENV_DISABLED),
        )

    def cache_for(self, fn: Callable[..., Any]) -> TieredCache:
        """The cache of one decorated function: its namespace is (namespace, identity)."""
        identity = function_id(fn, closure=not self.explicit_namespace)
        return TieredCache(
            self.chain(),
            ttl=self.ttl,
            namespace=(self.namespace, identity),
            serializer=self.serializer,
            signing_key=self.signing_key,
            freshness=self.freshness,
            lock=self.lock,
            lock_lease=self.lock_lease,
            lock_wait=self.lock_wait,
        )

    def warn_disabled(self) -> None:
        """One warning per environment that ``STRATACACHE_DISABLED`` turned caching off."""
        global _warned_disabled  # noqa: PLW0603 - one warning per environment, not per function
        if not _warned_disabled:
            _warned_disabled = True
            logger.warning("%s is set: every cached function runs uncached", config.ENV_DISABLED)


def _chain(tier: str | Tier | None, tiers: Sequence[Tier] | None) -> Callable[[], Sequence[Tier]]:
    """The tiers a new function's cache gets: a fresh L1 each, the shared tiers shared."""
    if tiers is not None:
        given = list(tiers)
        return lambda: given
    if tier is None:
        return tiers_from_env
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
