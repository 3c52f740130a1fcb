"""HTTP answers shared through a real Redis: one ETag everywhere, max-age from what is left."""

from __future__ import annotations

from typing import Any

from stratacache import MemoryTier, RedisTier, TieredCache
from stratacache.http import HttpCache
from tests.support import FakeClock, entry_keys, function_url_event, rest_v1_event


def environment(redis_tier: RedisTier, clock: FakeClock) -> HttpCache:
    """A new execution environment: an empty L1 in front of the shared Redis."""
    cache = TieredCache(
        [MemoryTier(timer=clock), redis_tier], ttl=120, namespace="http-it", clock=clock
    )
    return HttpCache(ttl=120, cache=cache, clock=clock)


def test_a_second_environment_serves_the_same_tag_with_the_remaining_lifetime(
    redis_tier: RedisTier, redis_client: Any
) -> None:
    clock = FakeClock()
    calls: list[str] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(event["rawPath"])
        return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "quote"}

    first = environment(redis_tier, clock)(handler)(function_url_event(), None)
    assert len(entry_keys(redis_client)) == 1
    clock.advance(50)
    second_env = environment(redis_tier, clock)(handler)
    later = second_env(function_url_event(), None)
    assert later["headers"]["ETag"] == first["headers"]["ETag"]
    assert later["headers"]["Cache-Control"] == "max-age=70, s-maxage=70"
    revalidated = second_env(
        function_url_event(headers={"If-None-Match": first["headers"]["ETag"]}), None
    )
    assert revalidated["statusCode"] == 304
    assert calls == ["/quote/AMZN"]


def test_an_error_answer_never_reaches_redis(redis_tier: RedisTier, redis_client: Any) -> None:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 502, "body": "bad gateway"}

    answer = environment(redis_tier, FakeClock())(handler)(rest_v1_event(), None)
    assert answer["statusCode"] == 502
    assert entry_keys(redis_client) == []
