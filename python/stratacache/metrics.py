"""Hit, miss and error counts, published through Powertools Metrics (CloudWatch EMF).

Lookups only bump integers in memory. Counts are published as one EMF line
per tier (dimension ``tier``) when a handler wrapped in
:func:`log_cache_metrics` returns, or, without it, on the first lookup after
``STRATACACHE_METRICS_INTERVAL`` seconds (60 by default), so a warm
environment's counts still reach CloudWatch. Each publication sends only what
is new since the previous one, so nothing is counted twice.

Each line is one EMF document, written whole with one write: publications
never interleave, whichever threads publish at once. While a handler wrapped
in :func:`log_cache_metrics` runs, the interval does not publish; its return
does, once. A publication that cannot import Powertools keeps its counts for
the next one (as sums per tier: memory stays bounded) and warns once.
Under SnapStart, the lifecycle hooks publish what the init counted before the
snapshot (:meth:`MetricsRecorder.flush`) and start every restored copy from
zero (:meth:`MetricsRecorder.restart`).

Every line carries the property ``contextReused`` (``false`` on the first
publication of an environment that started cold, as Powertools decides cold
starts; only a publication that printed ends the cold start), optionally a
second dimension set with ``function_name``
(``STRATACACHE_METRICS_FUNCTION_NAME=1``), ``CacheBreakerOpened`` when a tier's
circuit breaker opened, and a ``tier=origin`` line with ``CacheOriginCall``
once the cache counts calls of the origin. Nothing is
printed when ``STRATACACHE_METRICS_DISABLED`` or Powertools' own switches
turn metrics off.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Protocol, TypeVar, cast, overload

from stratacache.config import (
    DEFAULT_METRICS_NAMESPACE,
    ENV_POWERTOOLS_NAMESPACE,
    env_str,
    initialized_ahead,
    resolve_metrics_disabled,
    resolve_metrics_function_name,
    resolve_metrics_interval,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import EphemeralMetrics

logger = logging.getLogger(__name__)

HIT: Final = "CacheHit"
MISS: Final = "CacheMiss"
ERROR: Final = "CacheError"
BREAKER_OPENED: Final = "CacheBreakerOpened"
ORIGIN_CALL: Final = "CacheOriginCall"
ORIGIN: Final = "origin"
"""The ``tier`` of the line that counts calls of the origin (the cached function itself)."""
CONTEXT_REUSED: Final = "contextReused"
FUNCTION_NAME: Final = "function_name"

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


class Breaker(Protocol):
    """What the recorder reads from a circuit breaker: its tier's name and its openings."""

    name: str
    opened: int


