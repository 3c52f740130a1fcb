"""L2: Redis, ElastiCache or Valkey, shared by every execution environment.

``redis`` is imported when the first client is built, never by ``import stratacache``.
"""

from __future__ import annotations

import logging
import math
import re
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
from stratacache.errors import ConfigurationError, PartialReadError, SetupError, StratacacheError
from stratacache.tiers.base import (
    ANY,
    FEED_KEEP,
    MISS,
    Capabilities,
    FeedEntries,
    Foreign,
    Missing,
)
from stratacache.tiers.collector import quiet_build
from stratacache.tiers.hints import chain, explain_failures
from stratacache.urls import parse_redis_url

logger = logging.getLogger("stratacache")
_CAPABILITIES = Capabilities(versioned=True, counter=True, feed=True)
REDIS_PY_NEEDED = (5, 0, 1)
"""The oldest redis-py this tier works with (``Redis.from_pool`` came in 5.0.1)."""
_too_old_logged: set[str] = set()  # the redis-py paths already reported
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
# Several keys in one script, on a single server (a cluster runs _SWAP_SCRIPT per key, each
# in its node's pipeline): ARGV holds blob, expect, keep per key.
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
# A reader's first read of a feed (ARGV[2] '+': its newest entry only) or of one it found
# missing ('-': every entry). A missing feed is started with an empty entry first: a reader
# whose place is an entry then sees a flush or an eviction take it, even when no
# invalidation had been recorded yet. pcall: a full Redis refuses the write, not the read.
_FEED_START_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', '')
end
if ARGV[2] == '+' then return redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) end
return redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[3])
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


