"""Redis URLs: parsed and checked once, shown only with their credentials masked.

redis-py's ``from_url`` takes URLs it cannot use (a bad port, a bad IPv6 literal,
``?socket_timeout=abc``) and fails on them at every command instead, and some of its
errors quote the URL: a password with an unencoded ``/`` is split into "host" and
"port", and the port error prints the first part of the password. Here a URL is
parsed once, into connection arguments, and anything that cannot be used raises
:class:`~stratacache.errors.ConfigurationError` naming the setting and the part at
fault, never quoting the URL itself. :attr:`RedisURL.redacted` is what a repr shows.

Accepted forms (redis-py's, less what cannot work):

- ``redis://[[user]:password@]host[:port][/db][?option=value&...]``
- ``rediss://...`` the same with TLS
- ``unix://[[user]:password@]/path/to/socket[?db=N&...]``

Credentials may also come as the query options ``username=`` and ``password=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from stratacache.config import MAX_TTL
from stratacache.errors import ConfigurationError

SCHEMES: Final = ("redis", "rediss", "unix")
DEFAULT_PORT: Final = 6379
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{0,15}$")
_DB_PATH = re.compile(r"^/?([0-9]{1,6})?$")
_SECRET_OPTIONS: Final = frozenset({"username", "password"})


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError
        return value

    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_TTL:  # the bound of every other duration setting
        raise ValueError
    return value


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on", "y", "t"}:
        return True
    if lowered in {"0", "false", "no", "off", "n", "f"}:
        return False
    raise ValueError


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError
        return text.lower()

    return parse


def _text(text: str) -> str:
    return text


_OPTIONS: Final[Mapping[str, Callable[[str], Any]]] = {
    "db": _whole(0, 999_999),
    "username": _text,
    "password": _text,
    "socket_timeout": _seconds,
    "socket_connect_timeout": _seconds,
    "socket_keepalive": _flag,
    "socket_read_size": _whole(1),
    "max_connections": _whole(1),
    "health_check_interval": _whole(0),
    "protocol": _whole(2, 3),
    "client_name": _text,
    "lib_name": _text,
    "lib_version": _text,
}
"""Query options passed on to redis-py, each with the parser of its value."""

_TLS_OPTIONS: Final[Mapping[str, Callable[[str], Any]]] = {
    "ssl_cert_reqs": _one_of("none", "optional", "required"),
    "ssl_check_hostname": _flag,
    "ssl_ca_certs": _text,
    "ssl_ca_path": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
}
"""Query options of ``rediss://`` URLs only (redis-py's plain connection refuses them)."""