MISSING_POWERTOOLS: Final = (
    "stratacache: attach the Powertools layer or install aws-lambda-powertools; "
    "cache metrics are off until then (counts are kept)"
)
"""The warning logged, once per environment, when Powertools cannot be imported."""


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
        """When the next lookup publishes; never while a decorated handler runs."""
        self.cold = not initialized_ahead()
        """Nothing printed yet in an environment whose first caller waited for its start."""
        self.metrics: Metrics | EphemeralMetrics | None = None
        """A user's Powertools metrics, whose namespace, service and default dimensions to use."""
        self.origin_calls = 0
        self._origin_sent = 0
        self._counters: list[TierCounts] = []
        self._breakers: weakref.WeakKeyDictionary[Breaker, int] = weakref.WeakKeyDictionary()
        self._held: dict[str, dict[str, int]] = {}
        """Counts taken but not printed (no Powertools yet): sums per tier, so bounded."""
        self._handlers = 0
        """Handlers wrapped in :func:`log_cache_metrics` running now."""
        self._lock = threading.Lock()  # the counts; never held while printing
        self._publishing = threading.Lock()  # one publication at a time, its lines in order
        self._warned_disabled = False
        self._warned_missing = False

    def register(self, tier_name: str) -> TierCounts:
        """New counters for one tier of one cache; their counts are published under its name."""
        counts = TierCounts(tier_name)
        with self._lock:
            self._counters.append(counts)
        return counts

    def watch(self, breaker: Breaker) -> None:
        """Publish ``breaker``'s openings as ``CacheBreakerOpened`` of its tier (held weakly)."""
        with self._lock:
            self._breakers.setdefault(breaker, 0)

    def origin_call(self) -> None:
        """Count one call of the origin: the cached function ran because no tier had the value."""
        with self._lock:
            self.origin_calls += 1

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
        out = {name: dict(zip((HIT, MISS, ERROR), t, strict=True)) for name, t in totals.items()}
        for breaker, sent in list(self._breakers.items()):
            opened = breaker.opened
            if opened != sent and breaker.name:
                line = out.setdefault(breaker.name, {})
                line[BREAKER_OPENED] = line.get(BREAKER_OPENED, 0) + opened - sent
                if consume:
                    self._breakers[breaker] = opened
        if self.origin_calls != self._origin_sent:
            out[ORIGIN] = {ORIGIN_CALL: self.origin_calls - self._origin_sent}
            if consume:
                self._origin_sent = self.origin_calls
        _add(out, self._held)
        if consume:
            self._held = {}
        return out

    def pending(self) -> dict[str, dict[str, int]]:
        """Counts not yet published, per tier name."""
        with self._lock:
            return self._deltas(consume=False)

    def maybe_publish(self, now: float) -> None:
        """Publish when the interval has passed; cheap to call on every lookup."""
        if now >= self.deadline:
            self.publish()

    def publish(self, namespace: str | None = None) -> int:
        """The interval's publication: :meth:`flush`, unless a decorated handler runs.

        The caches call it on the first lookup after the interval. While a handler
        wrapped in :func:`log_cache_metrics` runs, it prints nothing: the handler's
        return publishes. A lookup never waits for another thread's publication
        (nor re-enters its own, from a log handler): the next one takes its counts.
        """
        if self._handlers or not self._publishing.acquire(blocking=False):
            return 0
        try:
            return self._publish(namespace)
        finally:
            self._publishing.release()

    def flush(self, namespace: str | None = None) -> int:
        """Print one EMF line per tier name with new counts; return how many. Never raises.

        Lines are written whole, one write each, and one publication at a time.
        Only a publication that printed ends the cold start.
        """
        with self._publishing:
            return self._publish(namespace)

    def _publish(self, namespace: str | None) -> int:
        """:meth:`flush`'s work, with the publication lock held."""
        with self._lock:
            taken = self._deltas(consume=True)
            self.deadline = math.inf if self._handlers else self.clock() + self.interval
            context_reused = not self.cold
        if not taken:
            return 0
        try:
            disabled, by = resolve_metrics_disabled()
            if disabled:
                self._warn_disabled(by)
                return 0
            try:
                lines = _render(taken, namespace, context_reused, self.metrics)
            except ImportError:
                self._hold(taken)
                return 0
            _write(lines)
        except Exception:
            logger.warning("stratacache could not publish cache metrics", exc_info=True)
            return 0
        self.cold = False
        return len(lines)

    def _warn_disabled(self, by: str | None) -> None:
        if by is not None and by.startswith("STRATACACHE") and not self._warned_disabled:
            self._warned_disabled = True
            logger.warning("stratacache cache metrics are off (%s)", by)

    def _hold(self, taken: dict[str, dict[str, int]]) -> None:
        """Keep counts Powertools was not there to print; warn once per environment."""
        with self._lock:
            _add(self._held, taken)
        if not self._warned_missing:
            self._warned_missing = True
            logger.warning(MISSING_POWERTOOLS)

    def handler_started(self) -> None:
        """A decorated handler runs: the interval waits for its return (see :meth:`publish`)."""
        with self._lock:
            self._handlers += 1
            self.deadline = math.inf

    def handler_returned(self, namespace: str | None = None) -> int:
        """A decorated handler returned (or raised): publish its counts now."""
        with self._lock:
            self._handlers -= 1
        return self.flush(namespace)

    def restart(self) -> None:
        """Start a restored copy from zero: new counts only, cold as its start, a new interval.

        The counts of the init (published before the snapshot) are every copy's
        past, never a copy's own; the cold start is read again from
        ``AWS_LAMBDA_INITIALIZATION_TYPE``, as Powertools reads it.
        """
        with self._publishing, self._lock:
            for counts in self._counters:
                counts.sent = (counts.hits, counts.misses, counts.errors)
            for breaker in list(self._breakers):
                self._breakers[breaker] = breaker.opened
            self._origin_sent = self.origin_calls
            self._held = {}
            self.cold = not initialized_ahead()
            self.deadline = math.inf if self._handlers else self.clock() + self.interval


def _add(into: dict[str, dict[str, int]], counts: dict[str, dict[str, int]]) -> None:
    for tier_name, values in counts.items():
        line = into.setdefault(tier_name, {})
        for metric, count in values.items():
            line[metric] = line.get(metric, 0) + count


