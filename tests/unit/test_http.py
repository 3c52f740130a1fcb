"""HTTP caching: ETag and 304, Cache-Control from the remaining lifetime, errors never kept.

Events are the shapes API Gateway and Lambda send: REST APIs (payload 1.0),
HTTP APIs (2.0) and Function URLs (2.0, ``$default`` route, ``lambda-url`` domain).
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratacache import ConfigurationError, MemoryTier, TieredCache
from stratacache.freshness import Freshness
from stratacache.http import HttpCache, HttpRequest, entity_tag, http_cached
from tests.support import (
    ROOT,
    FakeClock,
    HttpOrigin,
    answer_header,
    function_url_event,
    http_memory_cache,
    http_v2_event,
    memory_http,
    rest_v1_event,
)

EVENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "rest-v1": rest_v1_event,
    "http-v2": http_v2_event,
    "function-url": function_url_event,
}
KINDS = list(EVENTS)

# ---------------------------------------------------------------- helpers


# ---------------------------------------------------------------- ETag and 304


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_request_with_if_none_match_gets_304_and_an_empty_body(
    kind: str, clock: FakeClock
) -> None:
    make_event = EVENTS[kind]
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)

    first = handler(make_event(), None)
    etag = answer_header(first, "ETag")
    assert first["statusCode"] == 200
    assert first["body"] == origin.body
    assert etag == entity_tag(origin.body.encode(), "application/json")

    second = handler(make_event(headers={"If-None-Match": etag}), None)
    assert second["statusCode"] == 304
    assert second["body"] == ""
    assert second["isBase64Encoded"] is False
    assert answer_header(second, "ETag") == etag
    assert answer_header(second, "Cache-Control") == "max-age=60, s-maxage=60"
    assert answer_header(second, "Content-Type") is None  # a 304 describes no body
    assert origin.calls == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_or_foreign_tag_gets_the_full_answer(kind: str, clock: FakeClock) -> None:
    handler = memory_http(clock)(HttpOrigin())
    handler(EVENTS[kind](), None)
    answer = handler(EVENTS[kind](headers={"If-None-Match": '"0000"'}), None)
    assert answer["statusCode"] == 200
    assert answer["body"] == '{"price": 1.5}'


@pytest.mark.parametrize("if_none_match", ["W/{tag}", '"x", {tag}', "*", '{tag},W/"y"'], ids=str)
def test_if_none_match_uses_weak_comparison_and_lists(if_none_match: str, clock: FakeClock) -> None:
    handler = memory_http(clock)(HttpOrigin())
    tag = answer_header(handler(rest_v1_event(), None), "ETag")
    assert tag is not None
    sent = if_none_match.format(tag=tag)
    assert handler(rest_v1_event(headers={"If-None-Match": sent}), None)["statusCode"] == 304


def test_the_first_request_already_gets_304_when_its_tag_matches(clock: FakeClock) -> None:
    body = '{"price": 1.5}'
    tag = entity_tag(body.encode(), "application/json")  # e.g. CloudFront revalidating
    origin = HttpOrigin(body)
    answer = memory_http(clock)(origin)(http_v2_event(headers={"if-none-match": tag}), None)
    assert answer["statusCode"] == 304
    assert origin.calls == 1


def test_the_etag_follows_the_content(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    first = answer_header(handler(rest_v1_event("/quote/AMZN"), None), "ETag")
    origin.body = '{"price": 2.5}'
    other = answer_header(handler(rest_v1_event("/quote/NVDA"), None), "ETag")
    assert first != other
    assert entity_tag(b"x", "text/plain") != entity_tag(b"x", "application/json")
    assert entity_tag(b"x", "text/plain", "gzip") != entity_tag(b"x", "text/plain")


def test_a_base64_body_is_tagged_by_its_bytes_and_kept_encoded(clock: FakeClock) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    origin = HttpOrigin(base64.b64encode(png).decode())
    origin.headers = {"Content-Type": "image/png"}
    origin.extra = {"isBase64Encoded": True}
    handler = memory_http(clock)(origin)
    first = handler(function_url_event(), None)
    assert answer_header(first, "ETag") == entity_tag(png, "image/png")
    again = handler(function_url_event(), None)
    assert again["isBase64Encoded"] is True
    assert base64.b64decode(again["body"]) == png
    assert origin.calls == 1


# ---------------------------------------------------------------- Cache-Control


@pytest.mark.parametrize("kind", KINDS)
def test_cache_control_follows_the_remaining_lifetime(kind: str, clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30, stale_if_error=600)(origin)
    expected = "max-age={0}, s-maxage={0}, stale-while-revalidate=30, stale-if-error=600"

    assert answer_header(handler(EVENTS[kind](), None), "Cache-Control") == expected.format(60)
    clock.advance(25.5)
    assert answer_header(handler(EVENTS[kind](), None), "Cache-Control") == expected.format(34)
    clock.advance(34)
    assert answer_header(handler(EVENTS[kind](), None), "Cache-Control") == expected.format(0)
    assert origin.calls == 1


def test_the_lifetime_comes_from_the_entry_after_promotion_from_a_slower_tier(
    clock: FakeClock,
) -> None:
    shared = MemoryTier(name="L2", timer=clock)  # stands in for Redis: outlives environments

    def environment() -> HttpCache:
        cache = TieredCache(
            [MemoryTier(timer=clock), shared], ttl=60, namespace="test", clock=clock
        )
        return HttpCache(ttl=60, cache=cache, clock=clock)

    origin = HttpOrigin()
    first = environment()(origin)(rest_v1_event(), None)
    clock.advance(40)
    later = environment()(origin)(rest_v1_event(), None)  # a new execution environment
    assert answer_header(later, "Cache-Control") == "max-age=20, s-maxage=20"
    assert answer_header(later, "ETag") == answer_header(first, "ETag")
    assert origin.calls == 1


def test_browser_ttl_caps_max_age_only(clock: FakeClock) -> None:
    answer = memory_http(clock, browser_ttl=0)(HttpOrigin())(rest_v1_event(), None)
    assert answer_header(answer, "Cache-Control") == "max-age=0, s-maxage=60"


def test_a_fresh_answer_is_computed_after_the_lifetime(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    first = answer_header(handler(rest_v1_event(), None), "ETag")
    clock.advance(61)
    origin.body = '{"price": 9.0}'
    answer = handler(rest_v1_event(headers={"If-None-Match": str(first)}), None)
    assert answer["statusCode"] == 200
    assert answer["body"] == '{"price": 9.0}'
    assert answer_header(answer, "Cache-Control") == "max-age=60, s-maxage=60"
    assert origin.calls == 2


def test_the_handler_s_own_cache_control_and_etag_are_replaced(clock: FakeClock) -> None:
    origin = HttpOrigin()
    origin.headers = {"content-type": "text/plain", "cache-control": "max-age=5", "etag": '"a"'}
    answer = memory_http(clock)(origin)(http_v2_event(), None)
    names = [name.lower() for name in answer["headers"]]
    assert names.count("cache-control") == 1
    assert names.count("etag") == 1
    assert answer_header(answer, "Cache-Control") == "max-age=60, s-maxage=60"


# ---------------------------------------------------------------- what is never cached


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 502, 404, 429])
def test_error_responses_are_not_cached(kind: str, status: int, clock: FakeClock) -> None:
    origin = HttpOrigin('{"message": "upstream failed"}', status=status)
    handler = memory_http(clock)(origin)
    first = handler(EVENTS[kind](), None)
    assert first["statusCode"] == status
    assert answer_header(first, "Cache-Control") == "no-store"
    assert answer_header(first, "ETag") is None
    origin.status, origin.body = 200, '{"price": 1.5}'
    answer = handler(EVENTS[kind](), None)
    assert answer["statusCode"] == 200
    assert origin.calls == 2


@pytest.mark.parametrize("status", [302, 304, 206])
def test_other_statuses_pass_through_untouched(status: int, clock: FakeClock) -> None:
    origin = HttpOrigin("", status=status)
    origin.headers = {"Location": "/elsewhere"}
    handler = memory_http(clock)(origin)
    assert handler(rest_v1_event(), None) == origin(rest_v1_event(), None)
    handler(rest_v1_event(), None)
    assert origin.calls == 3  # two through the cache, one direct: nothing kept


def test_an_exception_propagates_and_nothing_is_cached(clock: FakeClock) -> None:
    calls = []

    def failing(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("origin down")
        return {"statusCode": 200, "body": "ok"}

    handler = memory_http(clock)(failing)
    with pytest.raises(RuntimeError, match="origin down"):
        handler(rest_v1_event(), None)
    assert handler(rest_v1_event(), None)["body"] == "ok"
    assert len(calls) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_requests_with_authorization_pass_through_private_unless_asked(
    kind: str, clock: FakeClock
) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    event = EVENTS[kind](headers={"Authorization": "Bearer token-of-ada"})
    for _ in range(2):
        answer = handler(event, None)
        assert answer_header(answer, "Cache-Control") == "private, no-store"
        assert answer_header(answer, "ETag") is None
    assert origin.calls == 2


def test_an_authorizer_principal_counts_as_authorization(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    event = rest_v1_event(authorizer={"principalId": "user-7", "integrationLatency": 3})
    assert HttpRequest.from_event(event) is not None
    handler(event, None)
    handler(event, None)
    assert origin.calls == 2


def test_cache_authorized_keeps_one_private_entry_per_caller(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, cache_authorized=True)(origin)
    ada = http_v2_event(headers={"authorization": "Bearer ada"})
    bob = http_v2_event(headers={"authorization": "Bearer bob"})
    first = handler(ada, None)
    assert answer_header(first, "Cache-Control") == "private, max-age=60"
    assert answer_header(first, "Vary") == "authorization"
    handler(ada, None)
    assert origin.calls == 1
    handler(bob, None)
    assert origin.calls == 2
    handler(http_v2_event(), None)  # anonymous: its own entry, shared
    assert origin.calls == 3


@pytest.mark.parametrize(
    ("headers", "extra"),
    [
        ({"Set-Cookie": "session=abc; Secure"}, {}),
        ({}, {"cookies": ["session=abc; Secure"]}),
        ({"Vary": "Cookie"}, {}),
        ({"Vary": "Accept, Authorization"}, {}),
        ({"Cache-Control": "no-store"}, {}),
        ({"Cache-Control": "no-cache"}, {}),
        ({"Cache-Control": "private, max-age=10"}, {}),
    ],
    ids=[
        "set-cookie",
        "v2-cookies",
        "vary-cookie",
        "vary-authorization",
        "no-store",
        "no-cache",
        "private",
    ],
)
def test_answers_that_are_someone_s_own_or_refuse_caching_are_not_kept(
    headers: dict[str, str], extra: dict[str, Any], clock: FakeClock
) -> None:
    origin = HttpOrigin()
    origin.headers.update(headers)
    origin.extra = extra
    handler = memory_http(clock)(origin)
    first = handler(http_v2_event(), None)
    handler(http_v2_event(), None)
    assert origin.calls == 2
    assert answer_header(first, "ETag") is None
    assert first == origin(http_v2_event(), None)  # untouched


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_pass_through(kind: str, method: str, clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    first = handler(EVENTS[kind](method=method), None)
    handler(EVENTS[kind](method=method), None)
    assert origin.calls == 2
    assert first == origin(EVENTS[kind](), None)


def test_events_that_are_not_http_pass_through(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    events: list[dict[str, Any]] = [{"warmer": True}, {"Records": []}, {"pathParameters": {}}]
    for event in events:
        handler(event, None)
    assert origin.calls == 3


def test_stratacache_disabled_passes_everything_through(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setenv("STRATACACHE_DISABLED", "1")
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    handler(rest_v1_event(), None)
    answer = handler(rest_v1_event(), None)
    assert origin.calls == 2
    assert answer_header(answer, "ETag") is None


# ---------------------------------------------------------------- grace and stale-if-error


def test_a_stale_answer_is_served_when_the_handler_raises(clock: FakeClock) -> None:
    origin = HttpOrigin()
    http = memory_http(clock, grace=30)
    handler = http(origin)
    good = handler(rest_v1_event(), None)
    clock.advance(70)  # past ttl, within grace

    def failing(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise TimeoutError("upstream timed out")

    answer = http(failing)(rest_v1_event(), None)
    assert answer["statusCode"] == 200
    assert answer["body"] == good["body"]
    assert answer_header(answer, "Cache-Control") == (
        "max-age=0, s-maxage=0, stale-while-revalidate=30, stale-if-error=30"
    )


def test_a_stale_answer_is_served_instead_of_a_5xx(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30)(origin)
    handler(rest_v1_event(), None)
    clock.advance(70)
    origin.status = 503
    assert handler(rest_v1_event(), None)["statusCode"] == 200
    clock.advance(30)  # past the grace period: nothing stale left to serve
    assert handler(rest_v1_event(), None)["statusCode"] == 503


def test_a_stale_answer_is_refreshed_by_the_request_that_finds_it(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30)(origin)
    handler(rest_v1_event(), None)
    clock.advance(70)
    origin.body = '{"price": 3.0}'
    assert handler(rest_v1_event(), None)["body"] == '{"price": 3.0}'
    assert handler(rest_v1_event(), None)["body"] == '{"price": 3.0}'
    assert origin.calls == 2


# ---------------------------------------------------------------- keys


def test_query_order_does_not_matter_but_values_do(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    handler(rest_v1_event(query={"a": ["1"], "b": ["2"]}), None)
    handler(rest_v1_event(query={"b": ["2"], "a": ["1"]}), None)
    assert origin.calls == 1
    handler(rest_v1_event(query={"a": ["1"], "b": ["3"]}), None)
    assert origin.calls == 2
    handler(http_v2_event(query={"b": ["2"], "a": ["1"]}), None)  # same resource, either payload
    assert origin.calls == 2


def test_vary_headers_select_the_entry_and_are_announced(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, vary=["Accept-Language"])(origin)
    english = handler(http_v2_event(headers={"Accept-Language": "en"}), None)
    handler(http_v2_event(headers={"Accept-Language": "en"}), None)
    handler(http_v2_event(headers={"Accept-Language": "fr"}), None)
    assert origin.calls == 2
    assert answer_header(english, "Vary") == "accept-language, authorization"


def test_head_is_answered_from_the_get_entry_without_a_body(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    head_first = handler(rest_v1_event(method="HEAD"), None)  # a miss: not stored
    get = handler(rest_v1_event(), None)
    head = handler(rest_v1_event(method="HEAD"), None)
    assert head_first == origin(rest_v1_event(), None)
    assert origin.calls == 3
    assert head["body"] == ""
    assert answer_header(head, "ETag") == answer_header(get, "ETag")
    assert handler(rest_v1_event(), None)["body"] == get["body"]


def test_head_gets_304_too_when_the_tag_matches(clock: FakeClock) -> None:
    handler = memory_http(clock)(HttpOrigin())
    tag = str(answer_header(handler(http_v2_event(), None), "ETag"))
    answer = handler(http_v2_event(method="HEAD", headers={"If-None-Match": tag}), None)
    assert answer["statusCode"] == 304
    assert answer["body"] == ""


def test_two_handlers_do_not_share_entries(clock: FakeClock) -> None:
    cache = http_memory_cache(clock)

    @http_cached(ttl=60, cache=cache, clock=clock)
    def one(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 200, "body": "one"}

    @http_cached(ttl=60, cache=cache, clock=clock)
    def two(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 200, "body": "two"}

    assert one(rest_v1_event(), None)["body"] == "one"
    assert two(rest_v1_event(), None)["body"] == "two"


# ---------------------------------------------------------------- HTTP API bare values


@pytest.mark.parametrize("kind", ["http-v2", "function-url"])
def test_a_bare_return_value_of_a_2_0_handler_is_cached_as_200_json(
    kind: str, clock: FakeClock
) -> None:
    calls = []

    @http_cached(ttl=60, cache=http_memory_cache(clock), clock=clock)
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(1)
        return {"symbol": "AMZN", "price": 1.5}

    first = handler(EVENTS[kind](), None)
    assert first["statusCode"] == 200
    assert json.loads(first["body"]) == {"symbol": "AMZN", "price": 1.5}
    assert answer_header(first, "content-type") == "application/json"
    second = handler(
        EVENTS[kind](headers={"If-None-Match": str(answer_header(first, "ETag"))}), None
    )
    assert second["statusCode"] == 304
    assert len(calls) == 1


# ---------------------------------------------------------------- Powertools routes

RESOLVERS: dict[str, type[ApiGatewayResolver]] = {
    "rest-v1": APIGatewayRestResolver,
    "http-v2": APIGatewayHttpResolver,
    "function-url": LambdaFunctionUrlResolver,
}

LAMBDA_CONTEXT = cast("LambdaContext", object())


@pytest.mark.parametrize("kind", KINDS)
def test_powertools_routes_get_etags_and_304_through_the_middleware(
    kind: str, clock: FakeClock
) -> None:
    app = RESOLVERS[kind]()
    http = memory_http(clock)
    calls = []

    @app.get("/quote/<symbol>", middlewares=[http.middleware])
    def quote(symbol: str) -> dict[str, Any]:
        calls.append(symbol)
        return {"symbol": symbol, "price": 1.5}

    @app.get("/private", middlewares=[http.middleware])
    def private() -> Response[str]:
        calls.append("private")
        return Response(200, "text/plain", "mine", cookies=[Cookie("s", "1")])

    first = app.resolve(EVENTS[kind](), LAMBDA_CONTEXT)
    etag = answer_header(first, "ETag") or first.get("multiValueHeaders", {}).get("ETag", [None])[0]
    assert first["statusCode"] == 200
    assert json.loads(first["body"]) == {"symbol": "AMZN", "price": 1.5}
    assert etag is not None
    second = app.resolve(EVENTS[kind](headers={"If-None-Match": etag}), LAMBDA_CONTEXT)
    assert second["statusCode"] == 304
    assert not second["body"]
    assert calls == ["AMZN"]

    app.resolve(EVENTS[kind]("/private"), LAMBDA_CONTEXT)
    answer = app.resolve(EVENTS[kind]("/private"), LAMBDA_CONTEXT)
    assert calls == ["AMZN", "private", "private"]
    assert "s=1" in json.dumps(answer)  # the cookie survives the pass-through


# ---------------------------------------------------------------- the example and settings


def test_the_example_handler_answers_304_to_a_matching_if_none_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    monkeypatch.setenv("QUOTE_ORIGIN_DELAY", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "StratacacheTest")
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "app"))
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    app = importlib.import_module("handler")
    first = app.handler(http_v2_event(), None)
    assert json.loads(first["body"])["symbol"] == "AMZN"
    assert answer_header(first, "Cache-Control") == "max-age=300, s-maxage=300, " + (
        "stale-while-revalidate=30, stale-if-error=30"
    )
    again = app.handler(
        http_v2_event(headers={"If-None-Match": str(answer_header(first, "ETag"))}), None
    )
    assert again["statusCode"] == 304
    monkeypatch.delitem(sys.modules, "handler")


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"ttl": -1}, "ttl"),
        ({"grace": 0}, "grace"),
        ({"browser_ttl": -5}, "browser_ttl"),
        ({"vary": ["Authorization"]}, "vary"),
        ({"name": "has space"}, "name"),
    ],
)
def test_bad_settings_raise_configuration_error_naming_them(
    options: dict[str, Any], setting: str, clock: FakeClock
) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        HttpCache(cache=http_memory_cache(clock), **options)


def test_the_decorator_works_bare_and_keeps_the_handler_s_name() -> None:
    @http_cached
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 200, "body": "x"}

    assert handler.__name__ == "handler"
    assert isinstance(handler.http_cache, HttpCache)
    assert answer_header(handler(copy.deepcopy(rest_v1_event()), None), "ETag") is not None


# ---------------------------------------------------------------- Vary: Authorization


@pytest.mark.parametrize("kind", KINDS)
def test_every_answer_from_a_stored_entry_varies_on_authorization(
    kind: str, clock: FakeClock
) -> None:
    """RFC 9110 §12.5.5: the answer depends on Authorization, so a shared cache must know."""
    handler = memory_http(clock, grace=30)(HttpOrigin())
    first = handler(EVENTS[kind](), None)
    tag = str(answer_header(first, "ETag"))
    again = handler(EVENTS[kind](), None)
    revalidated = handler(EVENTS[kind](headers={"If-None-Match": tag}), None)
    head = handler(EVENTS[kind](method="HEAD"), None)
    clock.advance(70)  # stale within grace: refreshed, still a stored answer
    refreshed = handler(EVENTS[kind](), None)
    for answer in (first, again, revalidated, head, refreshed):
        assert answer_header(answer, "Vary") == "authorization"
        assert answer_header(answer, "Cache-Control") is not None
        assert "private" not in str(answer_header(answer, "Cache-Control"))


# ---------------------------------------------------------------- 304 when the handler ran


@pytest.mark.parametrize("kind", KINDS)
def test_a_304_made_when_the_handler_had_to_run_has_the_validator_headers_only(
    kind: str, clock: FakeClock
) -> None:
    origin = HttpOrigin()
    origin.headers = {
        "Content-Type": "application/json",
        "Content-Location": "/quote/AMZN.json",
        "Expires": "Thu, 01 Jan 2026 00:00:00 GMT",
        "X-Origin": "quotes-v2",
    }
    handler = memory_http(clock, grace=30, vary=["Accept-Language"])(origin)
    tag = entity_tag(origin.body.encode(), "application/json")
    wanted = {"If-None-Match": tag, "Accept-Language": "en"}

    cold = handler(EVENTS[kind](headers=wanted), None)  # a miss: the handler runs
    assert origin.calls == 1
    clock.advance(70)  # stale within grace: this request runs the handler again
    refreshed = handler(EVENTS[kind](headers=wanted), None)
    assert origin.calls == 2

    for answer in (cold, refreshed):
        assert answer["statusCode"] == 304
        assert answer["body"] == ""
        assert answer["isBase64Encoded"] is False
        assert answer["headers"] == {
            "Cache-Control": (
                "max-age=60, s-maxage=60, stale-while-revalidate=30, stale-if-error=30"
            ),
            "ETag": tag,
            "Vary": "accept-language, authorization",
            "Content-Location": "/quote/AMZN.json",
            "Expires": "Thu, 01 Jan 2026 00:00:00 GMT",
        }
        assert "multiValueHeaders" not in answer


# ---------------------------------------------------------------- invalidate and refresh


def test_a_handler_s_invalidate_takes_a_path_or_an_event_and_reaches_the_next_request(
    clock: FakeClock,
) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, vary=["Accept-Language"])(origin)
    handler(rest_v1_event(query={"a": ["1"]}, headers={"Accept-Language": "fr"}), None)
    assert origin.calls == 1
    assert handler.invalidate("/quote/AMZN") is False  # another entry: no query, no header
    handler(rest_v1_event(query={"a": ["1"]}, headers={"Accept-Language": "fr"}), None)
    assert origin.calls == 1
    assert handler.invalidate("/quote/AMZN", query={"a": "1"}, headers={"Accept-Language": "fr"})
    handler(http_v2_event(query={"a": ["1"]}, headers={"Accept-Language": "fr"}), None)
    assert origin.calls == 2
    assert handler.invalidate(
        function_url_event(query={"a": ["1"]}, headers={"accept-language": "fr"})
    )
    assert not handler.invalidate(
        "/quote/AMZN", query=[("a", "1")], headers={"accept-language": "fr"}
    )


def test_cache_authorized_answers_are_invalidated_per_caller(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, cache_authorized=True)(origin)
    handler(http_v2_event(headers={"Authorization": "Bearer ada"}), None)
    handler(rest_v1_event(authorizer={"principalId": "bob"}), None)
    assert handler.invalidate("/quote/AMZN", headers={"Authorization": "Bearer ada"})
    assert handler.invalidate("/quote/AMZN", principal="bob")
    assert not handler.invalidate("/quote/AMZN")


def test_refresh_runs_the_handler_and_stores_its_new_answer(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    old = handler(rest_v1_event(), None)
    origin.body = '{"price": 2.0}'
    new = handler.refresh(rest_v1_event())
    assert origin.calls == 2
    assert new["body"] == '{"price": 2.0}'
    assert answer_header(new, "ETag") != answer_header(old, "ETag")
    assert handler(http_v2_event(), None)["body"] == '{"price": 2.0}'  # kept
    assert origin.calls == 2


def test_http_cache_refresh_takes_the_produce_function(clock: FakeClock) -> None:
    http = memory_http(clock)
    http.handle(rest_v1_event(), lambda: {"statusCode": 200, "body": "old"})
    answer = http.refresh(rest_v1_event(), lambda: {"statusCode": 200, "body": "new"})
    assert answer["body"] == "new"
    assert http.handle(rest_v1_event(), lambda: {"statusCode": 500})["body"] == "new"


def test_a_refresh_whose_handler_fails_leaves_the_old_answer_invalidated(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30)(origin)
    handler(rest_v1_event(), None)
    origin.status = 503
    assert handler.refresh(rest_v1_event())["statusCode"] == 503  # nothing stale to serve
    origin.status, origin.body = 200, '{"price": 4.0}'
    assert handler(rest_v1_event(), None)["body"] == '{"price": 4.0}'
    assert origin.calls == 3


@pytest.mark.parametrize(
    ("target", "problem"),
    [("quote/AMZN", "starts with '/'"), ({"Records": []}, "event"), (42, "event")],
)
def test_invalidate_names_what_is_wrong_with_its_target(
    target: object, problem: str, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match=problem):
        memory_http(clock).invalidate(target)


# ---------------------------------------------------------------- sharing a computation


def test_a_request_that_shared_an_answer_not_kept_runs_its_own_handler(clock: FakeClock) -> None:
    """An answer that sets a cookie is someone's own: another request never gets it."""
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(1)
        number = len(calls)
        if number == 1:
            entered.set()
            assert release.wait(30)
        return {
            "statusCode": 200,
            "headers": {"Set-Cookie": f"session={number}"},
            "body": str(number),
        }

    cached = memory_http(clock)(handler)
    answers: dict[str, Any] = {}

    def ask(name: str) -> None:
        answers[name] = cached(rest_v1_event(), None)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert entered.wait(30)
    joiner = threading.Thread(target=ask, args=("joiner",))
    joiner.start()
    wait_until_parked_on_a_flight(joiner)
    release.set()
    first.join(30)
    joiner.join(30)
    assert answers["first"]["body"] == "1"
    assert answers["joiner"]["body"] == "2"  # its own call, not the first one's cookie
    assert answer_header(answers["joiner"], "Set-Cookie") == "session=2"


