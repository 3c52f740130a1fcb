"""The health probe: write, read back, verify and delete a key in every tier."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from stratacache._engine.guard import redact
from stratacache.envelope import new_version
from stratacache.tiers.base import MISS

if TYPE_CHECKING:
    from stratacache._engine.chain import Chain


def health_check(chain: Chain, probe_ttl: float = 60.0) -> dict[str, dict[str, Any]]:
    """Probe every tier of ``chain`` and report each one.

    Probes are sent even to a tier whose breaker is open, are not counted in
    the metrics, and feed the tier's breaker (a tier that answers closes it).

    Returns:
        ``{tier name: {"status": "ok" | "error", "latency_ms": float,
        "error": str | None, "breaker": "closed" | "open" | "half-open" | None}}``

    Example:
        >>> from stratacache import MemoryTier, TieredCache
        >>> health_check(TieredCache([MemoryTier()])._engine.chain)["L1"]["status"]
        'ok'
    """
    probe_key = chain.layout.key(f"__health__:{uuid.uuid4().hex}")
    token = uuid.uuid4().hex
    codec = chain.codec
    report: dict[str, dict[str, Any]] = {}
    for guard in chain.guards:
        tier = guard.tier
        error: str | None = None
        started = time.perf_counter()
        try:
            if guard.remote:
                stored: object = codec.wrap(
                    probe_key,
                    codec.payload(token),
                    version=new_version(),
                    generation=0,
                    expires_at=chain.clock() + probe_ttl,
                    keep_until=None,
                )
            else:
                stored = token
            tier.set(probe_key, stored, probe_ttl)
            raw = tier.get(probe_key)
            if raw is MISS:
                error = "the probe key written was not found"
            elif (codec.decode(probe_key, raw).value if guard.remote else raw) != token:
                error = "the probe key read back another value"
            tier.delete(probe_key)
        except Exception as exc:
            error = f"{type(exc).__name__}: {redact(exc)}"
        latency_ms = (time.perf_counter() - started) * 1000
        breaker = guard.breaker
        if breaker is not None:
            if error is None:
                breaker.success()
            else:
                breaker.failure()
        report[tier.name] = {
            "status": "ok" if error is None else "error",
            "latency_ms": round(latency_ms, 3),
            "error": error,
            "breaker": None if breaker is None else breaker.state,
        }
    return report