def _write(lines: list[str]) -> None:
    """One write per line: a line never shares a write with another document."""
    stream = sys.stdout  # read now: the runtime (and tests) may replace it
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def _render(
    taken: dict[str, dict[str, int]],
    namespace: str | None,
    context_reused: bool,
    user: Metrics | EphemeralMetrics | None,
) -> list[str]:
    """The EMF documents of ``taken``, one JSON line per tier, as Powertools serializes them."""
    # Imported here: Powertools pulls in botocore, which import stratacache must not.
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    resolved = (
        namespace
        or (user.namespace if user is not None else None)
        or env_str(ENV_POWERTOOLS_NAMESPACE)
        or DEFAULT_METRICS_NAMESPACE
    )
    service = user.service if user is not None else None
    defaults: dict[str, Any] = dict(user.default_dimensions) if user is not None else {}
    explicit_function = getattr(getattr(user, "provider", user), "function_name", None)
    function_name = resolve_metrics_function_name(explicit_function)
    lines: list[str] = []
    for tier_name, values in taken.items():
        metrics = EphemeralMetrics(namespace=resolved, service=service)
        for name, value in defaults.items():
            metrics.add_dimension(name=name, value=str(value))
        metrics.add_dimension(name="tier", value=tier_name)
        if function_name:
            # A second dimension set: the per-function metrics come in addition to the
            # aggregate ones, so dashboards and alarms on service and tier keep working.
            extra = {name: str(value) for name, value in defaults.items()}
            if metrics.service:
                extra["service"] = str(metrics.service)
            metrics.add_dimensions(**extra, tier=tier_name, **{FUNCTION_NAME: function_name})
        for metric, count in values.items():
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=count)
        metrics.add_metadata(key=CONTEXT_REUSED, value=context_reused)
        # Serialized as Powertools' flush_metrics does, but printed by _write: print()
        # writes the document and its newline apart, and threads glue lines together.
        lines.append(json.dumps(metrics.serialize_metric_set(), separators=(",", ":")))
    return lines


recorder: Final = MetricsRecorder()
"""The execution environment's recorder, shared by every cache."""


def publish_metrics(namespace: str | None = None) -> int:
    """Publish the counts gathered so far now; return the number of EMF lines printed.

    Example (at the end of an invocation not wrapped in ``@log_cache_metrics``)::

        printed = publish_metrics()  # the number of EMF lines, e.g. 2
    """
    return recorder.flush(namespace)


def set_metrics(metrics: Metrics | EphemeralMetrics | None) -> None:
    """Publish cache counts with a Powertools ``Metrics``' namespace, service and dimensions.

    The counts still go out as their own EMF lines (their ``tier`` dimension
    would not fit the application's metric set); ``None`` goes back to the
    environment's settings.

    Example:
        >>> from aws_lambda_powertools import Metrics
        >>> metrics = Metrics(namespace="Shop", service="checkout")
        >>> metrics.set_default_dimensions(stage="prod")
        >>> set_metrics(metrics)  # cache lines: namespace Shop, service, stage and tier
    """
    recorder.metrics = metrics


@overload
def log_cache_metrics(handler: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def log_cache_metrics(
    handler: None = None,
    /,
    *,
    namespace: str | None = None,
    metrics: Metrics | EphemeralMetrics | None = None,
    logger: Logger | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_cache_metrics(
    handler: Callable[P, R] | None = None,
    /,
    *,
    namespace: str | None = None,
    metrics: Metrics | EphemeralMetrics | None = None,
    logger: Logger | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Handler decorator: publish the invocation's cache counts when the handler returns.

    While the handler runs, the interval (``STRATACACHE_METRICS_INTERVAL``) does
    not publish: the cache's lines go out once per invocation, off the lookups'
    critical path.

    Composes with Powertools' ``@metrics.log_metrics`` in either order: the
    cache counts go out as their own EMF lines (dimension ``tier``) and never
    touch the application's metric set.

    Args:
        namespace: the CloudWatch namespace of the cache counts (beats ``metrics``').
        metrics: a Powertools ``Metrics`` whose namespace, service and default
            dimensions the cache lines take (see :func:`set_metrics`).
        logger: a Powertools ``Logger`` that writes stratacache's log lines
            (see :func:`stratacache.logs.set_logger`).

    Example:
        >>> from aws_lambda_powertools import Logger, Metrics
        >>> metrics, logger = Metrics(), Logger()
        >>> @metrics.log_metrics
        ... @log_cache_metrics(metrics=metrics, logger=logger)
        ... def handler(event, context):
        ...     return {"statusCode": 200}
    """
    # Bad metric settings fail at decoration, naming the variable, not at the first publication.
    resolve_metrics_disabled()
    resolve_metrics_function_name()
    if metrics is not None:
        set_metrics(metrics)
    if logger is not None:
        from stratacache.logs import set_logger

        set_logger(logger)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            # An async handler's work happens when its coroutine is awaited, not when it is made.
            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                current = recorder
                current.handler_started()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    current.handler_returned(namespace)

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            current = recorder  # the one whose handler count this call raised
            current.handler_started()
            try:
                return fn(*args, **kwargs)
            finally:
                current.handler_returned(namespace)

        return wrapper

    if handler is not None:
        return decorate(handler)
    return decorate
