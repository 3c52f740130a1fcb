"""Every read path honours another environment's ``invalidate_all()`` within the check period.

``STRATACACHE_GENERATION_CHECK`` (here ``generation_check=5``) bounds how long an
environment may serve its L1 copy after another environment bumped the
generation: the decorators' fast path, ``get``, ``has``, ``ttl``, ``get_many``
and ``get_or_compute`` alike. The other environment is a real process on the
same Valkey and moto; this one's clock is a fake, so nothing sleeps.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import DynamoDBTier, MemoryTier, RedisTier, Tier, TieredCache, cached_tiered
from tests.support import FakeClock

CHECK = 5.0

_OTHER_ENVIRONMENT = textwrap.dedent(
    """
    import sys
    import boto3
    from stratacache import DynamoDBTier, MemoryTier, RedisTier, TieredCache

    url, endpoint, table, namespace = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    tiers = [MemoryTier(), RedisTier(url), DynamoDBTier(table, client=dynamodb)]
    TieredCache(tiers, namespace=namespace).invalidate_all()
    """
)

READS: dict[str, tuple[Callable[[TieredCache], object], object, object]] = {
    # read path: (how to read "k", what it answers before, what it answers after the bump)
    "get": (lambda cache: cache.get("k"), "old", None),
    "has": (lambda cache: cache.has("k"), True, False),
    "ttl": (lambda cache: cache.ttl("k") is not None, True, False),
    "get_many": (lambda cache: cache.get_many(["k"]), {"k": "old"}, {}),
    "get_or_compute": (lambda cache: cache.get_or_compute("k", lambda: "new"), "old", "new"),
}


def bump_elsewhere(url: str, endpoint: str, table: str, *namespace: str) -> None:
    subprocess.run(
        [sys.executable, "-c", _OTHER_ENVIRONMENT, url, endpoint, table, *namespace],
        check=True,
        timeout=60,
    )


@pytest.mark.parametrize("path", list(READS))
def test_a_read_path_serves_its_l1_copy_no_longer_than_the_generation_check(
    path: str, redis_client: Any, redis_server: Any, moto_server: Any, dynamodb_client: Any,
    table_name: str,
) -> None:  # fmt: skip
    read, before, after = READS[path]
    clock = FakeClock()
    namespace = f"bound-{path}"
    shared = DynamoDBTier(table_name, client=dynamodb_client)
    tiers: list[Tier] = [MemoryTier(), RedisTier(client=redis_client), shared]
    here = TieredCache(tiers, namespace=namespace, ttl=300, generation_check=CHECK, clock=clock)
    here.set("k", "old")
    assert read(here) == before  # reads the generation once, then serves L1
    bump_elsewhere(redis_server.url, moto_server.endpoint, table_name, namespace)
    redis_client.delete(here.full_key("k"))  # so only this environment's L1 holds "old"
    clock.advance(CHECK - 1)
    assert read(here) == before  # within the bound, L1 may still answer
    clock.advance(1.001)
    assert read(here) == after  # past it, never


def test_the_decorators_fast_path_honours_the_bound_too(
    redis_client: Any, redis_server: Any, moto_server: Any, table_name: str,
    dynamodb_client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    clock = FakeClock()
    version = ["old"]
    shared = DynamoDBTier(table_name, client=dynamodb_client)
    tiers: list[Tier] = [MemoryTier(timer=clock), RedisTier(client=redis_client), shared]

    @cached_tiered(ttl=300, tiers=tiers, namespace="bound-decorated")
    def price(sku: str) -> str:
        return version[0]

    price.cache._engine.chain.generation.clock = clock
    monkeypatch.setattr(price.cache._engine.chain.generation, "check_every", CHECK)
    assert price("a") == "old"
    version[0] = "new"
    bump_elsewhere(redis_server.url, moto_server.endpoint, table_name, *price.cache._parts)
    clock.advance(CHECK - 1)
    assert price("a") == "old"
    clock.advance(1.001)
    assert price("a") == "new"
    assert not math.isinf(price.cache._engine.chain.generation.due)


def test_http_answers_honour_the_bound_too(
    redis_client: Any, redis_server: Any, moto_server: Any, dynamodb_client: Any,
    table_name: str,
) -> None:  # fmt: skip
    from stratacache.http import HttpCache

    clock = FakeClock()
    shared = DynamoDBTier(table_name, client=dynamodb_client)
    tiers: list[Tier] = [MemoryTier(), RedisTier(client=redis_client), shared]
    here = TieredCache(tiers, namespace="bound-http", ttl=300, generation_check=CHECK, clock=clock)
    http = HttpCache(cache=here)
    body = ["old"]
    event = {"httpMethod": "GET", "path": "/quote"}

    def answer() -> Any:
        return http.handle(event, lambda: {"statusCode": 200, "body": body[0]})["body"]

    assert answer() == "old"
    body[0] = "new"
    bump_elsewhere(redis_server.url, moto_server.endpoint, table_name, "bound-http")
    for key in redis_client.scan_iter(match="bound-http|*"):
        redis_client.delete(key)  # so only this environment's L1 holds the old answer
    clock.advance(CHECK - 1)
    assert answer() == "old"  # within the bound, L1 may still answer
    clock.advance(1.001)
    assert answer() == "new"  # past it, never
