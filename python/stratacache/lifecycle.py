"""The Lambda lifecycle: SnapStart's snapshot and restore, and warm starts.

Lambda may initialise an execution environment before any request waits for
it: provisioned concurrency does, and SnapStart initialises once, snapshots
the microVM and later resumes copies of that snapshot, many at a time.

- **SnapStart hooks.** When the runtime offers them (the ``snapshot_restore_py``
  module), two hooks are registered, once, when the first cache is built or
  :func:`warm` first runs. *Before the snapshot* the counts gathered so far
  are published (into the init's log, once) and every remote tier closes its
  connections, so no two restored copies share a socket. *After restore* each
  copy counts from zero, cold as ``AWS_LAMBDA_INITIALIZATION_TYPE`` says, the
  ``random`` module is reseeded from ``os.urandom`` (TTL jitter then differs
  from copy to copy), every memory tier is emptied, every cache reads its
  generation on its next call, circuit breakers are closed, and the
  connections :func:`warm` had opened are opened again, explicit chains' too.
- **Warm start.** :func:`warm` imports the remote tiers' client libraries and
  opens their connections now, so the first request pays neither. It runs by
  itself when the first cache is built (at decoration, when the handler module
  is imported) if ``AWS_LAMBDA_INITIALIZATION_TYPE`` is ``provisioned-concurrency``
  or ``snap-start``.

Nothing here raises: a hook that raised would stop the runtime, and a warm-up
is never worth a failed start. Failures are logged, and a tier that does not
answer :func:`warm` is counted (``CacheError``) like any tier failure.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import random
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from stratacache import metrics
from stratacache.config import ENV_REDIS_URL, ENV_TABLE_NAME, env_str, warms_at_init
from stratacache.errors import ConfigurationError
from stratacache.slots import FAILED, Slot
from stratacache.tiers import DynamoDBTier, RedisTier, Tier, shared_tier, shared_tiers

if TYPE_CHECKING:
    from stratacache.tiered import TieredCache

logger = logging.getLogger("stratacache")

RUNTIME_MODULE: Final = "snapshot_restore_py"
"""The module through which the Lambda Python runtime (3.12+) runs SnapStart hooks."""
SEED_BYTES: Final = 32


class _State:
    """What this execution environment knows of its lifecycle."""

    def __init__(self) -> None:
        self.caches: weakref.WeakSet[TieredCache] = weakref.WeakSet()
        """Every cache built and still alive, held weakly."""
        self.hooked: ModuleType | None = None
        """The runtime module the hooks were registered with."""
        self.looked = False
        """Whether the runtime module was looked for (an absent one is looked for once)."""
        self.warmed = False
        """:func:`warm` ran: after a restore it runs again."""
        self.warmed_tiers: weakref.WeakSet[Tier] = weakref.WeakSet()
        """The tiers given to :func:`warm`, held weakly: closed and reopened with the rest."""
        self.auto = False
        """:func:`warm` has run, by itself or when called: the first cache need not run it."""
        self.counts: dict[str, metrics.TierCounts] = {}
        self.lock = threading.RLock()


_state = _State()


def track(cache: TieredCache) -> None:
    """Remember ``cache`` for the hooks; the first cache also installs them and may warm.

    Called by every :class:`~stratacache.tiered.TieredCache` as it is built.
    """
    with _state.lock:
        _state.caches.add(cache)
        auto = not _state.auto and warms_at_init()
        if auto:
            _state.auto = True
    install()
    if auto:
        warm()


def install() -> bool:
    """Register the SnapStart hooks with the runtime, once; ``False`` when it offers none.

    Cheap: it imports only the runtime's small ``snapshot_restore_py`` module, and
    looks for it once when it is absent.

    Example:
        >>> install()  # outside Lambda, with awslambdaric not installed
        False
    """
    with _state.lock:
        runtime = sys.modules.get(RUNTIME_MODULE)
        if runtime is None and not _state.looked:
            _state.looked = True
            try:
                runtime = importlib.import_module(RUNTIME_MODULE)
            except ImportError:
                runtime = None
        if not isinstance(runtime, ModuleType):
            return False
        if runtime is _state.hooked:
            return True
        try:
            runtime.register_before_snapshot(before_snapshot)
            runtime.register_after_restore(after_restore)
        except Exception as exc:  # an unexpected runtime must not stop the start
            logger.warning(
                "stratacache could not register its SnapStart hooks: %s: %s",
                type(exc).__name__,
                exc,
            )
            return False
        _state.hooked = runtime
        return True


def before_snapshot() -> None:
    """Publish the init's counts, then close every remote tier's connections.

    What the init counted (priming the cache, say) is published now, into the
    init's log, so that no restored copy publishes it again as its own. The tiers
    of every live cache, the environment's shared tiers and the tiers given to
    :func:`warm` close their Redis connection pools and boto3 clients, so that no
    restored copy shares a socket; each reconnects on its next use. A client passed
    in ready-made (``RedisTier(client=...)``) is its owner's to close.
    """
    for recorder in _recorders():
        recorder.flush()  # never raises
    for tier in _tiers():
        _quietly(tier, "close before the snapshot", tier.close)


def after_restore() -> None:
    """Make a restored copy its own: own counts, fresh randomness, no L1, warm again.

    Starts the copy's metrics from zero (the init's were published before the
    snapshot), cold as ``AWS_LAMBDA_INITIALIZATION_TYPE`` says, with a new
    interval; reseeds ``random`` (TTL jitter) from ``os.urandom``; empties every
    live cache's memory tiers, whose entries the snapshot carried; has each cache
    read its shared generation on its next call; closes every circuit breaker
    (their clocks were the snapshot's); and, when :func:`warm` ran before the
    snapshot, runs it again, with the tiers it was given.
    """
    for recorder in _recorders():
        recorder.restart()
    random.seed(os.urandom(SEED_BYTES))
    for cache in _caches():
        for tier in cache.tiers:
            if not tier.stores_bytes:
                _quietly(tier, "clear after restore", tier.clear, "")
        if cache.generation.due < math.inf:  # inf: no shared generation to read
            cache.generation.due = -math.inf
    for tier in _tiers():
        if tier.breaker is not None:
            tier.breaker.reset()
    if _state.warmed:
        warm(list(_state.warmed_tiers))


def warm(tiers: Iterable[Tier] = ()) -> dict[str, bool]:
    """Import the remote tiers' clients and open their connections now, not in a request.

    Opens the environment's shared tiers (``STRATACACHE_REDIS_URL``: one ``PING``;
    ``STRATACACHE_TABLE_NAME``: one ``GetItem`` of a key no entry uses) and
    ``tiers`` (an explicit chain's, e.g. ``f.cache.tiers``). Runs by itself when
    the first cache is built in an environment initialised ahead of its requests
    (``AWS_LAMBDA_INITIALIZATION_TYPE`` ``provisioned-concurrency`` or ``snap-start``);
    under SnapStart the ``tiers`` are remembered (weakly), closed before the
    snapshot and opened again after restore with the shared ones. Never raises: a
    tier that does not answer is logged and counted as a ``CacheError``, and is
    ``False`` here.

    Returns:
        Whether each remote tier answered, by tier name.

    Example:
        >>> import stratacache
        >>> stratacache.warm()  # neither variable set: nothing to open
        {}
    """
    given = list(tiers)
    with _state.lock:
        _state.warmed = True
        _state.auto = True  # asked for (or done): the first cache need not do it again
        for tier in given:
            try:
                _state.warmed_tiers.add(tier)
            except TypeError:  # a tier of one's own without weak references or a hash
                logger.warning(
                    "stratacache cannot reopen tier %s after a restore: it cannot be held weakly",
                    getattr(tier, "name", type(tier).__name__),
                )
    install()
    chosen: list[Tier] = []
    for kind, variable in (("redis", ENV_REDIS_URL), ("dynamodb", ENV_TABLE_NAME)):
        if env_str(variable) is None:
            continue
        try:
            chosen.append(shared_tier(kind))
        except ConfigurationError as exc:  # the message names the variable, never its value
            logger.warning("stratacache could not warm the %s tier: %s", kind, exc)
    chosen.extend(given)
    answered: dict[str, bool] = {}
    for tier in _unique(chosen):
        if isinstance(tier, RedisTier | DynamoDBTier):
            ok = _counted(tier, "warm", tier.ping)
            answered[tier.name] = answered.get(tier.name, True) and ok
    return answered


# ---------------------------------------------------------------- helpers


def _caches() -> list[TieredCache]:
    with _state.lock:
        return list(_state.caches)


def _tiers() -> list[Tier]:
    """The environment's shared tiers, every live cache's and ``warm()``'s tiers, each once."""
    with _state.lock:
        warmed = list(_state.warmed_tiers)
    caches = (tier for cache in _caches() for tier in cache.tiers)
    return _unique([*shared_tiers(), *caches, *warmed])


def _recorders() -> list[metrics.MetricsRecorder]:
    """The environment's recorder and every live cache's, each once."""
    found = {id(metrics.recorder): metrics.recorder}
    for cache in _caches():
        found.setdefault(id(cache.recorder), cache.recorder)
    return list(found.values())


def _unique(tiers: Iterable[Tier]) -> list[Tier]:
    seen: set[int] = set()
    out: list[Tier] = []
    for tier in tiers:
        if id(tier) not in seen:
            seen.add(id(tier))
            out.append(tier)
    return out


def _counted(tier: Tier, operation: str, fn: Callable[[], object]) -> bool:
    """Run ``fn`` as the cache runs tier calls: a failure is counted, logged, fed to the breaker."""
    with _state.lock:
        counts = _state.counts.get(tier.name)
        if counts is None:
            counts = _state.counts[tier.name] = metrics.recorder.register(tier.name)
    try:
        return Slot(tier, 0, counts).run(operation, None, fn, skip=False) is not FAILED
    except ConfigurationError as exc:  # a setting read at connect time (a missing region)
        counts.errors += 1
        logger.warning("stratacache tier %s %s failed: %s", tier.name, operation, exc)
        return False


def _quietly(tier: Tier, operation: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run a housekeeping step; a failure is logged and says nothing of the tier's health."""
    try:
        fn(*args)
    except Exception as exc:
        logger.warning(
            "stratacache tier %s could not %s: %s", tier.name, operation, type(exc).__name__
        )
