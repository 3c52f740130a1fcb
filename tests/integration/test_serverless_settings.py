"""The Redis settings template.yaml gives the functions, against a serverless-like Valkey cluster.

ElastiCache Serverless is a TLS-only endpoint in cluster mode that names its
nodes by host name. Here: a 3-master Valkey cluster on loopback, each node
behind a TLS proxy and announcing ``localhost`` and its proxy's port, so the
client discovers TLS endpoints as it does on AWS. The environment variables
are read from template.yaml (EnableRedis=true, and RedisIamAuth=true for the
IAM path) with only the endpoint filled in; the certificate is trusted through
``SSL_CERT_FILE``, as the Lambda runtime trusts Amazon's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from devkit.faults import Proxy, RedisClusterServers, self_signed_certificate, tls_server_context
from devkit.servers import LOOPBACK

import stratacache.tiers
from stratacache import ElastiCacheIAMProvider, cached_many
from stratacache.tiers import RedisTier, tiers_from_env
from tests.support import ROOT, cfn_resolve, load_cloudformation

pytestmark = pytest.mark.slow

STAGE = "dev"  # the template's default; names the cache and the IAM user
IDS = [f"id-{i}" for i in range(40)]  # enough to land on all three masters


def template_redis_env(parameters: dict[str, str], address: str, port: int) -> dict[str, str]:
    """The STRATACACHE_REDIS_* variables the template sets, for a cache at address:port."""
    template = load_cloudformation(ROOT / "template.yaml")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    known = {
        "ValkeyCache.Endpoint.Address": address,
        "ValkeyCache.Endpoint.Port": str(port),
        "ValkeyCache": f"stratacache-{STAGE}",  # Ref: the serverless cache's name
        "ValkeyIamUser": f"stratacache-{STAGE}",  # Ref: the user id
    }

    def fill(node: Any) -> str:
        if isinstance(node, dict) and "Fn::Sub" in node:
            return re.sub(r"\$\{([^}]+)\}", lambda m: known[m.group(1)], node["Fn::Sub"])
        if isinstance(node, dict) and "Ref" in node:
            return known[node["Ref"]]
        return str(node)

    resolved = cfn_resolve(variables, template, {"Stage": STAGE, **parameters})
    return {k: fill(v) for k, v in resolved.items() if k.startswith("STRATACACHE_REDIS")}


@dataclass
class ServerlessLike:
    cluster: RedisClusterServers
    proxies: list[Proxy]
    cert: str

    def nodes(self) -> Iterator[Any]:
        """A plain client on each node itself (behind the proxies), for setting it up."""
        for server in self.cluster.servers:
            with redis.Redis(host=LOOPBACK, port=server.port, username="admin", password="x") as c:
                yield c


@pytest.fixture(scope="module")
def serverless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerlessLike]:
    # redis-py's cluster client turns an announced "localhost" into 127.0.0.1.
    cert, key = self_signed_certificate(str(tmp_path_factory.mktemp("tls")), addresses=(LOOPBACK,))
    with RedisClusterServers(3) as cluster:
        proxies = [Proxy(s.port, tls=tls_server_context(cert, key)) for s in cluster.servers]
        try:
            for server, proxy in zip(cluster.servers, proxies, strict=True):
                proxy.start()
                with redis.Redis(host=LOOPBACK, port=server.port) as node:
                    node.acl_setuser(
                        "admin", enabled=True, nopass=True, keys="*", commands=["+@all"]
                    )
                    node.config_set("cluster-announce-hostname", "localhost")
                    node.config_set("cluster-preferred-endpoint-type", "hostname")
                    node.config_set("cluster-announce-port", proxy.port)
            endpoint = ServerlessLike(cluster, proxies, cert)
            _wait_for_announced_endpoints(endpoint)
            yield endpoint
        finally:
            for proxy in proxies:
                proxy.close()


def _wait_for_announced_endpoints(endpoint: ServerlessLike, timeout: float = 20) -> None:
    """Until every node tells clients only of ``localhost`` and proxy ports (gossip spreads it)."""
    wanted = {("localhost", proxy.port) for proxy in endpoint.proxies}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = []
        for node in endpoint.nodes():
            slots = node.execute_command("CLUSTER", "SLOTS")
            seen.append({(_text(s[2][0]), int(s[2][1])) for s in slots})
        if all(endpoints == wanted for endpoints in seen):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nodes still announce {seen}, not {wanted}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture
def template_env(
    serverless: ServerlessLike, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Sets what the template sets with EnableRedis=true; ``apply`` adds RedisIamAuth=true."""
    monkeypatch.setattr(stratacache.tiers, "_shared", {})  # a fresh tier for these settings
    monkeypatch.setenv("SSL_CERT_FILE", serverless.cert)
    for node in serverless.nodes():
        node.flushall()
    env = template_redis_env({"EnableRedis": "true"}, "localhost", serverless.proxies[0].port)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    for tier in stratacache.tiers._shared.values():
        tier.close()