# The counter at least a floor, created if missing, never bumped: a counter lost to a flush
# or an eviction written back from the slower tier that kept it.
_RAISE_SCRIPT = """
local value = tonumber(redis.call('GET', KEYS[1]) or '-1') or -1
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


def _check_cluster_url(parsed: Any, setting: str) -> None:
    """A cluster is reached over TCP, on database 0."""
    if parsed.scheme == "unix":
        raise ConfigurationError(f"a Redis Cluster cannot be reached by unix:// {setting}")
    if parsed.db:
        raise ConfigurationError(f"a Redis Cluster has only database 0, {setting} names another")


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
        self._url_setting = setting
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
            _check_cluster_url(parsed, setting)
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
        self._routes: Any = None

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

        _require_supported(redis)
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
        if self.cluster:
            return self._cluster_get_many(names)
        values = self.client.mget(names)
        return [MISS if value is None else value for value in values]

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        if not items:
            return
        px = None if ttl is None else _millis(ttl)
        if self.cluster:
            expiry = () if px is None else ("PX", px)
            self._cluster_run(
                [("SET", self.key_prefix + key, value, *expiry) for key, value in items.items()]
            )
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(self.key_prefix + key, value, px=px)
        pipe.execute()

    def delete(self, key: str) -> bool:
        return bool(self.client.delete(self.key_prefix + key))

    def delete_many(self, keys: Iterable[str]) -> int:
        names = [self.key_prefix + key for key in keys]
        if self.cluster:
            unique = dict.fromkeys(names)
            return sum(map(int, self._cluster_run([("DEL", name) for name in unique])))
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
                removed += self._unlink(batch)
                batch.clear()
        if batch:
            removed += self._unlink(batch)
        return removed

    def _unlink(self, names: Sequence[Any]) -> int:
        if self.cluster:
            return sum(map(int, self._cluster_run([("UNLINK", name) for name in names])))
        return int(self.client.unlink(*names))

    def ping(self) -> bool:
        """Build the client and open a connection now: one ``PING``.

        Example (needs a server; the integration tests run it)::

            RedisTier("redis://localhost:6379/0").ping()  # True
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

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int | None]:
        """``GET key`` and the counter in one round trip (``MGET``; a pipeline in a cluster)."""
        names = (self.key_prefix + key, self.key_prefix + counter)
        try:
            if self.cluster:  # one round trip per node: one, or two when they live apart
                value, count = self._cluster_run([("GET", name) for name in names])
            else:
                value, count = self.client.mget(names)
        except Exception as exc:
            if _wrong_type(exc):
                return Foreign("a Redis value of another type"), self.read_counter(counter)
            raise
        return (MISS if value is None else value), None if count is None else _counter(count)

    # ------------------------------------------------------------ the invalidation feed
    # Capability ``feed``: a stream per namespace, trimmed to about FEED_KEEP entries
    # (``MAXLEN ~`` trims whole nodes, never below the bound). It has no TTL, so no
    # ``volatile-*`` eviction policy can take it; a lost feed makes readers drop their L1.

    def publish(self, feed: str, keys: Sequence[str]) -> str:
        """``XADD feed MAXLEN ~ FEED_KEEP * k key [k1 key ...]``: one entry per invalidation."""
        fields = {f"k{index}" if index else "k": key for index, key in enumerate(keys)}
        name = self.key_prefix + feed
        return _text(self.client.xadd(name, fields, maxlen=FEED_KEEP, approximate=True))

    def read_with_feed(
        self, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[int | None, FeedEntries]:
        """The counter (``None`` when missing) and the feed's entries from ``after``, pipelined:
        one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.key_prefix + counter)
        _read_feed(pipe, self.key_prefix + feed, after, count)
        raw, entries = pipe.execute(raise_on_error=False)
        if isinstance(raw, Exception) and not _wrong_type(raw):
            raise raw
        shared = None if isinstance(raw, Exception) or raw is None else _counter(raw)
        return shared, _entries(entries)

    def get_with_feed(
        self, key: str, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[object | Missing, int | None, FeedEntries]:
        """:meth:`get_with_counter` with the feed's entries from ``after``: one round trip."""
        names = (self.key_prefix + key, self.key_prefix + counter)
        pipe = self.client.pipeline(transaction=False)
        if self.cluster:
            for name in names:
                pipe.get(name)
        else:
            pipe.mget(names)
        _read_feed(pipe, self.key_prefix + feed, after, count)
        answers = pipe.execute(raise_on_error=False)
        for answer in answers[:-1]:
            if isinstance(answer, Exception) and not _wrong_type(answer):
                raise answer
        if self.cluster:
            value, count_raw = answers[0], answers[1]
            if isinstance(count_raw, Exception):
                count_raw = None
        else:
            value, count_raw = answers[0]
        entries = _entries(answers[-1])
        shared = None if count_raw is None else _counter(count_raw)
        if isinstance(value, Exception):
            return Foreign("a Redis value of another type"), shared, entries
        return (MISS if value is None else value), shared, entries

    # ------------------------------------------------------------ conditional writes

    def swap(
        self,
        key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        counter: tuple[str, int] | None = None,
    ) -> tuple[bool, object | Missing]:
        """Write ``blob`` if the record's version is still ``expect`` (one script, one trip).

        Returns whether it was written, and the record it replaced or found there.
        ``counter``: ``(key, floor)`` of a counter to write back in the same round
        trip (:meth:`raise_counter`).
        """
        args = (_SWAP_SCRIPT, 1, self.key_prefix + key, blob, _expect_arg(expect), _keep_ms(keep))
        done, current = self._with_counter(args, counter)
        if current == b"!":
            return bool(done), Foreign("a Redis value of another type")
        return bool(done), MISS if current is None else current

    def swap_many(
        self,
        items: Mapping[str, tuple[bytes, bytes | None, float | None]],
        counter: tuple[str, int] | None = None,
    ) -> list[bool]:
        """:meth:`swap` for several keys: one script, one round trip (in a cluster, whose
        scripts keep to one hash slot, a script per key in one pipeline per node).
        ``counter``: a lost generation counter to carry back in the same round trip."""
        if self.cluster:  # a script per key, one pipeline per node
            if counter is not None:  # rare: the counter was lost; its own round trip
                self.raise_counter(*counter)
            answers = self._cluster_run(
                [
                    ("EVAL", _SWAP_SCRIPT, 1, self.key_prefix + key, blob, _expect_arg(expect),
                     _keep_ms(keep))
                    for key, (blob, expect, keep) in items.items()
                ]
            )  # fmt: skip
            return [bool(done) for done, _ in answers]
        names = [self.key_prefix + key for key in items]
        argv: list[object] = []
        for blob, expect, keep in items.values():
            argv += [blob, _expect_arg(expect), _keep_ms(keep)]
        answers = self._with_counter((_SWAP_MANY_SCRIPT, len(names), *names, *argv), counter)
        return [bool(done) for done in answers]

    def raise_counter(self, key: str, floor: int) -> int:
        """Set the counter to at least ``floor``, creating it, without adding one."""
        return int(self.client.eval(_RAISE_SCRIPT, 1, self.key_prefix + key, floor))

    def _with_counter(self, args: tuple[Any, ...], counter: tuple[str, int] | None) -> Any:
        """``EVAL *args``, and :meth:`raise_counter` of ``counter`` in the same round trip."""
        if counter is None:
            return self.client.eval(*args)
        pipe = self.client.pipeline(transaction=False)
        pipe.eval(*args)
        pipe.eval(_RAISE_SCRIPT, 1, self.key_prefix + counter[0], counter[1])
        answer, _ = pipe.execute(raise_on_error=False)  # a counter not written back is
        if isinstance(answer, Exception):  # found missing again by the next environment
            raise answer
        return answer

    def delete_if(self, key: str, expect: bytes) -> bool:
        """Remove the record if its version is still ``expect``."""
        return bool(self.client.eval(_DELETE_IF_SCRIPT, 1, self.key_prefix + key, expect))

    def set(self, key: str, value: object, ttl: float | None) -> None:
        if isinstance(value, bytes):
            self.swap(key, value, ttl, ANY)
        else:
            self.client.set(self.key_prefix + key, value, px=None if ttl is None else _millis(ttl))

    # ------------------------------------------------------------ a cluster's batches

    def _cluster_routes(self) -> Any:
        """The :class:`~stratacache.tiers.redis_cluster.ClusterRoutes` of a cluster's client."""
        routes = self._routes
        if routes is None:
            from stratacache.tiers.redis_cluster import routes_for

            routes = self._routes = routes_for(self.client)
        return routes

    def _cluster_run(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """One-key commands (``EVAL`` on one key included), one pipeline per node; the first
        failure is raised once every node had its pipeline."""
        answers: list[Any] = self._cluster_routes().run([(_key_of(c), c) for c in commands])
        for got in answers:
            if isinstance(got, Exception):
                raise got
        return answers

    def _cluster_get_many(self, names: Sequence[str]) -> list[object | Missing]:
        """``GET``s in one pipeline per node; what the nodes that answered sent is kept."""
        answers = self._cluster_routes().run([(name, ("GET", name)) for name in names])
        answers = [
            Foreign("a Redis value of another type")
            if isinstance(got, Exception) and _wrong_type(got)
            else got
            for got in answers
        ]
        failures = [got for got in answers if isinstance(got, Exception)]
        values = [MISS if got is None or isinstance(got, Exception) else got for got in answers]
        if not failures:
            return values
        if len(failures) == len(names):
            raise failures[0]
        raise PartialReadError(
            f"Redis Cluster answered {len(names) - len(failures)} of {len(names)} keys "
            f"({type(failures[0]).__name__}: {failures[0]})",
            values,
            len(failures),
        )


def _counter(raw: object) -> int:
    try:
        return int(raw) if raw is not None else 0  # type: ignore[call-overload]
    except ValueError:
        return 0  # not a counter of ours: start again (bump_counter's floor keeps it rising)


def _require_supported(redis: Any) -> None:
    """Refuse a redis-py older than :data:`REDIS_PY_NEEDED`, saying so in one log line once.

    Lambda puts the function's own packages (``/var/task``) before the layer's
    (``/opt/python``), so an old redis-py shipped with the function wins the import.
    """
    found = str(getattr(redis, "__version__", ""))
    parts = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", found)
    if parts is None:
        return  # no version to judge by: let it try
    if tuple(int(part or 0) for part in parts.groups()) >= REDIS_PY_NEEDED:
        return
    needed = ".".join(map(str, REDIS_PY_NEEDED))
    where = str(getattr(redis, "__file__", "an unknown path"))
    if where not in _too_old_logged:
        _too_old_logged.add(where)
        logger.error(
            "stratacache needs redis-py %s or newer, found redis-py %s at %s: the Redis "
            "tier is off in this environment. Remove redis from the function's own package "
            "(it comes before the layer's) or upgrade it.",
            needed,
            found,
            where,
        )
    raise StratacacheError(f"redis-py {found} is older than the {needed} stratacache needs")


def _key_of(command: tuple[Any, ...]) -> Any:
    return command[3] if command[0] == "EVAL" else command[1]


def _read_feed(pipe: Any, name: str, after: str | None, count: int) -> None:
    if after:
        pipe.xrange(name, after, "+", count=count)
    else:  # no place yet, or a feed seen missing: start one, so that losing it shows
        start = "+" if after is None else "-"  # (a cluster's pipeline has no eval())
        pipe.execute_command("EVAL", _FEED_START_SCRIPT, 1, name, FEED_KEEP, start, count)


def _entries(answer: object) -> FeedEntries:
    """Stream entries as ``(id, keys)``; a key of another type reads as an empty feed."""
    if isinstance(answer, Exception):
        if _wrong_type(answer):
            return []
        raise answer
    entries: FeedEntries = []
    for entry_id, fields in answer or ():  # type: ignore[attr-defined]
        # XRANGE's reply as redis-py parses it (a dict), or as a script returns it (a list)
        values = fields.values() if isinstance(fields, dict) else fields[1::2]
        keys = tuple(key for key in map(_text, values) if key)
        entries.append((_text(entry_id), keys))
    return entries


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


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
    from stratacache.tiers.redis_cluster import cluster_class

    return cluster_class()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# ---------------------------------------------------------------- errors that say what to fix


def _explain(tier: RedisTier, exc: Exception) -> SetupError | None:
    """A :class:`SetupError` for a ``rediss://`` connection whose TLS handshake failed.

    The message does not change from one failure to the next (a timeout or a refusal
    of the same server reads the same), so that it is logged once; the TLS error is
    its cause.
    """
    url = tier._url
    if url is None or url.scheme != "rediss":
        return None
    import ssl

    setting = "url=" if tier._url_setting == "url" else tier._url_setting
    for cause in chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return SetupError(
                f"Redis at {url.redacted} presented a TLS certificate that was refused "
                f"({cause.reason}: {cause.verify_message}): pass ssl_ca_certs= with the "
                "CA bundle that signed it, or check the host name in "
                f"{setting}"
            )
        if isinstance(cause, ssl.SSLError) or "handshake" in str(cause).lower():
            return SetupError(
                f"Redis at {url.redacted} did not complete a TLS handshake: {setting} "
                "starts with rediss:// (TLS). If the server does not speak TLS, use "
                "redis://; if it does, check the host and the port. ElastiCache with "
                "in-transit encryption, Serverless included, needs rediss://"
            )
    return None


explain_failures(
    RedisTier,
    (
        "get",
        "get_many",
        "set",
        "set_many",
        "delete",
        "delete_many",
        "remaining_ttl",
        "clear",
        "ping",
        "read_counter",
        "bump_counter",
        "get_with_counter",
        "swap",
        "swap_many",
        "delete_if",
    ),
    _explain,
)
