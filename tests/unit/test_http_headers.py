"""The answer's headers: exactly what a stored, passed or refused HTTP answer carries.

``Cache-Control``, ``ETag`` and ``Vary`` are ours on a stored answer; a 304 keeps the
validator headers only; an answer that is not kept is the handler's own, with
``Cache-Control`` added only where it must be. Fast: no server, one memory tier.
"""

from __future__ import annotations

import base64
import datetime
import math
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratacache import ConfigurationError, MemoryTier, TieredCache
from stratacache.freshness import Freshness
from stratacache.http import HttpCache, HttpRequest, entity_tag, http_cached
from tests.support import (
    FakeClock,
    HttpOrigin,
    answer_header,
    http_memory_cache,
    http_v2_event,
    memory_http,
    rest_v1_event,
)

JSON = '{"price": 1.5}'
TAG = entity_tag(JSON.encode(), "application/json")
LAMBDA_CONTEXT = cast("LambdaContext", object())


def ok(body: str = JSON, **fields: Any) -> dict[str, Any]:
    """A handler's 200 answer with a JSON body, and any other fields."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": body,
        **fields,
    }


# ---------------------------------------------------------------- the ETag


def test_the_etag_is_the_same_in_every_release() -> None:
    """A tag that changed with a deploy would make every browser and CDN fetch again."""
    assert entity_tag(b"{}", "application/json") == '"eca5d9e203f414b6b3fc27ce63478ab3"'
    assert entity_tag(b"{}", "application/json", "gzip") == '"56c9ceefc37ec1d41487f90838a860e7"'
    assert entity_tag(b"{}") == '"2079c0057668d2e9e452773a415331f3"'


def test_the_etag_tells_apart_where_the_media_type_ends() -> None:
    assert entity_tag(b"x", "text/plain", "") == entity_tag(b"x", "text/plain", None)
    assert entity_tag(b"x", "ab", "c") != entity_tag(b"x", "a", "bc")
    assert entity_tag(b"x", "", "gzip") != entity_tag(b"x", "gzip", "")


def test_the_etag_digests_the_media_type_and_coding_the_handler_named(clock: FakeClock) -> None:
    http = memory_http(clock)
    answer = http.handle(
        rest_v1_event(),
        lambda: {
            "statusCode": 200,
            "headers": {"content-encoding": "gzip"},
            "multiValueHeaders": {"CONTENT-TYPE": ["text/plain"]},
            "body": "x",
        },
    )
    assert answer_header(answer, "ETag") == entity_tag(b"x", "text/plain", "gzip")


# ---------------------------------------------------------------- If-None-Match


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        (TAG, 304),
        (f"W/{TAG}", 304),
        (f'"other",{TAG}', 304),
        (f'  "other" ,   {TAG}  ', 304),
        ("*", 304),
        (' "other", * ', 304),
        ("", 200),
        ('"other"', 200),
        (TAG.strip('"'), 200),
        (f"w/{TAG}", 200),
        (f"{TAG}x", 200),
    ],
    ids=repr,
)
def test_if_none_match_is_compared_weakly_and_as_a_list(
    if_none_match: str, status: int, clock: FakeClock
) -> None:
    http = memory_http(clock)
    http.handle(rest_v1_event(), ok)
    answer = http.handle(rest_v1_event(headers={"If-None-Match": if_none_match}), ok)
    assert answer["statusCode"] == status


@pytest.mark.parametrize(
    ("status", "answered"), [(200, 304), (203, 304), (204, 304), (300, 300), (301, 301), (308, 308)]
)
def test_only_a_successful_answer_becomes_304(status: int, answered: int, clock: FakeClock) -> None:
    http = memory_http(clock)

    def made() -> dict[str, Any]:
        return ok(statusCode=status, headers={"Content-Type": "application/json", "Location": "/b"})

    http.handle(rest_v1_event(), made)
    answer = http.handle(rest_v1_event(headers={"If-None-Match": TAG}), made)
    assert answer["statusCode"] == answered
    assert answer["body"] == ("" if answered == 304 else JSON)


# ---------------------------------------------------------------- a stored answer


def test_a_stored_answer_is_exactly_the_handler_s_with_our_three_headers(clock: FakeClock) -> None:
    http = memory_http(clock, grace=30, stale_if_error=600)
    made = ok(
        headers={
            "Content-Type": "application/json",
            "cache-control": "public, max-age=5",
            "ETAG": '"theirs"',
            "vary": "Accept",
            "X-Origin": "quotes",
        },
        multiValueHeaders={
            "Link": ["</a>; rel=next", "</z>; rel=last"],
            "Cache-Control": ["max-age=1"],
            "Etag": ['"theirs"'],
            "VARY": ["Accept"],
        },
        isBase64Encoded=False,
        statusDescription="200 OK",
    )
    first = http.handle(rest_v1_event(), lambda: made)
    clock.advance(10.9)
    again = http.handle(rest_v1_event(), lambda: made)
    expected_headers = {
        "Content-Type": "application/json",
        "X-Origin": "quotes",
        "ETag": TAG,
        "Vary": "authorization",
    }
    assert first == {
        "statusCode": 200,
        "headers": {
            **expected_headers,
            "Cache-Control": (
                "max-age=60, s-maxage=60, stale-while-revalidate=30, stale-if-error=600"
            ),
        },
        "multiValueHeaders": {"Link": ["</a>; rel=next", "</z>; rel=last"]},
        "body": JSON,
        "isBase64Encoded": False,
    }
    assert again == {
        **first,
        "headers": {
            **expected_headers,
            "Cache-Control": (
                "max-age=49, s-maxage=49, stale-while-revalidate=30, stale-if-error=600"
            ),
        },
    }


def test_multi_value_headers_left_empty_are_left_out(clock: FakeClock) -> None:
    http = memory_http(clock)
    made = ok(multiValueHeaders={"ETag": ['"theirs"'], "Cache-Control": ["no-transform"]})
    for _ in range(2):
        assert "multiValueHeaders" not in http.handle(rest_v1_event(), lambda: made)


def test_a_304_keeps_only_the_validator_headers_in_either_header_map(clock: FakeClock) -> None:
    http = memory_http(clock)
    made = ok(
        headers={"Content-Type": "application/json", "expires": "0", "X-Origin": "quotes"},
        multiValueHeaders={"Content-Location": ["/quote.json"], "Link": ["</a>; rel=next"]},
    )
    http.handle(rest_v1_event(), lambda: made)
    answer = http.handle(rest_v1_event(headers={"If-None-Match": TAG}), lambda: made)
    assert answer == {
        "statusCode": 304,
        "headers": {
            "expires": "0",
            "Cache-Control": "max-age=60, s-maxage=60",
            "ETag": TAG,
            "Vary": "authorization",
        },
        "multiValueHeaders": {"Content-Location": ["/quote.json"]},
        "body": "",
        "isBase64Encoded": False,
    }


def test_a_head_answer_keeps_the_headers_and_drops_the_body(clock: FakeClock) -> None:
    http = memory_http(clock)
    png = base64.b64encode(b"\x89PNG").decode()
    made = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": png,
        "isBase64Encoded": True,
    }
    get = http.handle(rest_v1_event(), lambda: made)
    assert (get["body"], get["isBase64Encoded"]) == (png, True)
    head = http.handle(rest_v1_event(method="HEAD"), lambda: made)
    assert head == {**get, "body": "", "isBase64Encoded": False}


def test_a_head_request_finding_no_stored_answer_runs_the_handler(clock: FakeClock) -> None:
    http = memory_http(clock)
    request = rest_v1_event(method="HEAD")
    assert http.handle(request, ok) == ok()
    http.cache.set(http.key(http_request(request)), {"v": 0})  # another format: not an answer
    assert http.handle(request, ok) == ok()


def http_request(event: dict[str, Any]) -> HttpRequest:
    request = HttpRequest.from_event(event)
    assert request is not None
    return request


def test_a_body_left_out_or_not_a_string_is_stored_as_text(clock: FakeClock) -> None:
    http = memory_http(clock)
    assert http.handle(rest_v1_event("/none"), lambda: {"statusCode": 204})["body"] == ""
    assert http.handle(rest_v1_event("/none"), lambda: {"statusCode": 500})["body"] == ""
    answer = http.handle(
        rest_v1_event("/n"), lambda: {"statusCode": "200", "body": 7, "headers": {"X-N": 1}}
    )
    assert (answer["statusCode"], answer["body"], answer_header(answer, "X-N")) == (200, "7", "1")
    assert answer_header(answer, "ETag") == entity_tag(b"7")


@pytest.mark.parametrize(
    ("value", "body"), [({"a": [1, "x"]}, '{"a": [1, "x"]}'), ("text", "text"), ([], "[]")]
)
def test_a_2_0_handler_s_bare_value_is_stored_as_a_json_200(
    value: object, body: str, clock: FakeClock
) -> None:
    http = memory_http(clock)
    for _ in range(2):
        answer = http.handle(http_v2_event(), lambda: value)
        assert answer == {
            "statusCode": 200,
            "headers": {
                "content-type": "application/json",
                "Cache-Control": "max-age=60, s-maxage=60",
                "ETag": entity_tag(body.encode(), "application/json"),
                "Vary": "authorization",
            },
            "body": body,
            "isBase64Encoded": False,
        }


@pytest.mark.parametrize(
    "made",
    [None, "text", {"body": "no status"}, {"statusCode": "two hundred"}, {"statusCode": None}],
    ids=repr,
)
def test_what_is_no_proxy_answer_passes_through_untouched(made: object, clock: FakeClock) -> None:
    http = memory_http(clock)
    calls: list[object] = []

    def handler() -> object:
        calls.append(made)
        return made

    for _ in range(2):
        assert http.handle(rest_v1_event(), handler) is made
    assert len(calls) == 2  # once a request
    if made is None:
        assert http.handle(http_v2_event(), lambda: None) is None


# ---------------------------------------------------------------- Cache-Control


@pytest.mark.parametrize(
    ("options", "remaining", "private", "expected"),
    [
        ({}, 42.7, False, "max-age=42, s-maxage=42"),
        ({}, -3.0, False, "max-age=0, s-maxage=0"),
        ({}, 42.7, True, "private, max-age=42"),
        ({"browser_ttl": 10.9}, 42.7, False, "max-age=10, s-maxage=42"),
        ({"browser_ttl": 10}, 4.2, False, "max-age=4, s-maxage=4"),
        ({"browser_ttl": 0}, 42.7, True, "private, max-age=0"),
        (
            {"grace": 30.9},
            1,
            False,
            "max-age=1, s-maxage=1, stale-while-revalidate=30, stale-if-error=30",
        ),
        (
            {"grace": 30, "stale_if_error": 86400.5},
            1,
            False,
            "max-age=1, s-maxage=1, stale-while-revalidate=30, stale-if-error=86400",
        ),
        ({"stale_if_error": 600}, 1, False, "max-age=1, s-maxage=1, stale-if-error=600"),
        (
            {"grace": 30},
            1,
            True,
            "private, max-age=1, stale-while-revalidate=30, stale-if-error=30",
        ),
    ],
)
def test_cache_control_for_a_remaining_lifetime(
    options: dict[str, Any], remaining: float, private: bool, expected: str, clock: FakeClock
) -> None:
    settings = dict(options)  # the parameters are shared by every run of the test
    http = memory_http(clock, grace=settings.pop("grace", None), **settings)
    assert http.cache_control(remaining, private) == expected


def test_cache_control_is_for_shared_caches_unless_asked(clock: FakeClock) -> None:
    assert memory_http(clock).cache_control(42.7) == "max-age=42, s-maxage=42"


def test_a_private_answer_is_cache_controlled_for_its_caller_only(clock: FakeClock) -> None:
    http = memory_http(clock, grace=30, cache_authorized=True, browser_ttl=5)
    event = rest_v1_event(authorizer={"principalId": "ada"})
    http.handle(event, ok)
    clock.advance(20)
    assert answer_header(http.handle(event, ok), "Cache-Control") == (
        "private, max-age=5, stale-while-revalidate=30, stale-if-error=30"
    )


# ---------------------------------------------------------------- answers not kept


@pytest.mark.parametrize(
    ("headers", "extra"),
    [
        ({}, {"multiValueHeaders": {"SET-COOKIE": ["a=1", "b=2"]}}),
        ({"Cache-Control": "No-Store"}, {}),
        ({"Cache-Control": "max-age=60, PRIVATE"}, {}),
        ({}, {"multiValueHeaders": {"Cache-Control": ["no-cache"]}}),
        ({"Vary": "accept ,  COOKIE"}, {}),
        ({"Vary": "Accept,Cookie"}, {}),
        ({"Vary": "*"}, {}),
        ({"Vary": "Accept"}, {"multiValueHeaders": {"vary": ["Authorization"]}}),
    ],
    ids=[
        "multi-set-cookie",
        "no-store",
        "private",
        "multi-no-cache",
        "vary-cookie",
        "vary-list",
        "vary-star",
        "multi-vary",
    ],
)
def test_an_answer_that_is_someone_s_own_passes_through_untouched(
    headers: dict[str, str], extra: dict[str, Any], clock: FakeClock
) -> None:
    origin = HttpOrigin()
    origin.headers.update(headers)
    origin.extra = extra
    handler = memory_http(clock)(origin)
    for _ in range(2):
        assert handler(rest_v1_event(), None) == origin(rest_v1_event(), None)
    assert origin.calls == 4


@pytest.mark.parametrize(
    ("headers", "extra"),
    [
        ({"Vary": "Accept-Encoding, Accept"}, {}),
        ({"Cache-Control": "public, max-age=5"}, {}),
        ({}, {"cookies": []}),
        ({"X-Cookie-Policy": "none"}, {}),
    ],
    ids=["vary-public", "public", "no-cookies", "cookie-named-header"],
)
def test_an_answer_for_everyone_is_kept(
    headers: dict[str, str], extra: dict[str, Any], clock: FakeClock
) -> None:
    origin = HttpOrigin()
    origin.headers.update(headers)
    origin.extra = extra
    handler = memory_http(clock)(origin)
    handler(http_v2_event(), None)
    assert answer_header(handler(http_v2_event(), None), "ETag") == TAG
    assert origin.calls == 1


@pytest.mark.parametrize(
    ("status", "cache_control"),
    [
        (400, "no-store"),
        (404, "no-store"),
        (499, "no-store"),
        (500, "no-store"),
        (503, "no-store"),
        (399, None),
        (302, None),
    ],
)
def test_an_error_not_kept_says_no_store_unless_it_says_otherwise(
    status: int, cache_control: str | None, clock: FakeClock
) -> None:
    http = memory_http(clock)
    made = {"statusCode": status, "headers": {"X-Reason": "r"}, "body": "e"}
    answer = http.handle(rest_v1_event(), lambda: made)
    if cache_control is None:
        assert answer is made
    else:
        assert answer == {**made, "headers": {"X-Reason": "r", "Cache-Control": cache_control}}
    own = {"statusCode": status, "headers": {"cache-control": "max-age=5"}, "body": "e"}
    assert http.handle(rest_v1_event(), lambda: own) is own
    bare = {"statusCode": status}
    answer = http.handle(rest_v1_event(), lambda: bare)
    assert answer_header(answer, "Cache-Control") == cache_control


def test_statuses_chosen_for_storing_may_include_an_error(clock: FakeClock) -> None:
    origin = HttpOrigin('{"message": "no such symbol"}', status=404)
    handler = memory_http(clock, statuses=["404", 200])(origin)
    handler(rest_v1_event(), None)
    answer = handler(rest_v1_event(), None)
    assert answer["statusCode"] == 404
    assert answer_header(answer, "Cache-Control") == "max-age=60, s-maxage=60"
    assert origin.calls == 1
    assert handler.http_cache.statuses == frozenset({200, 404})


def test_a_status_left_out_of_statuses_passes_through_untouched(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, statuses=[203])(origin)
    for _ in range(2):
        assert handler(rest_v1_event(), None) == origin(rest_v1_event(), None)
    origin.status = 503
    assert answer_header(handler(rest_v1_event(), None), "Cache-Control") == "no-store"


@pytest.mark.parametrize("status", [500, 502, 599])
def test_a_stale_answer_is_served_when_the_handler_fails_with_5xx(
    status: int, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30)(origin)
    handler(rest_v1_event(), None)
    clock.advance(70)
    origin.status = status
    with caplog.at_level("WARNING", logger="stratacache"):
        answer = handler(rest_v1_event(), None)
    assert answer["statusCode"] == 200
    assert answer["body"] == JSON
    assert answer_header(answer, "Cache-Control") == (
        "max-age=0, s-maxage=0, stale-while-revalidate=30, stale-if-error=30"
    )
    assert f"refreshing it failed: _ServerError: the handler answered {status}" in caplog.text


def test_an_answer_not_kept_leaves_the_stale_answer_in_place(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock, grace=30)(origin)
    handler(rest_v1_event(), None)
    clock.advance(70)
    origin.status = 499
    assert handler(rest_v1_event(), None)["statusCode"] == 499  # a client error: passed on
    origin.status = 500
    answer = handler(rest_v1_event(), None)
    assert (answer["statusCode"], answer["body"]) == (200, JSON)  # the stale one, still kept
    assert origin.calls == 3


@pytest.mark.parametrize(
    ("made", "refused"),
    [
        (
            {"statusCode": 200, "body": "mine"},
            {"statusCode": 200, "headers": {"Cache-Control": "private, no-store"}, "body": "mine"},
        ),
        (
            {"statusCode": 200, "headers": None, "body": "mine"},
            {"statusCode": 200, "headers": {"Cache-Control": "private, no-store"}, "body": "mine"},
        ),
        (
            {"statusCode": 200, "headers": {"Cache-Control": "max-age=5"}, "body": "mine"},
            {"statusCode": 200, "headers": {"Cache-Control": "max-age=5"}, "body": "mine"},
        ),
        (
            {"symbol": "AMZN"},
            {
                "statusCode": 200,
                "headers": {
                    "content-type": "application/json",
                    "Cache-Control": "private, no-store",
                },
                "body": '{"symbol": "AMZN"}',
                "isBase64Encoded": False,
            },
        ),
        (
            "hello",
            {
                "statusCode": 200,
                "headers": {
                    "content-type": "application/json",
                    "Cache-Control": "private, no-store",
                },
                "body": "hello",
                "isBase64Encoded": False,
            },
        ),
    ],
    ids=["no-headers", "headers-none", "own-cache-control", "bare-value", "bare-string"],
)
def test_an_answer_to_a_caller_with_credentials_is_marked_private(
    made: object, refused: object, clock: FakeClock
) -> None:
    http = memory_http(clock)
    assert (
        http.handle(http_v2_event(headers={"Authorization": "Bearer a"}), lambda: made) == refused
    )


def test_a_1_0_handler_s_bare_value_to_a_caller_with_credentials_is_untouched(
    clock: FakeClock,
) -> None:
    made = {"symbol": "AMZN"}
    http = memory_http(clock)
    assert http.handle(rest_v1_event(headers={"Authorization": "Bearer a"}), lambda: made) is made


# ---------------------------------------------------------------- settings


def test_the_default_cache_takes_ttl_namespace_and_clock_from_the_environment(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATACACHE_TTL", "120")
    monkeypatch.setenv("STRATACACHE_NAMESPACE", "shop")
    http = HttpCache(grace=30, clock=clock)
    assert (http.ttl, http.grace, http.stale_if_error) == (120, 30, 30)
    assert http.cache.namespace == "shop:http"
    assert http.cache.default_ttl == 120
    assert http.clock is clock
    assert http.cache.clock is clock
    assert HttpCache(namespace="news").cache.namespace == "news:http"
    assert HttpCache(ttl=45).ttl == 45
    monkeypatch.delenv("STRATACACHE_TTL")
    default = HttpCache()
    assert (default.ttl, default.grace, default.stale_if_error) == (300, None, None)
    assert default.clock is default.cache.clock
    assert default.browser_ttl is None
    assert default.vary == ()
    assert default.cache_authorized is False
    assert default.statuses == frozenset({200, 203, 204, 300, 301, 308})
    assert repr(default) == "HttpCache(name='http', ttl=300.0, grace=None)"


def test_a_given_cache_lends_its_clock(clock: FakeClock) -> None:
    http = HttpCache(cache=http_memory_cache(clock))
    assert http.clock is clock
    assert http.ttl == 60


def test_vary_names_are_read_in_any_case_and_order(clock: FakeClock) -> None:
    assert memory_http(clock, vary="Accept-Language").vary == ("accept-language",)
    http = memory_http(clock, vary=[" X-Tenant", "accept-language", "Accept-Language "])
    assert http.vary == ("accept-language", "x-tenant")
    assert memory_http(clock, cache_authorized=1).cache_authorized is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"browser_ttl": -1}, r"^browser_ttl must be seconds >= 0, got -1$"),
        ({"browser_ttl": True}, r"got True$"),
        ({"browser_ttl": "5"}, r"got '5'$"),
        ({"browser_ttl": math.inf}, r"got inf$"),
        ({"browser_ttl": math.nan}, r"got nan$"),
        (
            {"vary": ["Accept", ""]},
            r"^vary names request headers other than Authorization and Cookie,"
            r" got \['Accept', ''\] \(use cache_authorized=True for per-caller answers\)$",
        ),
        ({"vary": ["Cookie"]}, r"got \['Cookie'\]"),
        ({"vary": "*"}, r"got \('\*',\)"),
        ({"name": ""}, r"^name must be a non-empty string without spaces, got ''$"),
        ({"name": "a\tb"}, r"got 'a\\tb'$"),
        ({"name": 7}, r"got 7$"),
        ({"stale_if_error": -1}, r"stale_if_error"),
    ],
    ids=repr,
)
def test_bad_settings_are_named(options: dict[str, Any], message: str, clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError, match=message):
        memory_http(clock, **options)


def test_browser_ttl_zero_and_fractions_are_seconds(clock: FakeClock) -> None:
    assert memory_http(clock, browser_ttl=0).browser_ttl == 0
    assert memory_http(clock, browser_ttl=2.5).browser_ttl == 2.5


@pytest.mark.parametrize(
    ("options", "cache", "message"),
    [
        ({}, {"not": "a cache"}, r"^cache must be a TieredCache, got dict$"),
        (
            {"ttl": 30},
            None,
            r"^ttl=30 differs from the cache's ttl \(60\), which answers are kept for;"
            r" leave ttl unset$",
        ),
        (
            {"grace": 10},
            None,
            r"^grace=10 differs from the cache's grace \(None\), which stale answers are kept"
            r" for; leave grace unset$",
        ),
    ],
)
def test_a_cache_that_does_not_fit_is_refused_with_the_reason(
    options: dict[str, Any], cache: object, message: str, clock: FakeClock
) -> None:
    given = http_memory_cache(clock) if cache is None else cache
    with pytest.raises(ConfigurationError, match=message):
        HttpCache(cache=given, **options)  # type: ignore[arg-type]


def test_a_cache_with_matching_ttl_and_grace_is_taken(clock: FakeClock) -> None:
    http = HttpCache(ttl=60, grace=30, cache=http_memory_cache(clock, grace=30))
    assert (http.ttl, http.grace) == (60, 30)
    with pytest.raises(
        ConfigurationError,
        match=r"^the cache has jitter: Cache-Control would promise more than the entry's lifetime$",
    ):
        HttpCache(cache=TieredCache([MemoryTier()], ttl=60, freshness=Freshness(jitter=0.1)))
    with pytest.raises(
        ConfigurationError,
        match=r"^cache must have a ttl: Cache-Control states what is left of it$",
    ):
        HttpCache(cache=TieredCache([MemoryTier()], ttl=None))


# ---------------------------------------------------------------- the decorator


def test_the_decorator_hands_every_setting_to_its_http_cache(clock: FakeClock) -> None:
    cache = http_memory_cache(clock, grace=30)

    @http_cached(
        ttl=60,
        grace=30,
        stale_if_error=600,
        browser_ttl=5,
        vary=["X-Tenant"],
        cache_authorized=True,
        statuses=[200],
        cache=cache,
        clock=clock,
    )
    def quote(event: dict[str, Any], context: object) -> dict[str, Any]:
        return ok()

    http = quote.http_cache
    assert http.cache is cache
    assert (http.ttl, http.grace, http.stale_if_error, http.browser_ttl) == (60, 30, 600, 5)
    assert (http.vary, http.cache_authorized, http.statuses) == (
        ("x-tenant",),
        True,
        frozenset({200}),
    )
    assert http.clock is clock
    assert (
        http.name
        == f"{__name__}.test_the_decorator_hands_every_setting_to_its_http_cache.<locals>.quote"
    )
    assert quote.__wrapped__.__name__ == "quote"


def test_the_decorator_s_settings_reach_the_default_cache(clock: FakeClock) -> None:
    @http_cached(namespace="shop", ttl=45, clock=clock)
    def quote(event: dict[str, Any], context: object) -> dict[str, Any]:
        return ok()

    assert quote.http_cache.cache.namespace == "shop:http"
    assert (quote.http_cache.ttl, quote.http_cache.cache.default_ttl) == (45, 45)
    assert quote.http_cache.clock is clock
    assert quote.http_cache.cache.clock is clock


def test_the_bare_decorator_keeps_no_answer_to_a_caller_with_credentials() -> None:
    calls: list[str] = []

    @http_cached
    def quote(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(event["rawPath"])
        return ok()

    event = http_v2_event("/bare-decorator", headers={"Authorization": "Bearer a"})
    for _ in range(2):
        assert answer_header(quote(event, None), "Cache-Control") == "private, no-store"
    assert len(calls) == 2


def test_the_decorator_refuses_what_is_no_handler() -> None:
    with pytest.raises(TypeError, match=r"^@http_cached decorates a handler, got int$"):
        http_cached(ttl=60)(7)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Powertools responses


def test_a_powertools_response_is_stored_as_the_proxy_answer_it_becomes(clock: FakeClock) -> None:
    app = APIGatewayRestResolver()
    http = memory_http(clock)
    calls: list[str] = []
    png = b"\x89PNG\r\n\x1a\n\x00"

    @app.get("/image", middlewares=[http.middleware])
    def image() -> Response[bytes]:
        calls.append("image")
        return Response(200, "image/png", png, headers={"X-Tags": ["a", "b"], "X-One": "1"})

    @app.get("/dict", middlewares=[http.middleware])
    def as_dict() -> Response[dict[str, Any]]:
        calls.append("dict")
        return Response(200, "application/json", {"when": datetime.date(2024, 3, 10), "n": [1, 2]})

    @app.get("/empty", middlewares=[http.middleware])
    def empty() -> Response[None]:
        calls.append("empty")
        return Response(204, None, None)

    @app.get("/mine", middlewares=[http.middleware])
    def mine() -> Response[str]:
        calls.append("mine")
        return Response(200, "text/plain", "mine", cookies=[Cookie("s", "1")])

    for _ in range(2):
        answer = app.resolve(rest_v1_event("/mine"), LAMBDA_CONTEXT)  # the route's own answer
        assert (answer["statusCode"], answer["body"]) == (200, "mine")
        assert answer["multiValueHeaders"]["Set-Cookie"] == ["s=1; Secure"]
        assert answer["multiValueHeaders"]["Content-Type"] == ["text/plain"]
        assert "ETag" not in answer["multiValueHeaders"]

    @app.get("/gone", middlewares=[http.middleware])
    def gone() -> Response[str]:
        calls.append("gone")
        return Response(404, "text/plain", "gone", cookies=[Cookie("s", "2")])

    answer = app.resolve(rest_v1_event("/gone"), LAMBDA_CONTEXT)  # an error: marked no-store
    assert (answer["statusCode"], answer["body"]) == (404, "gone")
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["s=2; Secure"]
    assert answer["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    for _ in range(2):
        answer = app.resolve(rest_v1_event("/image"), LAMBDA_CONTEXT)
        assert base64.b64decode(answer["body"]) == png
        assert answer["isBase64Encoded"] is True
        assert answer["multiValueHeaders"]["X-Tags"] == ["a", "b"]
        assert answer["multiValueHeaders"]["X-One"] == ["1"]
        assert answer["multiValueHeaders"]["ETag"] == [entity_tag(png, "image/png")]
    for _ in range(2):
        answer = app.resolve(rest_v1_event("/dict"), LAMBDA_CONTEXT)
        assert answer["body"] == '{"when":"2024-03-10","n":[1,2]}'
    for _ in range(2):
        answer = app.resolve(rest_v1_event("/empty"), LAMBDA_CONTEXT)
        assert answer["statusCode"] == 204
        assert answer["body"] in ("", None)
    assert calls == ["mine", "mine", "gone", "image", "dict", "empty"]


# ---------------------------------------------------------------- ALB, multi-value headers on


def alb_event(multi: bool, **headers: str) -> dict[str, Any]:
    """A GET from an ALB target group, with ``lambda.multi_value_headers.enabled`` or not."""
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg/q"}},
        "httpMethod": "GET",
        "path": "/quote/AMZN",
        "body": "",
        "isBase64Encoded": False,
    }
    if multi:
        event["multiValueHeaders"] = {k.replace("_", "-"): [v] for k, v in headers.items()}
        event["multiValueQueryStringParameters"] = {}
    else:
        event["headers"] = {k.replace("_", "-"): v for k, v in headers.items()}
        event["queryStringParameters"] = {}
    return event


def test_behind_an_alb_with_multi_value_headers_every_answer_header_is_multi_valued(
    clock: FakeClock,
) -> None:
    """ALB reads only ``multiValueHeaders`` of the answer then: the cache's headers go there."""
    origin = HttpOrigin()
    origin.extra = {"multiValueHeaders": {"X-Seen": ["1", "2"]}}
    handler = memory_http(clock)(origin)
    first = handler(alb_event(True), None)
    second = handler(alb_event(True), None)  # from the cache
    assert origin.calls == 1
    for answer in (first, second):
        assert "headers" not in answer
        multi = answer["multiValueHeaders"]
        assert multi["Cache-Control"] == ["max-age=60, s-maxage=60"]
        assert multi["ETag"] == [TAG]
        assert multi["Vary"] == ["authorization"]
        assert multi["Content-Type"] == ["application/json"]
        assert multi["X-Seen"] == ["1", "2"]
    revalidated = handler(alb_event(True, if_none_match=TAG), None)
    assert revalidated["statusCode"] == 304
    assert "headers" not in revalidated
    assert revalidated["multiValueHeaders"]["ETag"] == [TAG]


