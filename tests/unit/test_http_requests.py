"""HTTP requests as read from Lambda events: method, path, query, headers, caller; their keys.

Each event shape is read into the same :class:`HttpRequest`, and a request's key
decides which stored answer it gets. Fast: no server, one memory tier.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from stratacache.http import HttpCache, HttpRequest
from tests.support import (
    FakeClock,
    HttpOrigin,
    function_url_event,
    http_v2_event,
    memory_http,
    rest_v1_event,
)


def read(event: object) -> HttpRequest:
    request = HttpRequest.from_event(event)
    assert request is not None
    return request


# ---------------------------------------------------------------- payload 2.0


def test_a_2_0_event_is_read_whole() -> None:
    event = {
        "version": "2.0",
        "rawPath": "/quote/AMZN",
        "rawQueryString": "b=2&a=1&a=&flag",
        "headers": {"Accept": "text/html", "X-Count": 5},
        "cookies": ["theme=dark", "lang=en"],
        "requestContext": {
            "http": {"method": "get", "path": "/other"},
            "authorizer": {"jwt": {"claims": {"sub": "user-1"}}},
        },
    }
    assert read(event) == HttpRequest(
        version="2.0",
        method="GET",
        path="/quote/AMZN",
        query=(("a", ""), ("a", "1"), ("b", "2"), ("flag", "")),
        headers={"accept": "text/html", "x-count": "5", "cookie": "theme=dark; lang=en"},
        principal="user-1",
    )


def test_a_2_0_event_without_raw_path_takes_the_http_path_else_the_root() -> None:
    context = {"http": {"method": "GET", "path": "/from-context"}}
    assert read({"version": "2.0", "requestContext": context}).path == "/from-context"
    assert read({"version": "2.0", "requestContext": {"http": {}}}).path == "/"


def test_a_2_0_event_may_leave_out_headers_query_cookies_and_method() -> None:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": "/",
        "headers": None,
        "cookies": [],
        "requestContext": {"http": {}},
    }
    assert read(event) == HttpRequest("2.0", "", "/", (), {}, None)


@pytest.mark.parametrize(
    "event",
    [
        {"version": "2.0", "rawPath": "/a"},
        {"version": "2.0", "rawPath": "/a", "requestContext": {"http": "GET"}},
        {"version": "2.0", "rawPath": "/a", "requestContext": "GET /a"},
        {"version": "1.0", "rawPath": "/a", "requestContext": {"http": {"method": "GET"}}},
        {"Records": [{"eventSource": "aws:sqs"}]},
        {},
        "GET /a",
        ["GET", "/a"],
        None,
    ],
    ids=[
        "2.0-without-context",
        "2.0-http-not-a-mapping",
        "context-not-a-mapping",
        "1.0-shaped-like-2.0",
        "sqs",
        "empty",
        "string",
        "list",
        "none",
    ],
)
def test_anything_but_a_proxy_event_is_not_a_request(event: object) -> None:
    assert HttpRequest.from_event(event) is None


# ---------------------------------------------------------------- payload 1.0 (and ALB)


def test_a_1_0_event_joins_multi_value_headers_and_takes_the_single_ones_missing_there() -> None:
    event = {
        "httpMethod": "head",
        "path": "/quote/AMZN",
        "multiValueHeaders": {"Accept": ["text/html", "application/json"], "X-Count": [1, 2]},
        "headers": {"Accept": "application/json", "Host": "example.com", "X-Port": 443},
        "multiValueQueryStringParameters": {"b": ["2"], "a": ["1", 0]},
        "queryStringParameters": {"b": "2", "a": "0"},
    }
    assert read(event) == HttpRequest(
        version="1.0",
        method="HEAD",
        path="/quote/AMZN",
        query=(("a", "0"), ("a", "1"), ("b", "2")),
        headers={
            "accept": "text/html, application/json",
            "x-count": "1, 2",
            "host": "example.com",
            "x-port": "443",
        },
        principal=None,
    )


def test_a_1_0_event_without_multi_value_query_takes_the_single_values() -> None:
    event = {"httpMethod": "GET", "path": "/a", "queryStringParameters": {"b": 2, "a": "x"}}
    assert read(event).query == (("a", "x"), ("b", "2"))


def test_a_1_0_event_may_leave_out_everything_but_its_method() -> None:
    event: dict[str, Any] = {
        "httpMethod": "GET",
        "path": None,
        "headers": None,
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": None,
    }
    assert read(event) == HttpRequest("1.0", "GET", "/", (), {}, None)
    assert read({"httpMethod": "GET", "requestContext": "not a mapping"}).principal is None


def test_an_alb_event_is_read_as_a_1_0_event() -> None:
    """An Application Load Balancer sends the 1.0 shape with ``requestContext.elb``."""
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/quotes/6d0ecf831eec9f09"
    single = {
        "requestContext": {"elb": {"targetGroupArn": arn}},
        "httpMethod": "GET",
        "path": "/quote/AMZN",
        "queryStringParameters": {"window": "1d"},
        "headers": {"accept": "application/json", "if-none-match": '"abc"'},
        "body": "",
        "isBase64Encoded": False,
    }
    multi = {  # with the target group's lambda.multi_value_headers.enabled
        "requestContext": {"elb": {"targetGroupArn": arn}},
        "httpMethod": "GET",
        "path": "/quote/AMZN",
        "multiValueQueryStringParameters": {"window": ["1d"]},
        "multiValueHeaders": {"accept": ["application/json"], "if-none-match": ['"abc"']},
        "body": "",
        "isBase64Encoded": False,
    }
    expected = HttpRequest(
        "1.0",
        "GET",
        "/quote/AMZN",
        (("window", "1d"),),
        {"accept": "application/json", "if-none-match": '"abc"'},
    )
    assert read(single) == expected
    assert read(multi) == expected


@pytest.mark.parametrize(
    "make_event", [rest_v1_event, http_v2_event, function_url_event], ids=["v1", "v2", "url"]
)
def test_every_event_shape_reads_to_the_same_request(make_event: Any) -> None:
    request = read(make_event(query={"b": ["2"], "a": ["1", "3"]}, headers={"X-Tenant": "t1"}))
    assert request.method == "GET"
    assert request.path == "/quote/AMZN"
    assert request.query == (("a", "1"), ("a", "3"), ("b", "2"))
    assert request.headers["x-tenant"] == "t1"
    assert request.principal is None
    assert not request.authorized


# ---------------------------------------------------------------- the caller


@pytest.mark.parametrize(
    ("authorizer", "principal"),
    [
        ({"principalId": "user-7", "integrationLatency": 3}, "user-7"),
        ({"principalId": 42}, "42"),
        ({"claims": {"sub": "cognito-sub"}}, "cognito-sub"),
        ({"jwt": {"claims": {"sub": "jwt-sub"}, "scopes": None}}, "jwt-sub"),
        (
            {"iam": {"userArn": "arn:aws:iam::123456789012:user/ada"}},
            "arn:aws:iam::123456789012:user/ada",
        ),
        ({"lambda": {"principalId": "from-lambda"}}, "from-lambda"),
        ({"principalId": "", "claims": {"sub": "second"}}, "second"),
        ({"claims": "not a mapping", "lambda": {"principalId": "last"}}, "last"),
        ({"principalId": "first", "lambda": {"principalId": "last"}}, "first"),
    ],
    ids=[
        "principal-id",
        "principal-id-number",
        "cognito-claims",
        "jwt",
        "iam",
        "lambda-context",
        "empty-one-skipped",
        "odd-node-skipped",
        "first-wins",
    ],
)
def test_the_caller_is_the_authorizer_s_principal(
    authorizer: dict[str, Any], principal: str
) -> None:
    request = read(rest_v1_event(authorizer=authorizer))
    assert request.principal == principal
    assert request.authorized
    event = http_v2_event()
    event["requestContext"]["authorizer"] = authorizer
    assert read(event).principal == principal


def test_an_authorizer_that_names_nobody_known_still_makes_the_answer_someone_s_own() -> None:
    when = datetime.date(2024, 3, 10)
    authorizer = {"tenant": "t1", "expires": when, "claims": {"sub": ""}}
    request = read(rest_v1_event(authorizer=authorizer))
    assert request.principal == '{"claims": {"sub": ""}, "expires": "2024-03-10", "tenant": "t1"}'
    assert request.authorized


@pytest.mark.parametrize("authorizer", [{}, None, "user-7", ["user-7"]], ids=str)
def test_no_authorizer_or_an_empty_one_names_no_caller(authorizer: object) -> None:
    event = rest_v1_event()
    event["requestContext"]["authorizer"] = authorizer
    request = read(event)
    assert request.principal is None
    assert not request.authorized


def test_an_authorization_header_alone_makes_a_request_authorized() -> None:
    assert read(http_v2_event(headers={"Authorization": "Bearer x"})).authorized
    assert HttpRequest("2.0", "GET", "/", (), {}, principal="p").authorized
    assert not HttpRequest("2.0", "GET", "/", (), {"authorization-hint": "x"}).authorized


# ---------------------------------------------------------------- the request as a value


def test_a_request_is_a_frozen_value() -> None:
    request = HttpRequest("2.0", "GET", "/a", (("q", "1"),), {"accept": "*/*"}, "p")
    with pytest.raises(AttributeError, match=r"^an HttpRequest is frozen: cannot set 'path'$"):
        request.path = "/b"
    with pytest.raises(AttributeError, match=r"^an HttpRequest is frozen: cannot delete 'path'$"):
        del request.path
    assert request.path == "/a"
    assert repr(request) == (
        "HttpRequest(version='2.0', method='GET', path='/a', query=(('q', '1'),),"
        " headers={'accept': '*/*'}, principal='p')"
    )
    with pytest.raises(TypeError, match="unhashable"):
        hash(request)


def test_requests_are_equal_when_every_part_is() -> None:
    parts: list[Any] = ["2.0", "GET", "/a", (("q", "1"),), {"accept": "*/*"}, "p"]
    request = HttpRequest(*parts)
    assert request == HttpRequest(*parts)
    others: list[Any] = ["1.0", "HEAD", "/b", (), {}, None]
    for index, other in enumerate(others):
        changed = list(parts)
        changed[index] = other
        assert request != HttpRequest(*changed)
    assert request != parts
    assert request.__eq__(tuple(parts)) is NotImplemented
    assert HttpRequest("2.0", "GET", "/a", (), {}).principal is None


# ---------------------------------------------------------------- keys


def test_a_key_is_stable_across_releases(clock: FakeClock) -> None:
    """A deploy that changed the layout of keys would lose every stored answer."""
    http = memory_http(clock, vary=["Accept-Language"])
    anonymous = read(rest_v1_event(query={"a": ["1"]}, headers={"Accept-Language": "fr"}))
    assert http.key(anonymous) == "http:d87ff907494a7f465790a2f618ed46af"
    own = memory_http(clock, cache_authorized=True)
    ada = read(http_v2_event(headers={"Authorization": "Bearer ada"}))
    assert own.key(ada) == "http:b75ee89e8e82efa94e5ad355fbbcc336"
    principal = read(rest_v1_event(authorizer={"principalId": "ada"}))  # a principal, no header
    assert own.key(principal) == "http:7d88b5bd3c4f1b9cbf83c6739c04f7c9"
    street = read(http_v2_event("/straße", query={"q": ["ü"]}))  # not ASCII
    assert memory_http(clock).key(street) == "http:9d8ca3f666997ea012606174ebda7801"


def test_what_a_key_depends_on(clock: FakeClock) -> None:
    http = memory_http(clock, vary=["Accept-Language"], cache_authorized=True)

    def key(**changes: Any) -> str:
        parts: dict[str, Any] = {
            "version": "2.0",
            "method": "GET",
            "path": "/a",
            "query": (("q", "1"),),
            "headers": {"accept-language": "en", "accept": "text/html"},
            "principal": None,
            **changes,
        }
        return http.key(HttpRequest(**parts))

    base = key()
    assert key(version="1.0") == base
    assert key(method="HEAD") == base  # HEAD is answered from GET's entry
    assert key(headers={"accept-language": "en", "accept": "*/*"}) == base  # not in vary
    assert key(path="/b") != base
    assert key(query=(("q", "2"),)) != base
    assert key(query=()) != base
    assert key(headers={"accept-language": "fr"}) != base
    assert key(headers={}) == key(headers={"accept-language": ""})  # missing reads as empty
    assert key(principal="ada") != base
    assert key(principal="ada") != key(principal="bob")
    assert key(headers={"accept-language": "en", "authorization": "a"}) != key(
        headers={"accept-language": "en", "authorization": "b"}
    )
    assert key(principal="ada", headers={"accept-language": "en", "authorization": "a"}) != key(
        principal="ada", headers={"accept-language": "en", "authorization": "b"}
    )
    assert key(principal="ada", headers={"accept-language": "en", "authorization": "a"}) != key(
        principal="bob", headers={"accept-language": "en", "authorization": "a"}
    )


def test_two_apis_sharing_a_cache_have_keys_of_their_own(clock: FakeClock) -> None:
    request = read(rest_v1_event())
    cache = memory_http(clock).cache
    assert HttpCache(cache=cache, name="quotes").key(request) != HttpCache(
        cache=cache, name="news"
    ).key(request)
    assert HttpCache(cache=cache).name == "http"


# ---------------------------------------------------------------- which requests are answered


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get_", ""])
def test_only_get_and_head_are_answered_from_the_cache(method: str, clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    for _ in range(2):
        assert handler(rest_v1_event(method=method), None) == origin(rest_v1_event(), None)
    assert origin.calls == 4


def test_a_lower_case_get_is_a_get(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    handler(rest_v1_event(method="get"), None)
    handler(http_v2_event(method="get"), None)
    assert origin.calls == 1


def test_stratacache_disabled_passes_every_request_to_the_handler(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    monkeypatch.setenv("STRATACACHE_DISABLED", "true")
    assert handler(rest_v1_event(), None) == origin(rest_v1_event(), None)
    handler(rest_v1_event(), None)
    assert origin.calls == 3
    monkeypatch.setenv("STRATACACHE_DISABLED", "false")
    handler(rest_v1_event(), None)
    handler(rest_v1_event(), None)
    assert origin.calls == 4


def test_an_event_that_is_no_request_gets_the_handler_s_own_answer(clock: FakeClock) -> None:
    http = memory_http(clock)
    record = {"Records": [{"body": "x"}]}
    assert http.handle(record, lambda: {"batchItemFailures": []}) == {"batchItemFailures": []}
    assert http.handle("GET /a", lambda: "raw") == "raw"


def test_the_handler_gets_the_event_context_and_any_further_arguments(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def handler(event: Any, context: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append((event["path"], context, args, kwargs))
        return {"statusCode": 200, "body": "ok"}

    cached = memory_http(clock)(handler)
    context = object()
    cached(rest_v1_event("/a"), context, "more", flag=True)
    cached.refresh(rest_v1_event("/b"))
    cached.refresh(rest_v1_event("/c"), context)
    assert seen == [
        ("/a", context, ("more",), {"flag": True}),
        ("/b", None, (), {}),
        ("/c", context, (), {}),
    ]
    assert cached.http_cache.invalidate("/a")
    assert cached.invalidate == cached.http_cache.invalidate


# ---------------------------------------------------------------- invalidating by path


def test_invalidate_by_path_reads_query_values_as_a_request_would(clock: FakeClock) -> None:
    origin = HttpOrigin()
    handler = memory_http(clock)(origin)
    handler(rest_v1_event(query={"a": ["1", "2"], "n": ["30"]}), None)
    assert not handler.invalidate("/quote/AMZN", query={"a": "1", "n": "30"})
    assert handler.invalidate("/quote/AMZN", query={"n": "30", "a": ["2", "1"]})
    handler(rest_v1_event(query={"a": ["1", "2"], "n": ["30"]}), None)
    assert handler.invalidate("/quote/AMZN", query=[("n", "30"), ("a", "1"), ("a", "2")])
    assert origin.calls == 2


def test_invalidate_by_path_reads_header_names_in_any_case(clock: FakeClock) -> None:
    handler = memory_http(clock, vary=["X-Tenant"])(HttpOrigin())
    handler(http_v2_event(headers={"x-tenant": "7"}), None)
    assert handler.invalidate("/quote/AMZN", headers={"X-TENANT": 7})  # type: ignore[dict-item]


def test_invalidate_names_a_path_that_does_not_start_with_a_slash(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match=r"^a path starts with '/', got 'quote/AMZN'$"):
        memory_http(clock).invalidate("quote/AMZN")
    with pytest.raises(ValueError, match=r"or an API Gateway / Function URL event, got dict$"):
        memory_http(clock).invalidate({"Records": []})
