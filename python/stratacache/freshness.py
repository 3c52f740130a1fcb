"""Freshness policy: TTL jitter, a grace period for stale values, early (XFetch) refresh.

All three are off unless asked for. With a grace period an entry is kept
``ttl + grace`` seconds but counts as stale after ``ttl``: a stale hit is
served while one caller recomputes it, and is served instead of an error
when the origin fails. Early refresh lets one caller recompute a hot entry
shortly before it turns stale, with a probability that grows as that moment
nears and with how long the value took to compute (Vattani et al., "Optimal
Probabilistic Cache Stampede Prevention", the XFetch rule).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import NamedTuple

from stratacache.config import Seconds, check_ttl
from stratacache.errors import ConfigurationError


class Fresh(NamedTuple):
    """What a memory tier holds when freshness is on: the value and its refresh facts."""

    value: object
    stale_at: float | None
    delta: float


class Freshness:
    """When entries turn stale and who refreshes them.

    Args:
        grace: seconds a stale entry is still served after its ttl (``None``: never).
        early_refresh: XFetch's beta (1.0 is the paper's default; larger refreshes
            earlier); ``None`` turns early refresh off.
        jitter: fraction of the ttl taken off at random, so entries written together
            do not expire together (0.1: each lives 90-100% of its ttl).
        rng: random numbers in [0, 1); inject a fixed one in tests.

    Example:
        >>> policy = Freshness(grace=30, jitter=0.1, rng=lambda: 0.5)
        >>> policy.lifetimes(100.0)
        (95.0, 125.0)
    """

    def __init__(
        self,
        grace: Seconds | None = None,
        early_refresh: float | None = None,
        jitter: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.grace = check_ttl(grace, "grace")
        if early_refresh is not None and (
            isinstance(early_refresh, bool)
            or not isinstance(early_refresh, int | float)
            or not 0 < early_refresh < math.inf
        ):
            raise ConfigurationError(
                f"early_refresh must be a positive number (XFetch beta), got {early_refresh!r}"
            )
        if jitter is not None and (
            isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1
        ):
            raise ConfigurationError(f"jitter must be a fraction in [0, 1), got {jitter!r}")
        self.early_refresh = early_refresh
        self.jitter = jitter or 0.0
        self.rng = rng
        # Entries carry refresh facts only when something reads them.
        self.enabled = self.grace is not None or early_refresh is not None

    def lifetimes(self, ttl: float | None) -> tuple[float | None, float | None]:
        """``(soft, hard)``: seconds until the entry is stale, and until it is gone."""
        if ttl is None:
            return None, None
        soft = ttl * (1 - self.jitter * self.rng()) if self.jitter else ttl
        return soft, soft + self.grace if self.grace else soft

    def refresh_due(self, stale_at: float | None, delta: float, now: float) -> bool:
        """Whether this caller should recompute now: stale, or chosen by XFetch."""
        if stale_at is None:
            return False
        if now >= stale_at:
            return True
        if self.early_refresh is None or delta <= 0:
            return False
        # 1 - rng() is in (0, 1], so the log is finite and <= 0.
        return now - delta * self.early_refresh * math.log(1 - self.rng()) >= stale_at