@pytest.mark.parametrize(
    ("status", "statuses", "cache_control"),
    [
        (400, None, "no-store"),
        (503, None, "no-store"),
        (302, None, None),
        (404, {200, 404}, None),  # a status to keep: not kept only for its cookie
    ],
    ids=["400", "503", "302", "404-kept-status"],
)
def test_a_request_that_shared_an_error_runs_its_own_handler_and_gets_its_own_error(
    status: int, statuses: set[int] | None, cache_control: str | None, clock: FakeClock
) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(1)
        number = len(calls)
        if number == 1:
            entered.set()
            assert release.wait(30)
        return {
            "statusCode": status,
            "headers": {"Set-Cookie": f"session={number}"},
            "body": str(number),
        }

    options: dict[str, Any] = {} if statuses is None else {"statuses": statuses}
    cached = memory_http(clock, **options)(handler)
    answers: dict[str, Any] = {}

    def ask(name: str) -> None:
        answers[name] = cached(rest_v1_event(), None)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert entered.wait(30)
    joiner = threading.Thread(target=ask, args=("joiner",))
    joiner.start()
    wait_until_parked_on_a_flight(joiner)
    release.set()
    first.join(30)
    joiner.join(30)
    for name, body in (("first", "1"), ("joiner", "2")):
        answer = answers[name]
        assert answer["statusCode"] == status
        assert answer["body"] == body
        assert answer_header(answer, "Set-Cookie") == f"session={body}"
        assert answer_header(answer, "Cache-Control") == cache_control


