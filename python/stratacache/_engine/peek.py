"""Looking at entries without reading them: ``has``, ``ttl`` and ``expire``.

Unlike :meth:`Chain.read <stratacache._engine.chain.Chain.read>`, a peek is
neither counted nor promoted; like it, it checks the shared generation first
when that check is due.
"""

from __future__ import annotations

from collections.abc import Iterator

from stratacache._engine.chain import Chain, expiry_at, remaining_lifetime
from stratacache._engine.guard import FAILED, Guard
from stratacache.envelope import VALUE, Record
from stratacache.errors import SerializationError
from stratacache.freshness import Fresh
from stratacache.tiers.base import MISS, Foreign


def peek(chain: Chain, full_key: str) -> Iterator[tuple[Guard, Record, object]]:
    """(guard, record, raw) of every tier holding a live entry, uncounted, unpromoted."""
    chain.generation_moved()
    now = chain.clock()
    for guard in chain.guards:
        if not guard.allowed(None):
            continue
        raw = guard.get(full_key)
        if raw is FAILED or raw is MISS or isinstance(raw, Foreign):
            continue
        if not guard.remote:
            left = guard.tier.remaining_ttl(full_key)
            if left is MISS:
                continue
            value = raw.value if type(raw) is Fresh else raw
            yield guard, Record(VALUE, value, b"", 0, expiry_at(now, left), None), raw
            continue
        try:
            record = chain.codec.decode(full_key, raw)
        except SerializationError:
            continue
        live = record.expires_at is None or record.expires_at > now
        if record.kind is VALUE and live and record.generation >= chain.generation.value:
            yield guard, record, raw


def expire(chain: Chain, full_key: str, ttl: float | None) -> bool:
    """A new lifetime for ``full_key`` in every tier holding it (capped by a tier's own)."""
    now = chain.clock()
    touched = False
    for guard, record, raw in list(peek(chain, full_key)):
        lifetime = remaining_lifetime(None if ttl is None else now + ttl, now, guard.tier.ttl)
        assert lifetime is not MISS
        if not guard.allowed(None, write=True):
            continue
        if guard.remote:
            assert isinstance(raw, bytes)
            blob = chain.codec.rewrap(full_key, record, raw, expiry_at(now, lifetime))
            done = guard.put(full_key, blob, lifetime, record.version, None)
        else:
            done = guard.set(full_key, raw, lifetime)
        touched = touched or done is not FAILED
    return touched