class RedisURL:
    """A parsed, checked Redis URL; its ``repr`` and :attr:`redacted` hold no credentials.

    Example:
        >>> url = parse_redis_url("redis://app:pw@cache.example:6380/2?socket_timeout=0.5")
        >>> url.redacted
        'redis://***@cache.example:6380/2'
        >>> url.connection_kwargs()["port"], url.options
        (6380, {'socket_timeout': 0.5})
    """

    # Frozen by hand rather than a frozen dataclass, which is generated and compiled at
    # import: about 0.7 ms of every cold start for this one class (issue 18).
    __slots__ = ("db", "host", "options", "password", "path", "port", "scheme", "username")

    scheme: str
    host: str | None
    port: int | None
    path: str | None
    """The socket path of a ``unix://`` URL."""
    db: int | None
    username: str | None
    password: str | None
    options: dict[str, Any]
    """Further connection options from the query, their values converted."""

    def __init__(
        self,
        scheme: str,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        db: int | None = None,
        username: str | None = None,
        password: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        for name, value in (
            ("scheme", scheme),
            ("host", host),
            ("port", port),
            ("path", path),
            ("db", db),
            ("username", username),
            ("password", password),
            ("options", {} if options is None else options),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a RedisURL is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a RedisURL is frozen: cannot delete {name!r}")

    def __repr__(self) -> str:  # never the credentials
        return (
            f"RedisURL(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"path={self.path!r}, db={self.db!r}, options={self.options!r})"
        )

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not RedisURL:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # as the dataclass: options is a dict

    @property
    def has_credentials(self) -> bool:
        """Whether the URL names a user or a password."""
        return self.username is not None or self.password is not None

    @property
    def redacted(self) -> str:
        """The URL as it may be shown: no user, no password, no query."""
        who = "***@" if self.has_credentials else ""
        if self.scheme == "unix":
            db = f"?db={self.db}" if self.db is not None else ""
            return f"unix://{who}{self.path}{db}"
        host = self.host or "localhost"
        if ":" in host:
            host = f"[{host}]"
        db = f"/{self.db}" if self.db is not None else ""
        return f"{self.scheme}://{who}{host}:{self.port or DEFAULT_PORT}{db}"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a redis-py connection to this URL (no connection class)."""
        kwargs: dict[str, Any] = dict(self.options)
        if self.scheme == "unix":
            kwargs["path"] = self.path
        else:
            kwargs["host"] = self.host or "localhost"
            kwargs["port"] = self.port or DEFAULT_PORT
        if self.db is not None:
            kwargs["db"] = self.db
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def parse_redis_url(url: str, setting: str = "url") -> RedisURL:
    """Parse and check a Redis URL; a mistake raises ``ConfigurationError`` naming ``setting``.

    Args:
        url: the URL, e.g. the value of ``STRATACACHE_REDIS_URL``.
        setting: the name an error message gives the URL (``url`` or the variable).

    The message says which part is wrong but never quotes the URL: any part of it may
    be a password that was not percent-encoded.

    Example:
        >>> parse_redis_url("rediss://:s3cret@cache.example:6379/0").redacted
        'rediss://***@cache.example:6379/0'
        >>> parse_redis_url("redis://:pa/ss@cache.example:6379/0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        stratacache.errors.ConfigurationError: url has an '@' after the host: ...
    """
    from urllib.parse import unquote  # only when a Redis tier is configured

    if not isinstance(url, str):
        raise ConfigurationError(f"{setting} must be a string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        # Only a plausible scheme is shown: the rest of the text may be a password.
        shown = f"{scheme}://..." if sep and _SCHEME.match(scheme) else "no scheme"
        raise ConfigurationError(
            f"{setting} must start with redis://, rediss:// or unix://, got {shown!r}"
        )

    def refuse(problem: str) -> ConfigurationError:
        return ConfigurationError(f"{setting} {problem}")

    # The authority ends at the first '/', '?' or '#', as in urllib; an '@' after that
    # point means a credential holds one of those characters unencoded.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in tail:
        raise refuse(
            "has an '@' after the host: percent-encode '/', '?', '#' and '@' in the "
            "user name and password (%2F, %3F, %23, %40)"
        )
    if "#" in tail:
        raise refuse("has a fragment ('#...'), which a Redis URL cannot use")
    path, _, query = tail.partition("?")

    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None

    host, port = _host_and_port(hostport, refuse)
    options = _query(query, scheme, refuse)
    for name in _SECRET_OPTIONS:
        value = options.pop(name, None)
        if value is None:
            continue
        if (username if name == "username" else password) is not None:
            raise refuse(f"gives the {name} twice, before the host and as ?{name}=")
        if name == "username":
            username = value
        else:
            password = value
    db = options.pop("db", None)

    if scheme == "unix":
        if host is not None or port is not None:
            raise refuse("is a unix:// URL with a host or port: write unix:///path/to/socket")
        socket_path = unquote(path)
        if not socket_path or socket_path == "/":
            raise refuse("is a unix:// URL without a socket path")
        return RedisURL(scheme, None, None, socket_path, db, username, password, options)

    match = _DB_PATH.match(path)
    if match is None:
        raise refuse("has a path that is not a database number (/0 to /999999)")
    if match.group(1) is not None:
        if db is not None:
            raise refuse("gives the database twice, as /N and as ?db=")
        db = int(match.group(1))
    return RedisURL(scheme, host, port, None, db, username, password, options)


def _host_and_port(
    hostport: str, refuse: Callable[[str], ConfigurationError]
) -> tuple[str | None, int | None]:
    from urllib.parse import unquote

    if hostport.startswith("["):
        literal, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise refuse("has an IPv6 address without its closing ']'")
        import ipaddress

        try:
            ipaddress.IPv6Address(unquote(literal))
        except ValueError:
            raise refuse("has a host in brackets that is not an IPv6 address") from None
        host: str | None = unquote(literal)
        if after and not after.startswith(":"):
            raise refuse("has text after the IPv6 address's ']' that is not ':port'")
        port_text = after[1:] if after else ""
    else:
        if hostport.count(":") > 1:
            raise refuse("has an IPv6 address outside brackets: write redis://[::1]:6379")
        name, _, port_text = hostport.partition(":")
        host = unquote(name) or None
        if host is not None and not _HOST.match(host):
            raise refuse("has a host name with characters other than letters, digits, '.-_'")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise refuse(
            "has a port that is not a number from 1 to 65535 (a password holding '/', '?' "
            "or '#' must be percent-encoded: %2F, %3F, %23)"
        )
    return host, int(port_text)


def _query(query: str, scheme: str, refuse: Callable[[str], ConfigurationError]) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise refuse("has a query that is not name=value pairs joined by '&'") from None
    allowed = {**_OPTIONS, **_TLS_OPTIONS} if scheme == "rediss" else _OPTIONS
    options: dict[str, Any] = {}
    for position, (name, value) in enumerate(pairs, start=1):
        if name in _TLS_OPTIONS and name not in allowed:
            raise refuse(f"has the TLS option {name} on a {scheme}:// URL: use rediss://")
        if name not in allowed:
            # The name is not shown: an unknown "name" may be the tail of a password
            # that held an unencoded '&'.
            raise refuse(
                f"has a query option (#{position}) that is not one of {', '.join(sorted(allowed))}"
            )
        if name in options:
            raise refuse(f"gives the query option {name} twice")
        if not value:
            raise refuse(f"has no value for the query option {name}")
        try:
            options[name] = allowed[name](value)
        except ValueError:
            raise refuse(f"has an invalid value for the query option {name}") from None
    return options
