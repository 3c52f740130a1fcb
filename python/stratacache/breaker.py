"""A circuit breaker per remote tier, so a sick server costs a few timeouts, not one per call.

States: *closed* (calls go through), *open* (calls are skipped with no
network wait), *half-open* (one probe call decides). After ``threshold``
consecutive failures the breaker opens for ``cooldown`` seconds; then the next
call is let through as the probe: success closes the breaker, failure opens it
for another ``cooldown``.

While closed, a write to a tier whose latest call failed is skipped until a
call succeeds or ``cooldown`` passes: a cached call that has just waited for
a timed-out read would otherwise wait a second time for its write, doubling
the latency a hung server adds.

The breaker belongs to the tier object, so every cache sharing a tier (all
``@cached_tiered`` functions share the environment's Redis tier) shares its
breaker and learns of an outage once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from stratacache import metrics
from stratacache.config import resolve_breaker_cooldown, resolve_breaker_threshold
from stratacache.errors import ConfigurationError

logger = logging.getLogger("stratacache")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half-open"


class CircuitBreaker:
    """Closed / open / half-open state of one tier, on an injectable monotonic clock.

    Args:
        threshold: consecutive failures that open the breaker
            (default ``STRATACACHE_BREAKER_THRESHOLD`` or 5).
        cooldown: seconds the breaker stays open before one probe call
            (default ``STRATACACHE_BREAKER_COOLDOWN`` or 5).
        clock: monotonic seconds; inject a fake one in tests.
        name: the tier's name, for the log lines.

    Example:
        >>> breaker = CircuitBreaker(threshold=2, cooldown=10)
        >>> breaker.failure(); breaker.failure()
        >>> breaker.state, breaker.allow()
        ('open', False)
    """

    def __init__(
        self,
        threshold: int | None = None,
        cooldown: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.threshold = resolve_breaker_threshold(threshold)
        self.cooldown = resolve_breaker_cooldown(cooldown)
        self.clock = clock
        self.name = name
        self.state: str = CLOSED
        self.failures = 0
        """Consecutive failures since the last success."""
        self.quiet = True
        """Closed with no failure since the last success: the hot path's one attribute read
        (nothing to check before a call, nothing to record after one)."""
        self.skipped = 0
        """Calls skipped because the breaker was open or the tier had just failed."""
        self.opened = 0
        """How many times the breaker has opened."""
        self._since = 0.0  # when the latest failure happened, or the probe was let through
        self._lock = threading.Lock()
        metrics.recorder.watch(self)  # openings are published as CacheBreakerOpened

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state!r}, threshold={self.threshold}, "
            f"cooldown={self.cooldown})"
        )

    def allow(self, write: bool = False) -> bool:
        """Whether a call may go to the tier now; ``False`` means skip it without waiting."""
        if self.state is CLOSED and (not write or not self.failures):
            return True  # the hot path: no lock, no clock
        with self._lock:
            now = self.clock()
            if self.state is CLOSED:
                if now - self._since < self.cooldown:
                    self.skipped += 1
                    return False
                return True
            if now - self._since >= self.cooldown:
                # Open long enough (or a probe never reported back): this caller probes.
                self.state = HALF_OPEN
                self._since = now
                return True
            self.skipped += 1
            return False

    def success(self) -> None:
        """Record a call that worked: the breaker closes and the failure streak ends."""
        if self.state is CLOSED:
            if self.failures:
                self.failures = 0
            self.quiet = True
            return
        with self._lock:
            was = self.state
            self.state = CLOSED
            self.failures = 0
            self.quiet = True
        if was is not CLOSED:
            logger.warning("stratacache tier %s is answering again; circuit closed", self.name)

    def failure(self) -> None:
        """Record a failed call; open the breaker at ``threshold`` in a row or on a failed probe."""
        with self._lock:
            self.failures += 1
            self.quiet = False
            self._since = self.clock()
            if self.state is OPEN:
                return
            if self.state is HALF_OPEN or self.failures >= self.threshold:
                self.state = OPEN
                self.opened += 1
                opened = True
            else:
                opened = False
        if opened:
            logger.warning(
                "stratacache tier %s failed %d times in a row; circuit open, skipping it for %ss",
                self.name,
                self.failures,
                self.cooldown,
            )

    def reset(self) -> None:
        """Close the breaker and forget past failures."""
        with self._lock:
            self.state = CLOSED
            self.failures = 0
            self.quiet = True


def make_breaker(breaker: CircuitBreaker | bool, name: str) -> CircuitBreaker | None:
    """A tier's breaker from its ``breaker=`` argument: ``True`` (a new one), ``False`` or one."""
    if breaker is True:
        return CircuitBreaker(name=name)
    if breaker is False:
        return None
    if not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(
            f"breaker must be True, False or a CircuitBreaker, got {type(breaker).__name__}"
        )
    if not breaker.name:
        breaker.name = name
    return breaker
