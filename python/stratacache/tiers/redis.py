"""L2: Redis, ElastiCache or Valkey, shared by every execution environment.

``redis`` is imported when the first client is built, never by ``import stratacache``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stratacache.breaker import CircuitBreaker, make_breaker
from stratacache.config import (
    ENV_KEY_PREFIX,
    ENV_REDIS_MAX_VALUE_BYTES,
    ENV_REDIS_TIMEOUT,
    ENV_REDIS_URL,
    MAX_TTL,
    check_ttl,
    env_str,
    resolve_max_value_bytes,
    resolve_redis_cluster,
    resolve_timeout,
)
from stratacache.errors import ConfigurationError
from stratacache.tiers.base import ANY, MISS, Capabilities, Foreign, Missing
from stratacache.tiers.collector import quiet_build
from stratacache.urls import parse_redis_url

_CAPABILITIES = Capabilities(versioned=True, counter=True)
DEFAULT_SOCKET_TIMEOUT = 0.25
DEFAULT_CONNECT_TIMEOUT = 0.25
_DELETE_BATCH = 500
# Delete the lease only when its value is still our token, atomically on the server.
# Compare-and-set on the record's version (bytes 5-12 of the envelope), in one round trip.
# ARGV: blob, expect ('' nothing there, '!' not ours, '*' anything, else 8 version bytes),
# keep in ms (0: no expiry). A write never shortens how long the record it replaces was to
# be kept: a tombstone keeps refusing old fills for its whole life. On a mismatch the
# current record comes back, so the caller needs no second read.
_SWAP = """
local function swap(key, blob, expect, keep)
  local cur = redis.pcall('GET', key)
  local foreign = type(cur) == 'table'
  local ok
  if expect == '*' then ok = true
  elseif expect == '' then ok = (cur == false)
  elseif expect == '!' then ok = foreign or (cur ~= false and string.sub(cur, 1, 3) ~= 'SC\\3')
  else ok = (not foreign) and cur ~= false and string.sub(cur, 5, 12) == expect end
  if foreign then cur = '!' end
  if not ok then return 0, cur end
  keep = tonumber(keep)
  if keep > 0 and cur ~= false and not foreign then
    local left = redis.call('PTTL', key)
    if left > keep then keep = left end
  end
  if foreign then redis.call('DEL', key) end
  if keep > 0 then redis.call('SET', key, blob, 'PX', keep)
  else redis.call('SET', key, blob) end
  return 1, cur
end
"""
_SWAP_SCRIPT = (
    _SWAP
    + """
local done, cur = swap(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return {done, cur}
"""
)
# Several keys in one script (one slot of a cluster): ARGV holds blob, expect, keep per key.
_SWAP_MANY_SCRIPT = (
    _SWAP
    + """
local done = {}
for i, key in ipairs(KEYS) do
  done[i] = swap(key, ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i])
end
return done
"""
)
_DELETE_IF_SCRIPT = """
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'string' and string.sub(cur, 5, 12) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# INCR, but never below a floor: a counter lost to a flush or an eviction must not go back.
_BUMP_SCRIPT = """
local value = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if value < floor then
  redis.call('SET', KEYS[1], floor)
  value = floor
end
return value
"""


def _expect_arg(expect: bytes | None) -> bytes:
    return b"" if expect is None else expect


def _keep_ms(keep: float | None) -> int:
    return 0 if keep is None else _millis(keep)


def _millis(ttl: float) -> int:
    """``PX`` milliseconds: at least 1, at most :data:`~stratacache.config.MAX_TTL`.

    Settings are checked against ``MAX_TTL`` already; the clamp keeps a lifetime read
    back from a stored entry (a promotion) within what ``SET ... PX`` accepts too.
    """
    return max(1, math.ceil(min(ttl, MAX_TTL) * 1000))


