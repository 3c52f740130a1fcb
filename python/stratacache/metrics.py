"""Hit, miss and error counts, published through Powertools Metrics (CloudWatch EMF).

Lookups only bump integers in memory. Counts are published as one EMF line
per tier (dimension ``tier``) when a handler wrapped in
:func:`log_cache_metrics` returns, or, without it, on the first lookup after
``STRATACACHE_METRICS_INTERVAL`` seconds (60 by default), so a warm
environment's counts still reach CloudWatch. Each publication sends only what
is new since the previous one, so nothing is counted twice.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar, overload

from stratacache.config import (
    DEFAULT_METRICS_NAMESPACE,
    ENV_POWERTOOLS_NAMESPACE,
    env_str,
    resolve_metrics_interval,
)

logger = logging.getLogger(__name__)

HIT: Final = "CacheHit"
MISS: Final = "CacheMiss"
ERROR: Final = "CacheError"

P = ParamSpec("P")
R = TypeVar("R")


class TierCounts:
    """Cumulative counters of one tier of one cache; the hot path bumps these attributes."""

    __slots__ = ("errors", "hits", "misses", "name", "sent")

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.sent = (0, 0, 0)

    def snapshot(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors}


class MetricsRecorder:
    """Collects every cache's counters and publishes what is new since the last time.

    Example:
        >>> recorder = MetricsRecorder(interval=60)
        >>> recorder.register("L1").hits += 1
        >>> recorder.pending()
        {'L1': {'CacheHit': 1, 'CacheMiss': 0, 'CacheError': 0}}
    """

    def __init__(
        self,
        interval: float | None = None,
        namespace: str | None = None,
        clock: Callable[[], float] = time.time,  # the L1 fast path's clock: one read serves both
    ) -> None:
        self.interval = resolve_metrics_interval() if interval is None else interval
        self.namespace = namespace
        self.clock = clock
        self.deadline = clock() + self.interval
        self._counters: list[TierCounts] = []
        self._lock = threading.Lock()

    def register(self, tier_name: str) -> TierCounts:
        """New counters for one tier of one cache; their counts are published under its name."""
        counts = TierCounts(tier_name)
        with self._lock:
            self._counters.append(counts)
        return counts

    def _deltas(self, consume: bool) -> dict[str, dict[str, int]]:
        totals: dict[str, list[int]] = {}
        for counts in self._counters:
            now = (counts.hits, counts.misses, counts.errors)
            if now == counts.sent:
                continue
            total = totals.setdefault(counts.name, [0, 0, 0])
            for i in range(3):
                total[i] += now[i] - counts.sent[i]
            if consume:
                counts.sent = now
        return {name: dict(zip((HIT, MISS, ERROR), t, strict=True)) for name, t in totals.items()}

    def pending(self) -> dict[str, dict[str, int]]:
        """Counts not yet published, per tier name."""
        with self._lock:
            return self._deltas(consume=False)

    def maybe_publish(self, now: float) -> None:
        """Publish when the interval has passed; cheap to call on every lookup."""
        if now >= self.deadline:
            self.publish()

    def publish(self, namespace: str | None = None) -> int:
        """Print one EMF line per tier name with new counts; return how many. Never raises."""
        with self._lock:
            taken = self._deltas(consume=True)
            self.deadline = self.clock() + self.interval
        if not taken:
            return 0
        try:
            return _emit(taken, namespace or self.namespace)
        except Exception:
            logger.warning("stratacache could not publish cache metrics", exc_info=True)
            return 0


def _emit(taken: dict[str, dict[str, int]], namespace: str | None) -> int:
    # Imported here: Powertools pulls in botocore, which import stratacache must not.
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    resolved = namespace or env_str(ENV_POWERTOOLS_NAMESPACE) or DEFAULT_METRICS_NAMESPACE
    for tier_name, values in taken.items():
        metrics = EphemeralMetrics(namespace=resolved)
        metrics.add_dimension(name="tier", value=tier_name)
        for metric, value in values.items():
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
    return len(taken)


recorder: Final = MetricsRecorder()
"""The execution environment's recorder, shared by every cache."""


def publish_metrics(namespace: str | None = None) -> int:
    """Publish the counts gathered so far now; return the number of EMF lines printed.

    Example:
        >>> publish_metrics()  # doctest: +SKIP
        2
    """
    return recorder.publish(namespace)


@overload
def log_cache_metrics(handler: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def log_cache_metrics(
    handler: None = None, /, *, namespace: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_cache_metrics(
    handler: Callable[P, R] | None = None, /, *, namespace: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Handler decorator: publish the invocation's cache counts when the handler returns.

    Composes with Powertools' ``@metrics.log_metrics`` in either order: the
    cache counts go out as their own EMF lines (dimension ``tier``) and never
    touch the application's metric set.

    Example:
        >>> from aws_lambda_powertools import Metrics
        >>> metrics = Metrics()
        >>> @metrics.log_metrics
        ... @log_cache_metrics
        ... def handler(event, context):
        ...     return {"statusCode": 200}
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            finally:
                recorder.publish(namespace)

        return wrapper

    if handler is not None:
        return decorate(handler)
    return decorate
