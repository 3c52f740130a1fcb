"""Redis URLs from the wild, against a real password-protected server: credentials in
the query connect and stay out of every log line and repr; a malformed
``STRATACACHE_REDIS_URL`` raises ``ConfigurationError`` instead of failing open forever."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from devkit.servers import RedisServer

from stratacache import cached, cached_tiered
from stratacache.errors import ConfigurationError
from stratacache.tiered import TieredCache
from stratacache.tiers import RedisTier
from tests.support import REDIS_SECRET

SECRET = REDIS_SECRET


def test_a_password_in_the_query_connects_and_never_shows(
    locked_redis: RedisServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    good = RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0?password={SECRET}", breaker=False)
    wrong = RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0?password={SECRET}-x", breaker=False)
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):  # every logger, every level
        for tier in (good, wrong):
            cache = TieredCache([tier], namespace="query-password")
            cache.set("k", [1])
            value = cache.get("k")
            seen += [repr(tier), repr(cache), str(cache.health_check()), str(tier.url)]
            assert value == ([1] if tier is good else None)
            tier.close()
    assert "AuthenticationError" in caplog.text  # the wrong password was logged ...
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, *seen):
        assert SECRET not in text  # ... without the password
    assert f"redis://***@127.0.0.1:{locked_redis.port}/0" in seen[0]


def test_username_and_password_query_options_reach_the_server(locked_redis: RedisServer) -> None:
    tier = RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0?username=default&password={SECRET}")
    tier.set("k", b"v", 60)
    assert tier.get("k") == b"v"
    assert tier.client.acl_whoami() == "default"
    tier.close()


def test_a_percent_encoded_slash_in_the_password_connects() -> None:
    password = "half/other-half"
    with RedisServer(None, "--requirepass", password) as server:
        tier = RedisTier(f"redis://:half%2Fother-half@127.0.0.1:{server.port}/0")
        tier.set("k", b"v", 60)
        assert tier.get("k") == b"v"
        assert "half" not in repr(tier)
        tier.close()


def decorate_and_call(decorator: Callable[..., Any]) -> int:
    """Decorate a function and call it once: a mistake may surface at either step."""

    @decorator
    def f(x: int) -> int:
        return x

    result: int = f(1)
    return result


def test_an_unencoded_slash_in_the_password_is_refused_without_leaking_it(
    locked_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = SECRET[:9], SECRET[9:]
    url = f"redis://:{first}/{second}@127.0.0.1:{locked_redis.port}/0"
    monkeypatch.setenv("STRATACACHE_REDIS_URL", url)
    # redis-py used to fail every call with "Port could not be cast ... as 'q5-Secret'".
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as raised:
        decorate_and_call(cached_tiered(ttl=60))
    message = str(raised.value)
    assert message.startswith("STRATACACHE_REDIS_URL has an '@' after the host")
    for text in (message, caplog.text):
        assert first not in text
        assert second not in text


MALFORMED = {
    "bad port": "redis://127.0.0.1:63x9/0",
    "port out of range": "redis://127.0.0.1:99999/0",
    "bad IPv6 literal": "redis://[::1:6379/0",
    "socket_timeout=abc": "redis://127.0.0.1:6379/0?socket_timeout=abc",
    "unknown query option": "redis://127.0.0.1:6379/0?timeout=5",
    "TLS option on redis://": "redis://127.0.0.1:6379/0?ssl_ca_certs=/tmp/ca.pem",
    "db path not a number": "redis://127.0.0.1:6379/cache",
}


@pytest.mark.parametrize("url", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_url_in_the_environment_is_reported_not_failed_open(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # Before: every call answered, with a CacheError each, forever.
    monkeypatch.setenv("STRATACACHE_REDIS_URL", url)
    with pytest.raises(ConfigurationError, match=r"^STRATACACHE_REDIS_URL "):
        decorate_and_call(cached_tiered(ttl=60))
    with pytest.raises(ConfigurationError, match=r"^STRATACACHE_REDIS_URL "):
        decorate_and_call(cached(tier="redis"))


def test_a_malformed_url_argument_names_url() -> None:
    with pytest.raises(ConfigurationError, match=r"^url has a port"):
        RedisTier("redis://127.0.0.1:6379x/0")


def test_settings_that_contradict_the_url_are_refused(locked_redis: RedisServer) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0"
    with pytest.raises(ConfigurationError, match="password is given both"):
        RedisTier(url, password="other")
    with pytest.raises(ConfigurationError, match="ssl_ca_certs needs a rediss://"):
        RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0", ssl_ca_certs="/tmp/ca.pem")
    with pytest.raises(ConfigurationError, match="only database 0"):
        RedisTier(f"redis://127.0.0.1:{locked_redis.port}/3", cluster=True)
    with pytest.raises(ConfigurationError, match="unix://"):
        RedisTier("unix:///tmp/redis.sock", cluster=True)


def test_query_timeouts_apply_unless_an_argument_says_otherwise(locked_redis: RedisServer) -> None:
    url = f"redis://127.0.0.1:{locked_redis.port}/0?socket_timeout=0.75&socket_connect_timeout=0.5"
    tier = RedisTier(url)
    assert (tier.socket_timeout, tier.connect_timeout) == (0.75, 0.5)
    assert RedisTier(url, socket_timeout=0.1).socket_timeout == 0.1


def test_a_unix_socket_url_connects(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("sock")
    socket_path = f"{directory}/redis.sock"
    with RedisServer(None, "--unixsocket", socket_path, "--requirepass", SECRET):
        # The server listens on TCP (which RedisServer waits for) and then on the socket.
        wait_for_socket(socket_path)
        tier = RedisTier(f"unix://:{SECRET}@{socket_path}?db=2")
        cache = TieredCache([tier], namespace="unix")
        cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1}
        assert cache.stats()["L2"]["errors"] == 0
        assert tier.client.connection_pool.connection_kwargs["db"] == 2
        assert SECRET not in repr(cache)
        tier.close()


def wait_for_socket(path: str) -> None:
    """Until the server accepts connections on the unix socket ``path``."""
    for _ in range(500):
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(path)
            except OSError:
                time.sleep(0.01)
                continue
            return
    raise AssertionError(f"nothing listened on {path}")