def wait_until_parked_on_a_flight(thread: threading.Thread) -> None:
    """Poll the thread's stack until it waits on another caller's computation."""
    for _ in range(3000):
        frame = sys._current_frames().get(thread.ident or -1)
        while frame is not None:
            code = frame.f_code
            if (
                code.co_name == "do"
                and code.co_filename.endswith("singleflight.py")
                and frame.f_locals.get("leader") is False
            ):
                return
            frame = frame.f_back
        time.sleep(0.01)
    raise AssertionError("the second request never joined the first one's computation")


def test_concurrent_requests_for_a_cold_path_share_one_handler_call(clock: FakeClock) -> None:
    entered, release = threading.Event(), threading.Event()
    origin = HttpOrigin()

    def held(event: dict[str, Any], context: object) -> dict[str, Any]:
        entered.set()
        assert release.wait(30)
        return origin(event, context)

    handler = memory_http(clock)(held)
    answers: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: answers.append(handler(rest_v1_event(), None)))
    first.start()
    assert entered.wait(30)
    tag = entity_tag(origin.body.encode(), "application/json")
    joiner = threading.Thread(
        target=lambda: answers.append(handler(http_v2_event(headers={"If-None-Match": tag}), None))
    )
    joiner.start()
    wait_until_parked_on_a_flight(joiner)
    release.set()
    first.join(30)
    joiner.join(30)
    assert origin.calls == 1
    assert sorted(answer["statusCode"] for answer in answers) == [200, 304]  # each its own


