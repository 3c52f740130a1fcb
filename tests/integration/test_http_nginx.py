"""Behind a real shared cache (nginx's proxy cache): a stored answer reaches only the
callers it was made for, and cacheable answers are served by nginx without the origin.

nginx ignores a request's ``Authorization`` header when it looks in its cache; only the
answer's ``Vary`` keeps an anonymous answer from an authorized caller (RFC 9110 §12.5.5).
"""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from devkit.nginx import NginxCache

from stratacache import MemoryTier, TieredCache
from stratacache.http import http_cached


class Origin:
    """A local HTTP server that answers each GET through an ``@http_cached`` handler.

    ``/raw/...`` is the control: the same answer made without stratacache, public and
    without ``Vary``.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        """(path, Authorization) of every request that reached the origin."""
        self.handler_calls: list[str | None] = []
        """Authorization of every request the Lambda handler ran for."""
        origin = self

        @http_cached(cache=TieredCache([MemoryTier()], ttl=60, namespace="nginx"))
        def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
            who = event["headers"].get("authorization")
            origin.handler_calls.append(who)
            body = f"quote for {who or 'anonymous'}"
            return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": body}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                who = self.headers.get("Authorization")
                origin.requests.append((self.path, who))
                if self.path.startswith("/raw/"):
                    answer: dict[str, Any] = {
                        "statusCode": 200,
                        "headers": {"Cache-Control": "public, max-age=60"},
                        "body": f"quote for {who or 'anonymous'}",
                    }
                else:
                    answer = handler(event_for(self), None)
                self.send_answer(answer)

            def send_answer(self, answer: dict[str, Any]) -> None:
                body = str(answer.get("body") or "").encode()
                self.send_response(int(answer["statusCode"]))
                for name, value in (answer.get("headers") or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def event_for(request: http.server.BaseHTTPRequestHandler) -> dict[str, Any]:
    """The Function URL event (payload 2.0) Lambda would make of an HTTP request."""
    path, _, query = request.path.partition("?")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "requestContext": {"http": {"method": request.command, "path": path}},
        "isBase64Encoded": False,
    }


@pytest.fixture
def front() -> Iterator[tuple[NginxCache, Origin]]:
    origin = Origin()
    thread = threading.Thread(target=origin.server.serve_forever, daemon=True)
    thread.start()
    try:
        with NginxCache(origin.url) as nginx:
            yield nginx, origin
    finally:
        origin.server.shutdown()
        origin.server.server_close()


def get(nginx: NginxCache, path: str, authorization: str | None = None) -> tuple[str, str, str]:
    """(body, X-Cache-Status, Vary) of a GET through nginx."""
    connection = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
    try:
        headers = {} if authorization is None else {"Authorization": authorization}
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        body = answer.read().decode()
        assert answer.status == 200
        return body, answer.getheader("X-Cache-Status", ""), answer.getheader("Vary", "")
    finally:
        connection.close()


def test_an_anonymous_answer_never_reaches_an_authorized_caller_without_the_handler(
    front: tuple[NginxCache, Origin],
) -> None:
    nginx, origin = front
    body, status, vary = get(nginx, "/quote/AMZN")
    assert (body, status) == ("quote for anonymous", "MISS")
    assert vary == "authorization"
    assert get(nginx, "/quote/AMZN")[:2] == ("quote for anonymous", "HIT")
    assert len(origin.requests) == 1  # the second one was nginx's to answer

    for caller in ("Bearer ada", "Bearer bob", "Bearer ada"):
        body, status, _ = get(nginx, "/quote/AMZN", caller)
        assert body == f"quote for {caller}"
        assert status != "HIT"
    assert origin.handler_calls == [None, "Bearer ada", "Bearer bob", "Bearer ada"]

    assert get(nginx, "/quote/AMZN")[0] == "quote for anonymous"


def test_cacheable_answers_are_served_by_nginx_from_its_cache(
    front: tuple[NginxCache, Origin],
) -> None:
    nginx, origin = front
    for path in ("/quote/AMZN", "/quote/NVDA", "/quote/AMZN?currency=EUR"):
        for _ in range(3):
            get(nginx, path)
    assert [path for path, _ in origin.requests] == [
        "/quote/AMZN",
        "/quote/NVDA",
        "/quote/AMZN?currency=EUR",
    ]
    assert len(origin.handler_calls) == 3


def test_the_control_without_vary_nginx_hands_the_anonymous_answer_to_anyone(
    front: tuple[NginxCache, Origin],
) -> None:
    """What the Vary prevents: the same public answer made without it goes to ada."""
    nginx, origin = front
    assert get(nginx, "/raw/AMZN")[:2] == ("quote for anonymous", "MISS")
    assert get(nginx, "/raw/AMZN", "Bearer ada")[:2] == ("quote for anonymous", "HIT")
    assert origin.requests == [("/raw/AMZN", None)]