class RedisTier:
    """A Redis-compatible tier that stores envelopes under ``key_prefix + key``.

    Args:
        url: ``redis://`` or ``rediss://`` (TLS) URL, ``redis://user:password@host:port/0``
            for ACL users, or ``unix:///path/to/socket`` (default ``STRATACACHE_REDIS_URL``);
            parsed and checked here (see :mod:`stratacache.urls`), so a malformed URL
            raises ``ConfigurationError`` naming the setting, without quoting the URL.
        client: a ready ``redis.Redis`` or ``RedisCluster``; reused as it is, ``url`` ignored.
        ttl: this tier's own lifetime in seconds; wins over the cache's TTL.
        key_prefix: put before every key (default ``STRATACACHE_KEY_PREFIX`` or none).
        socket_timeout, connect_timeout: seconds (default ``STRATACACHE_REDIS_TIMEOUT``
            or 0.25); kept short so a sick server cannot eat a Lambda invocation's
            time. A timeout is never retried.
        cluster: the URL names one node of a Redis Cluster / ElastiCache cluster-mode
            endpoint (default ``STRATACACHE_REDIS_CLUSTER``); batch operations are
            split by hash slot.
        username, password: ACL credentials, instead of putting them in the URL.
        credential_provider: supplies credentials at every (re)connection, e.g.
            :class:`stratacache.iam.ElastiCacheIAMProvider` for IAM auth tokens; an
            object with ``get_credentials() -> (username, password)``.
        ssl_ca_certs: CA bundle that verifies a ``rediss://`` server's certificate.
        client_options: further keyword arguments for the redis-py client.
        max_value_bytes: larger envelopes are not stored here (counted as an error,
            logged); default ``STRATACACHE_REDIS_MAX_VALUE_BYTES`` or no limit.
        breaker: ``True`` for a circuit breaker with the environment's settings,
            ``False`` for none, or a :class:`~stratacache.breaker.CircuitBreaker`.
        name: the metric dimension value.

    A connection the server closed (idle timeout, failover, a Lambda environment
    thawed after minutes) is replaced and the command sent again, once.

    Example:
        >>> tier = RedisTier("redis://localhost:6379/0", ttl=600)  # connects on first use
    """

    stores_bytes = True
    capabilities = _CAPABILITIES

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any | None = None,
        ttl: float | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        cluster: bool | None = None,
        username: str | None = None,
        password: str | None = None,
        credential_provider: Any | None = None,
        ssl_ca_certs: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        max_value_bytes: int | None = None,
        breaker: CircuitBreaker | bool = True,
        name: str = "L2",
    ) -> None:
        setting = "url" if url is not None else ENV_REDIS_URL
        raw = url if url is not None else env_str(ENV_REDIS_URL)
        if client is None and not raw:
            raise ConfigurationError(f"RedisTier needs url=... or {ENV_REDIS_URL}")
        # Parsed once, here: a URL the client could not use is a configuration error now,
        # not a CacheError on every call, and only its redacted form is kept in view.
        self._url = parse_redis_url(raw, setting) if client is None and raw else None
        self.url = self._url.redacted if self._url is not None else None
        """Where the tier connects, credentials masked (``None`` with a passed-in client)."""
        parsed = self._url
        if parsed is not None:
            if username is not None and parsed.username is not None:
                raise ConfigurationError(f"username is given both in {setting} and as username=")
            if password is not None and parsed.password is not None:
                raise ConfigurationError(f"password is given both in {setting} and as password=")
            if ssl_ca_certs is not None and parsed.scheme != "rediss":
                raise ConfigurationError(f"ssl_ca_certs needs a rediss:// {setting}")
        if credential_provider is not None:
            if not callable(getattr(credential_provider, "get_credentials", None)):
                raise ConfigurationError(
                    "credential_provider must have a get_credentials() method returning "
                    f"(username, password), got {type(credential_provider).__name__}"
                )
            if (
                username is not None
                or password is not None
                or (parsed is not None and parsed.has_credentials)
            ):
                raise ConfigurationError(
                    "credential_provider replaces username/password: pass one or the other"
                )
        self.name = name
        self.ttl = check_ttl(ttl)
        self.key_prefix = key_prefix if key_prefix is not None else env_str(ENV_KEY_PREFIX) or ""
        # An explicit argument, then the URL's query option, then the environment.
        from_url = parsed.options if parsed is not None else {}
        self.socket_timeout = resolve_timeout(
            socket_timeout if socket_timeout is not None else from_url.get("socket_timeout"),
            "socket_timeout",
            ENV_REDIS_TIMEOUT,
            DEFAULT_SOCKET_TIMEOUT,
        )
        self.connect_timeout = resolve_timeout(
            connect_timeout
            if connect_timeout is not None
            else from_url.get("socket_connect_timeout"),
            "connect_timeout",
            ENV_REDIS_TIMEOUT,
            DEFAULT_CONNECT_TIMEOUT,
        )
        self.cluster = resolve_redis_cluster(cluster)
        if self.cluster and parsed is not None:
            if parsed.scheme == "unix":
                raise ConfigurationError(f"a Redis Cluster cannot be reached by unix:// {setting}")
            if parsed.db:
                raise ConfigurationError(
                    f"a Redis Cluster has only database 0, {setting} names another"
                )
        self.max_value_bytes = resolve_max_value_bytes(max_value_bytes, ENV_REDIS_MAX_VALUE_BYTES)
        self.breaker = make_breaker(breaker, name)
        self._options: dict[str, Any] = dict(client_options or {})
        if username is not None:
            self._options["username"] = username
        if password is not None:
            self._options["password"] = password
        if credential_provider is not None:
            self._options["credential_provider"] = credential_provider
        if ssl_ca_certs is not None:
            self._options["ssl_ca_certs"] = ssl_ca_certs
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.url or "client"  # already redacted
        kind = ", cluster" if self.cluster else ""
        return f"RedisTier(name={self.name!r}, at={where!r}{kind}, ttl={self.ttl})"

    @property
    def client(self) -> Any:
        """The Redis client, built on first use and kept for the environment's life."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    with quiet_build():  # imports and model loading: no collections
                        self._client = self._connect()
                client = self._client
        return client

    def _connect(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = self._url
        assert url is not None
        # One immediate retry, on a connection error only: it replaces a connection the
        # server closed while the environment was frozen. A timeout is not retried, so
        # a hung server costs at most one socket_timeout per command.
        retry = Retry(NoBackoff(), 1, (redis.ConnectionError,))
        # The parsed URL's arguments, never the URL itself: redis-py would parse it again,
        # and its errors quote what it could not parse.
        options: dict[str, Any] = {
            **url.connection_kwargs(),
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            **self._options,
        }
        if self.cluster:
            options.pop("db", None)  # 0, checked at construction; the cluster refuses db=
            options.pop("health_check_interval", None)
            if url.scheme == "rediss":
                options["ssl"] = True
            return _cluster_class()(retry=retry, **options)
        options.setdefault("health_check_interval", 30)
        options.setdefault("redis_connect_func", _fresh_connection)
        connection_class = {
            "redis": redis.Connection,
            "rediss": redis.SSLConnection,
            "unix": redis.UnixDomainSocketConnection,
        }[url.scheme]
        pool = redis.ConnectionPool(connection_class=connection_class, retry=retry, **options)
        return redis.Redis.from_pool(pool)  # the client owns the pool and closes it

    def get(self, key: str) -> object | Missing:
        try:
            value = self.client.get(self.key_prefix + key)
        except Exception as exc:
            if _wrong_type(exc):
                return Foreign("a Redis value of another type")
            raise
        return MISS if value is None else value

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        if not keys:
            return []
        names = [self.key_prefix + key for key in keys]
        # A cluster's MGET must stay within one hash slot; mget_nonatomic splits by slot.
        values = self.client.mget_nonatomic(names) if self.cluster else self.client.mget(names)
        return [MISS if value is None else value for value in values]

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        if not items:
            return
        px = None if ttl is None else _millis(ttl)
        pipe = self.client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(self.key_prefix + key, value, px=px)
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

    def ping(self) -> bool:
        """Build the client and open a connection now: one ``PING``.

        Example:
            >>> RedisTier("redis://localhost:6379/0").ping()  # doctest: +SKIP
            True
        """
        return bool(self.client.ping())

    def close(self) -> None:
        """Release the connection pool built here; a passed-in client is left to its owner."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------ leases and generations
    # Capability ``counter``: a counter that makes a whole namespace unreachable at once.

    def read_counter(self, key: str) -> int:
        """The counter's value, 0 when it was never bumped."""
        return _counter(self.client.get(self.key_prefix + key))

    def bump_counter(self, key: str, floor: int = 0) -> int:
        """Add one to the counter atomically, to at least ``floor``; return the new value."""
        return int(self.client.eval(_BUMP_SCRIPT, 1, self.key_prefix + key, floor))

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int]:
        """``GET key`` and the counter in one round trip (``MGET``; a pipeline in a cluster)."""
        names = (self.key_prefix + key, self.key_prefix + counter)
        try:
            if self.cluster:
                pipe = self.client.pipeline(transaction=False)
                for name in names:
                    pipe.get(name)
                value, count = pipe.execute()
            else:
                value, count = self.client.mget(names)
        except Exception as exc:
            if _wrong_type(exc):
                return Foreign("a Redis value of another type"), self.read_counter(counter)
            raise
        return (MISS if value is None else value), _counter(count)

    # ------------------------------------------------------------ conditional writes

    def swap(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> tuple[bool, object | Missing]:
        """Write ``blob`` if the record's version is still ``expect`` (one script, one trip).

        Returns whether it was written, and the record it replaced or found there.
        """
        done, current = self.client.eval(
            _SWAP_SCRIPT, 1, self.key_prefix + key, blob, _expect_arg(expect), _keep_ms(keep)
        )
        if current == b"!":
            return bool(done), Foreign("a Redis value of another type")
        return bool(done), MISS if current is None else current

    def swap_many(
        self, items: Mapping[str, tuple[bytes, bytes | None, float | None]]
    ) -> list[bool]:
        """:meth:`swap` for several keys in one script: one round trip (one per slot in a
        cluster, whose scripts must keep to one hash slot)."""
        names = {self.key_prefix + key: key for key in items}
        groups: dict[int, list[str]] = {}
        for name in names:
            groups.setdefault(self.client.keyslot(name) if self.cluster else 0, []).append(name)
        done: dict[str, bool] = {}
        for group in groups.values():
            argv: list[object] = []
            for name in group:
                blob, expect, keep = items[names[name]]
                argv += [blob, _expect_arg(expect), _keep_ms(keep)]
            answers = self.client.eval(_SWAP_MANY_SCRIPT, len(group), *group, *argv)
            done.update(zip(group, map(bool, answers), strict=True))
        return [done[self.key_prefix + key] for key in items]

    def delete_if(self, key: str, expect: bytes) -> bool:
        """Remove the record if its version is still ``expect``."""
        return bool(self.client.eval(_DELETE_IF_SCRIPT, 1, self.key_prefix + key, expect))

    def set(self, key: str, value: object, ttl: float | None) -> None:
        if isinstance(value, bytes):
            self.swap(key, value, ttl, ANY)
        else:
            self.client.set(self.key_prefix + key, value, px=None if ttl is None else _millis(ttl))


def _counter(raw: object) -> int:
    try:
        return int(raw) if raw is not None else 0  # type: ignore[call-overload]
    except ValueError:
        return 0  # not a counter of ours: start again (bump_counter's floor keeps it rising)


def _wrong_type(exc: Exception) -> bool:
    return type(exc).__name__ == "ResponseError" and str(exc).startswith("WRONGTYPE")


def _fresh_connection(connection: Any) -> None:
    """Set up a new connection without the health check's ``PING`` first.

    The health check (``health_check_interval``, 30 s) pings a connection idle
    that long before using it, so one the server closed while the environment
    was frozen is replaced, not failed. A connection just opened has not been
    idle: its check is due one interval from now, which saves a round trip on
    every cold start.
    """
    connection.next_health_check = time.monotonic() + connection.health_check_interval
    connection.on_connect()


def _cluster_class() -> Any:
    """``RedisCluster`` that retries a connection error once but never a timeout."""
    from redis.cluster import RedisCluster
    from redis.exceptions import ClusterDownError, ConnectionError, SlotNotCoveredError

    class _Cluster(RedisCluster):
        ERRORS_ALLOW_RETRY = (ConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]

    return _Cluster


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