def test_while_one_request_refreshes_a_stale_answer_the_others_get_it_with_max_age_0(
    clock: FakeClock,
) -> None:
    origin = HttpOrigin()
    entered, release = threading.Event(), threading.Event()
    gate = {"on": False}

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        if gate["on"]:
            entered.set()
            assert release.wait(30)
        return origin(event, context)

    cached = memory_http(clock, grace=30)(handler)
    cached(rest_v1_event(), None)
    clock.advance(70)
    origin.body, gate["on"] = '{"price": 2.0}', True
    refreshing = threading.Thread(target=cached, args=(rest_v1_event(), None))
    refreshing.start()
    assert entered.wait(30)
    meanwhile = cached(rest_v1_event(), None)
    release.set()
    refreshing.join(30)
    assert meanwhile["body"] == '{"price": 1.5}'
    assert answer_header(meanwhile, "Cache-Control") == (
        "max-age=0, s-maxage=0, stale-while-revalidate=30, stale-if-error=30"
    )
    assert origin.calls == 2
    assert cached(rest_v1_event(), None)["body"] == '{"price": 2.0}'


@pytest.mark.parametrize(
    ("options", "cache_options", "problem"),
    [
        ({"ttl": 30}, {}, "ttl=30 differs from the cache's ttl"),
        ({"grace": 10}, {"freshness": Freshness(grace=30)}, "grace=10 differs"),
        ({}, {"freshness": Freshness(jitter=0.1)}, "jitter"),
        ({}, {"ttl": None}, "cache must have a ttl"),
    ],
)
def test_a_given_cache_s_ttl_and_grace_are_the_answers_own(
    options: dict[str, Any], cache_options: dict[str, Any], problem: str, clock: FakeClock
) -> None:
    cache = TieredCache([MemoryTier(timer=clock)], **{"ttl": 60, "clock": clock, **cache_options})
    with pytest.raises(ConfigurationError, match=problem):
        HttpCache(cache=cache, **options)
    if not options:
        return
    taken = HttpCache(cache=cache)  # left unset, they come from the cache
    assert (taken.ttl, taken.grace) == (cache.default_ttl, cache.freshness.grace)