def squares_of(namespace: str) -> Any:
    @cached_many(ttl=60, namespace=namespace)
    def squares(ids: list[str]) -> dict[str, int]:
        return {i: int(i.split("-")[1]) ** 2 for i in ids}

    return squares


def test_the_template_sets_cluster_mode_and_tls(template_env: dict[str, str]) -> None:
    assert template_env["STRATACACHE_REDIS_CLUSTER"] == "true"
    assert template_env["STRATACACHE_REDIS_URL"].startswith("rediss://localhost:")
    assert template_env["STRATACACHE_REDIS_IAM_USER"] == ""


def test_with_the_template_settings_batches_work_across_slots_over_tls(
    template_env: dict[str, str], serverless: ServerlessLike
) -> None:
    accepted = sum(proxy.accepted for proxy in serverless.proxies)
    squares = squares_of("serverless")
    (l2,) = [tier for tier in tiers_from_env() if isinstance(tier, RedisTier)]
    assert l2.cluster is True
    assert squares(IDS) == {i: int(i.split("-")[1]) ** 2 for i in IDS}
    again = squares_of("serverless")  # a new environment: empty L1, one MGET per slot
    assert again(IDS) == squares(IDS)
    assert again.cache.stats()["L2"] == {"hits": len(IDS), "misses": 0, "errors": 0}
    again.invalidate(IDS[:10])  # DEL per slot
    again.cache.clear()  # SCAN on every primary, then UNLINK per slot
    assert again.cache.stats()["L2"]["errors"] == 0
    third = squares_of("serverless")
    third(IDS)
    assert third.cache.stats()["L2"] == {"hits": 0, "misses": len(IDS), "errors": 0}
    nodes_used = {l2.client.get_node_from_key(l2.key_prefix + k).name for k in ("a", "b", "c")}
    assert len(nodes_used) > 1
    assert sum(proxy.accepted for proxy in serverless.proxies) > accepted  # over TLS


def test_without_cluster_mode_the_same_batches_fail_open(
    template_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the template sets STRATACACHE_REDIS_CLUSTER: CROSSSLOT and MOVED, counted as errors."""
    monkeypatch.setenv("STRATACACHE_REDIS_CLUSTER", "false")
    squares = squares_of("not-clustered")
    assert squares(IDS) == {i: int(i.split("-")[1]) ** 2 for i in IDS}  # still answered
    assert squares.cache.stats()["L2"]["errors"] > 0


def test_iam_settings_sign_in_as_the_iam_user_with_a_serverless_token(
    template_env: dict[str, str], serverless: ServerlessLike, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = template_redis_env(
        {"EnableRedis": "true", "RedisIamAuth": "true"}, "localhost", serverless.proxies[0].port
    )
    assert iam["STRATACACHE_REDIS_IAM_USER"] == f"stratacache-{STAGE}"
    assert iam["STRATACACHE_REDIS_IAM_SERVERLESS"] == "true"
    for name, value in iam.items():
        monkeypatch.setenv(name, value)
    # Valkey cannot check an IAM token: the user takes any password, the default user none.
    for node in serverless.nodes():
        node.acl_setuser(iam["STRATACACHE_REDIS_IAM_USER"], enabled=True, nopass=True,
                         keys="*", commands=["+@all"])  # fmt: skip
        node.acl_setuser("default", enabled=False)
    try:
        squares = squares_of("iam")
        assert squares(IDS) == squares_of("iam")(IDS)
        (l2,) = [tier for tier in squares.cache.tiers if isinstance(tier, RedisTier)]
        assert l2.cluster is True
        assert l2.client.acl_whoami() == f"stratacache-{STAGE}"
        assert squares.cache.stats()["L2"]["errors"] == 0
        provider = l2._options["credential_provider"]
        assert isinstance(provider, ElastiCacheIAMProvider)
        assert (provider.user_id, provider.cache_name, provider.serverless) == (
            f"stratacache-{STAGE}", f"stratacache-{STAGE}", True
        )  # fmt: skip
        assert provider.signed >= 1
        user, token = provider.get_credentials()
        assert user == f"stratacache-{STAGE}"
        assert token.startswith(f"stratacache-{STAGE}/?")
        assert "ResourceType=ServerlessCache" in token
        assert f"User=stratacache-{STAGE}" in token
        with pytest.raises(redis.AuthenticationError):  # nobody else gets in
            redis.Redis(host="localhost", port=serverless.proxies[0].port, ssl=True).ping()
    finally:
        for node in serverless.nodes():
            node.acl_setuser("default", enabled=True, nopass=True, keys="*", commands=["+@all"])
