"""L2: Redis, ElastiCache or Valkey, shared by every execution environment.

``redis`` is imported when the first client is built, never by ``import stratacache``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stratacache.config import ENV_KEY_PREFIX, ENV_REDIS_URL, check_ttl, env_str
from stratacache.errors import ConfigurationError
from stratacache.tiers.base import MISS, Missing

if TYPE_CHECKING:
    import redis

DEFAULT_SOCKET_TIMEOUT = 0.25
DEFAULT_CONNECT_TIMEOUT = 0.25
_DELETE_BATCH = 500


def _millis(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class RedisTier:
    """A Redis-compatible tier that stores envelopes under ``key_prefix + key``.

    Args:
        url: ``redis://`` or ``rediss://`` URL (default ``STRATACACHE_REDIS_URL``).
        client: a ready ``redis.Redis``; reused as it is, ``url`` is then ignored.
        ttl: this tier's own lifetime in seconds; wins over the cache's TTL.
        key_prefix: put before every key (default ``STRATACACHE_KEY_PREFIX`` or none).
        socket_timeout, connect_timeout: seconds; kept short so a sick server
            cannot eat a Lambda invocation's time.
        name: the metric dimension value.

    Example:
        >>> tier = RedisTier("redis://localhost:6379/0", ttl=600)  # connects on first use
    """

    stores_bytes = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        ttl: float | None = None,
        key_prefix: str | None = None,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        name: str = "L2",
    ) -> None:
        self.url = url if url is not None else env_str(ENV_REDIS_URL)
        if client is None and not self.url:
            raise ConfigurationError(f"RedisTier needs url=... or {ENV_REDIS_URL}")
        if self.url and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"RedisTier url must start with redis://, rediss:// or unix://, got "
                f"{self.url.split('://')[0]!r}://..."
            )
        self.name = name
        self.ttl = check_ttl(ttl)
        self.key_prefix = key_prefix if key_prefix is not None else env_str(ENV_KEY_PREFIX) or ""
        self.socket_timeout = check_ttl(socket_timeout, "socket_timeout")
        self.connect_timeout = check_ttl(connect_timeout, "connect_timeout")
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # The URL may carry a password: show only where it points.
        where = self.url.rsplit("@", 1)[-1] if self.url else "client"
        return f"RedisTier(name={self.name!r}, at={where!r}, ttl={self.ttl})"

    @property
    def client(self) -> redis.Redis:
        """The Redis client, built on first use and kept for the environment's life."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
        return client

    def _connect(self) -> redis.Redis:
        import redis

        assert self.url is not None
        return redis.Redis.from_url(
            self.url,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.connect_timeout,
            health_check_interval=30,
        )

    def get(self, key: str) -> object | Missing:
        value = self.client.get(self.key_prefix + key)
        return MISS if value is None else value

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        if not keys:
            return []
        values = self.client.mget([self.key_prefix + key for key in keys])
        return [MISS if value is None else value for value in values]

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.client.set(self.key_prefix + key, value, px=None if ttl is None else _millis(ttl))  # type: ignore[arg-type]

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        if not items:
            return
        px = None if ttl is None else _millis(ttl)
        pipe = self.client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(self.key_prefix + key, value, px=px)  # type: ignore[arg-type]
        pipe.execute()

    def delete(self, key: str) -> bool:
        return bool(self.client.delete(self.key_prefix + key))

    def delete_many(self, keys: Iterable[str]) -> int:
        names = [self.key_prefix + key for key in keys]
        return int(self.client.delete(*names)) if names else 0

    def remaining_ttl(self, key: str) -> float | None | Missing:
        millis: Any = self.client.pttl(self.key_prefix + key)
        if millis == -2:
            return MISS
        if millis == -1:
            return None
        return float(millis) / 1000

    def clear(self, prefix: str = "") -> int:
        removed = 0
        batch: list[Any] = []
        pattern = _glob_escape(self.key_prefix + prefix) + "*"
        for name in self.client.scan_iter(match=pattern, count=_DELETE_BATCH):
            batch.append(name)
            if len(batch) >= _DELETE_BATCH:
                removed += int(self.client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(self.client.unlink(*batch))
        return removed

    def close(self) -> None:
        """Release the connection pool built here; a passed-in client is left to its owner."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