def test_an_entry_of_another_format_under_the_key_is_replaced(clock: FakeClock) -> None:
    origin = HttpOrigin()
    http = memory_http(clock)
    request = HttpRequest.from_event(rest_v1_event())
    assert request is not None
    http.cache.set(http.key(request), {"v": 0, "body": "an older layout"})
    answer = http(origin)(rest_v1_event(), None)
    assert answer["body"] == origin.body
    assert http.cache.get(http.key(request))["body"] == origin.body  # type: ignore[index]
    assert origin.calls == 1


def test_an_entry_of_another_format_rewritten_again_and_again_is_given_up_on_after_two_tries(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Say an environment still on an older release writes its layout back each time."""
    http = memory_http(clock)
    request = HttpRequest.from_event(rest_v1_event())
    assert request is not None
    key = http.key(request)
    older = {"v": 0, "body": "an older layout"}
    http.cache.set(key, older)
    deletes: list[str] = []
    delete = http.cache.delete

    def delete_and_see_it_written_back(name: str) -> bool:
        deletes.append(name)
        deleted = delete(name)
        http.cache.set(name, older)
        return deleted

    monkeypatch.setattr(http.cache, "delete", delete_and_see_it_written_back)
    origin = HttpOrigin()
    answer = http(origin)(rest_v1_event(), None)
    assert answer == origin(rest_v1_event(), None)  # the handler's own, untouched
    assert deletes == [key, key]