def test_behind_an_alb_with_multi_value_headers_a_refused_answer_says_no_store_there(
    clock: FakeClock,
) -> None:
    origin = HttpOrigin(status=404)
    answer = memory_http(clock)(origin)(alb_event(True), None)
    assert answer["statusCode"] == 404
    assert "headers" not in answer
    assert answer["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    assert answer["multiValueHeaders"]["Content-Type"] == ["application/json"]


def test_behind_an_alb_without_multi_value_headers_the_answer_keeps_headers(
    clock: FakeClock,
) -> None:
    origin = HttpOrigin()
    answer = memory_http(clock)(origin)(alb_event(False), None)
    assert "multiValueHeaders" not in answer
    assert answer_header(answer, "ETag") == TAG


def test_behind_an_alb_a_header_in_both_fields_keeps_its_multi_values_once(
    clock: FakeClock,
) -> None:
    origin = HttpOrigin()
    origin.headers = {"content-type": "application/json"}
    origin.extra = {"multiValueHeaders": {"Content-Type": ["text/plain"]}}
    answer = memory_http(clock)(origin)(alb_event(True), None)
    named = [name for name in answer["multiValueHeaders"] if name.lower() == "content-type"]
    assert named == ["Content-Type"]
    assert answer["multiValueHeaders"]["Content-Type"] == ["text/plain"]


def test_a_rest_api_event_with_multi_value_headers_keeps_the_answer_s_headers(
    clock: FakeClock,
) -> None:
    """API Gateway sends both fields and reads both: only ALB's multi-value mode moves them."""
    event = rest_v1_event()
    event["multiValueHeaders"] = {"accept": ["application/json"]}
    answer = memory_http(clock)(HttpOrigin())(event, None)
    assert answer_header(answer, "ETag") == TAG


def test_behind_an_alb_an_answer_that_is_not_cached_and_has_no_headers_is_untouched(
    clock: FakeClock,
) -> None:
    answer = {"statusCode": 201, "multiValueHeaders": {"Location": ["/q/1"]}, "body": ""}
    event = {**alb_event(True), "httpMethod": "POST"}
    assert memory_http(clock)(lambda event, context: answer)(event, None) == answer
