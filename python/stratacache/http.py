"""HTTP caching of Lambda proxy responses: ``Cache-Control`` from the entry, ``ETag``, 304.

A GET answered through :class:`HttpCache` is kept in the tiers as a whole
response. Every answer carries ``Cache-Control`` derived from the cached entry
(``max-age`` and ``s-maxage`` from its *remaining* lifetime, so CloudFront or a
browser never keeps it longer than the tiers do; ``stale-while-revalidate``
from ``grace``; ``stale-if-error``) and a strong ``ETag`` digested from the
body, computed once when the response is stored and so the same in every
execution environment. A request whose ``If-None-Match`` names that tag gets
``304 Not Modified`` with an empty body.

A stored public answer also carries ``Vary: Authorization``: which answer a
request gets depends on that header (RFC 9110 §12.5.5), so a shared cache in
front (nginx, a CDN) never hands an anonymous answer to an authorized caller.

Answers go through :meth:`TieredCache.get_or_compute`, the one algorithm behind
every cached call: one handler call per cold path across environments (the
lease), grace and stale-if-error, and writes that an invalidation refuses.
An answer that is not to be kept goes through its ``should_cache`` hook.

Event shapes understood: API Gateway REST (payload 1.0), HTTP API (2.0),
Lambda Function URLs (2.0) and Application Load Balancer targets (the 1.0 shape;
with multi-value headers on, every header of the answer is sent in
``multiValueHeaders``, the only field ALB then reads). Anything else passes through
untouched.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, ParamSpec, Protocol, TypeVar, overload
from urllib.parse import parse_qsl

from stratacache import config
from stratacache.errors import ConfigurationError
from stratacache.freshness import Freshness
from stratacache.tiered import TieredCache
from stratacache.tiers import tiers_from_env

logger = logging.getLogger("stratacache")

P = ParamSpec("P")
R = TypeVar("R")
Query = Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]]
"""A query for :meth:`HttpCache.invalidate`: ``{"a": "1"}``, ``{"a": ["1", "2"]}`` or pairs."""

#: Statuses kept by default: successful or permanent answers, never an error.
CACHEABLE_STATUSES: Final = frozenset({200, 203, 204, 300, 301, 308})
_RECORD_VERSION: Final = 1
_KEPT_BY_304: Final = frozenset({"cache-control", "etag", "vary", "content-location", "expires"})
_OWN_HEADERS: Final = frozenset({"cache-control", "etag", "vary"})
_REFUSING: Final = ("no-store", "no-cache", "private")
_PRIVATE_VARY: Final = frozenset({"authorization", "cookie", "*"})


class HttpRequest:
    """The parts of an API Gateway / Function URL event that decide a cached answer.

    ``headers`` has lower-case names; ``principal`` is the authorizer's identity
    (a Lambda authorizer's ``principalId``, a JWT's ``sub``, an IAM ARN), if any.
    """

    # Frozen by hand rather than a frozen dataclass, which is generated and compiled at
    # import: about 0.6 ms of every cold start that uses HTTP caching (issue 18).
    __slots__ = ("headers", "method", "path", "principal", "query", "version")

    version: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    principal: str | None

    def __init__(
        self,
        version: str,
        method: str,
        path: str,
        query: tuple[tuple[str, str], ...],
        headers: Mapping[str, str],
        principal: str | None = None,
    ) -> None:
        for name, value in (
            ("version", version),
            ("method", method),
            ("path", path),
            ("query", query),
            ("headers", headers),
            ("principal", principal),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"an HttpRequest is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"an HttpRequest is frozen: cannot delete {name!r}")

    def _fields(self) -> tuple[object, ...]:
        return (self.version, self.method, self.path, self.query, self.headers, self.principal)

    def __repr__(self) -> str:
        return (
            f"HttpRequest(version={self.version!r}, method={self.method!r}, path={self.path!r}, "
            f"query={self.query!r}, headers={self.headers!r}, principal={self.principal!r})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not HttpRequest:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # as the dataclass: headers is a dict

    @property
    def authorized(self) -> bool:
        """Whether the request carries credentials, so its answer may be someone's own."""
        return "authorization" in self.headers or self.principal is not None

    @classmethod
    def from_event(cls, event: object) -> HttpRequest | None:
        """Read a REST (1.0), HTTP API or Function URL (2.0) event; ``None`` for anything else.

        Example:
            >>> HttpRequest.from_event({"httpMethod": "GET", "path": "/a"}).path
            '/a'
        """
        if not isinstance(event, Mapping):
            return None
        context = event.get("requestContext") or {}
        http = context.get("http") if isinstance(context, Mapping) else None
        if event.get("version") == "2.0" and isinstance(http, Mapping):
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            if event.get("cookies"):
                headers["cookie"] = "; ".join(event["cookies"])
            return cls(
                version="2.0",
                method=str(http.get("method", "")).upper(),
                path=str(event.get("rawPath") or http.get("path") or "/"),
                query=tuple(
                    sorted(parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True))
                ),
                headers=headers,
                principal=_principal(context.get("authorizer")),
            )
        if "httpMethod" in event:
            multi = event.get("multiValueHeaders") or {}
            single = event.get("headers") or {}
            headers = {str(k).lower(): ", ".join(map(str, v)) for k, v in multi.items()}
            for name, value in single.items():
                headers.setdefault(str(name).lower(), str(value))
            query_multi = event.get("multiValueQueryStringParameters") or {}
            query = [(k, str(v)) for k, values in query_multi.items() for v in values]
            if not query:
                query = [(k, str(v)) for k, v in (event.get("queryStringParameters") or {}).items()]
            authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
            return cls(
                version="1.0",
                method=str(event["httpMethod"]).upper(),
                path=str(event.get("path") or "/"),
                query=tuple(sorted(query)),
                headers=headers,
                principal=_principal(authorizer),
            )
        return None


def _principal(authorizer: object) -> str | None:
    """The caller's identity an API Gateway authorizer put in the event, if any."""
    if not isinstance(authorizer, Mapping) or not authorizer:
        return None
    for path in (
        ("principalId",),
        ("claims", "sub"),
        ("jwt", "claims", "sub"),
        ("iam", "userArn"),
        ("lambda", "principalId"),
    ):
        node: object = authorizer
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node:
            return str(node)
    # Some authorizer answered but named nobody we know: still someone's own answer.
    return json.dumps(authorizer, sort_keys=True, default=str)


class _Response:
    """A proxy integration response, whichever payload version it came in."""

    __slots__ = ("base64", "body", "extra", "headers", "multi", "status")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        multi: dict[str, list[str]] | None,
        body: str,
        base64: bool,
        extra: dict[str, Any] | None = None,  # cookies and other fields
    ) -> None:
        self.status = status
        self.headers = headers
        self.multi = multi
        self.body = body
        self.base64 = base64
        self.extra: dict[str, Any] = {} if extra is None else extra

    @classmethod
    def parse(cls, raw: object, version: str) -> _Response | None:
        if isinstance(raw, Mapping) and "statusCode" in raw:
            try:
                status = int(raw["statusCode"])
            except (TypeError, ValueError):
                return None
            body = raw.get("body")
            return cls(
                status=status,
                headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()},
                multi=(
                    {str(k): [str(v) for v in vs] for k, vs in raw["multiValueHeaders"].items()}
                    if raw.get("multiValueHeaders")
                    else None
                ),
                body="" if body is None else str(body),
                base64=bool(raw.get("isBase64Encoded")),
                extra={
                    k: v
                    for k, v in raw.items()
                    if k not in {"statusCode", "headers", "multiValueHeaders", "body"}
                    and k != "isBase64Encoded"
                },
            )
        if version == "2.0" and raw is not None:
            # HTTP APIs and Function URLs turn a bare return value into a 200 JSON answer.
            body = raw if isinstance(raw, str) else json.dumps(raw)
            return cls(200, {"content-type": "application/json"}, None, body, False)
        return None

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively, multi-value ones joined."""
        values = [v for k, v in self.headers.items() if k.lower() == name]
        for key, listed in (self.multi or {}).items():
            if key.lower() == name:
                values.extend(listed)
        return ", ".join(values) if values else None

    def body_bytes(self) -> bytes:
        return base64.b64decode(self.body) if self.base64 else self.body.encode()


def entity_tag(body: bytes, content_type: str | None = None, encoding: str | None = None) -> str:
    """A strong ETag: a digest of the body, its media type and its content coding.

    Example:
        >>> entity_tag(b"{}", "application/json")
        '"eca5d9e203f414b6b3fc27ce63478ab3"'
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in (content_type or "", encoding or ""):
        digest.update(len(part).to_bytes(4, "big") + part.encode())
    digest.update(body)
    return f'"{digest.hexdigest()}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as ``If-None-Match`` asks: ``W/"x"`` matches ``"x"``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def _key_material(parts: Iterable[object]) -> str:
    """An injective encoding of the key's parts (JSON of a list), digested."""
    encoded = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(encoded.encode(), digest_size=16).hexdigest()


class CachedHandler(Protocol, Generic[P, R]):
    """A Lambda handler wrapped by :func:`http_cached`: call it as before, and more."""

    http_cache: HttpCache
    __wrapped__: Callable[P, R]
    __name__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def invalidate(
        self,
        event_or_path: object,
        *,
        query: Query = (),
        headers: Mapping[str, str] | None = None,
        principal: str | None = None,
    ) -> bool:
        """Remove a request's answer from every tier (:meth:`HttpCache.invalidate`)."""
        ...

    def refresh(self, event: object, context: object = None) -> R:
        """Invalidate the answer to ``event``, run the handler for it and store its answer."""
        ...


class HttpCache:
    """Cache whole HTTP answers and derive their ``Cache-Control``, ``ETag`` and 304s.

    Args:
        ttl: seconds an answer stays fresh (default: the cache's ttl, else
            ``STRATACACHE_TTL`` or 300).
        grace: seconds a stale answer is still kept: advertised as
            ``stale-while-revalidate``, and served when refreshing it fails
            (default: the cache's grace).
        stale_if_error: ``stale-if-error`` seconds advertised (default: ``grace``).
        browser_ttl: cap on ``max-age`` (browsers), leaving ``s-maxage`` (CloudFront)
            at the remaining lifetime; e.g. ``0`` to make browsers revalidate.
        vary: request headers that select among answers (``"accept-language"``);
            they become part of the key and of the ``Vary`` header.
        cache_authorized: cache answers to requests with credentials (an
            ``Authorization`` header or an authorizer's principal), keyed per
            caller and marked ``private``. Off: such answers pass through,
            marked ``private, no-store`` unless they set ``Cache-Control``.
        statuses: response statuses that may be stored (default: no errors).
        cache: the :class:`TieredCache` to keep answers in (default: the tiers the
            environment configures, with the ``ttl`` and ``grace`` given here). Its
            ttl and grace are the answers' own: a ``ttl`` or ``grace`` given here
            must match them, and it may have no jitter.
        namespace: key namespace of the default cache (``STRATACACHE_NAMESPACE``).
        name: tells apart the APIs sharing a namespace; part of every key.
        clock: epoch seconds (default: the cache's clock); inject a fake one in tests.

    Example:
        >>> http = HttpCache(ttl=60, grace=30)
        >>> event = {"httpMethod": "GET", "path": "/hello", "headers": {}}
        >>> answer = http.handle(event, lambda: {"statusCode": 200, "body": "hi"})
        >>> answer["headers"]["Cache-Control"]
        'max-age=60, s-maxage=60, stale-while-revalidate=30, stale-if-error=30'
        >>> answer["headers"]["Vary"]
        'authorization'
    """

    def __init__(
        self,
        *,
        ttl: float | None = None,
        grace: float | None = None,
        stale_if_error: float | None = None,
        browser_ttl: float | None = None,
        vary: Iterable[str] = (),
        cache_authorized: bool = False,
        statuses: Iterable[int] = CACHEABLE_STATUSES,
        cache: TieredCache | None = None,
        namespace: str | None = None,
        name: str = "http",
        clock: Callable[[], float] | None = None,
    ) -> None:
        given_ttl = None if ttl is None else config.resolve_ttl(ttl)
        given_grace = config.check_ttl(grace, "grace")
        if cache is None:
            resolved = given_ttl if given_ttl is not None else config.resolve_ttl(None)
            cache = TieredCache(
                tiers_from_env(),
                ttl=resolved,
                namespace=f"{config.resolve_namespace(namespace)}:http",
                freshness=Freshness(grace=given_grace),
                clock=clock or time.time,
            )
        _check_cache(cache, given_ttl, given_grace)
        assert cache.default_ttl is not None  # _check_cache refuses a cache without one
        self.cache = cache
        self.ttl = cache.default_ttl
        self.grace = cache.freshness.grace
        self.stale_if_error = (
            self.grace
            if stale_if_error is None
            else config.check_ttl(stale_if_error, "stale_if_error")
        )
        if browser_ttl is not None and (
            isinstance(browser_ttl, bool)
            or not isinstance(browser_ttl, int | float)
            or not 0 <= browser_ttl < math.inf
        ):
            raise ConfigurationError(f"browser_ttl must be seconds >= 0, got {browser_ttl!r}")
        self.browser_ttl = browser_ttl
        if isinstance(vary, str):
            vary = (vary,)
        self.vary = tuple(sorted({v.strip().lower() for v in vary}))
        if any(not v or v in _PRIVATE_VARY for v in self.vary):
            raise ConfigurationError(
                f"vary names request headers other than Authorization and Cookie, got {vary!r}"
                " (use cache_authorized=True for per-caller answers)"
            )
        self.cache_authorized = bool(cache_authorized)
        self.statuses = frozenset(int(s) for s in statuses)
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ConfigurationError(
                f"name must be a non-empty string without spaces, got {name!r}"
            )
        self.name = name
        self.clock = clock or cache.clock

    def __repr__(self) -> str:
        return f"HttpCache(name={self.name!r}, ttl={self.ttl}, grace={self.grace})"

    # ------------------------------------------------------------ keys and headers

    def key(self, request: HttpRequest) -> str:
        """The cache key of a request's answer (HEAD shares GET's)."""
        parts: list[object] = [self.name, request.path, [list(q) for q in request.query]]
        parts.append([request.headers.get(name, "") for name in self.vary])
        if request.authorized:  # only with cache_authorized: one entry per caller
            parts.append([request.headers.get("authorization", ""), request.principal or ""])
        return f"http:{_key_material(parts)}"

    def cache_control(self, remaining: float, private: bool = False) -> str:
        """The ``Cache-Control`` value for an answer with ``remaining`` fresh seconds.

        Example:
            >>> HttpCache(ttl=60, grace=30).cache_control(42.7)
            'max-age=42, s-maxage=42, stale-while-revalidate=30, stale-if-error=30'
        """
        shared = max(0, math.floor(remaining))
        browser = shared if self.browser_ttl is None else min(shared, int(self.browser_ttl))
        parts = (
            ["private", f"max-age={browser}"]
            if private
            else [
                f"max-age={browser}",
                f"s-maxage={shared}",
            ]
        )
        if self.grace:
            parts.append(f"stale-while-revalidate={math.floor(self.grace)}")
        if self.stale_if_error:
            parts.append(f"stale-if-error={math.floor(self.stale_if_error)}")
        return ", ".join(parts)

    def _vary_header(self) -> str:
        # Authorization always: it decides between a shared, a per-caller and an
        # uncached answer, so a shared cache must not answer one caller with another's.
        return ", ".join([*self.vary, "authorization"])

    # ------------------------------------------------------------ answering

    def handle(self, event: object, produce: Callable[[], Any]) -> Any:
        """Answer ``event`` from the cache, or from ``produce()`` and store what it returns.

        ``produce`` returns a proxy response (``{"statusCode": ..., "body": ...}``,
        or for 2.0 events any value API Gateway would turn into a 200). What cannot
        be cached (other methods, errors, redirects, answers that set cookies or refuse
        caching, unknown events) is ``produce()``'s own return value, untouched but for
        ``Cache-Control: no-store`` on errors (4xx, 5xx) that set none.
        """
        request = HttpRequest.from_event(event)
        if (
            request is None
            or request.method not in ("GET", "HEAD")
            or config.env_flag(config.ENV_DISABLED)
        ):
            return produce()
        if request.authorized and not self.cache_authorized:
            return _refuse(produce(), request.version, "private, no-store")
        key = self.key(request)
        if request.method == "HEAD":  # a HEAD answer has no body to store for GETs
            found = self.cache.get(key)
            return self._answer(found, request) if _is_record(found) else produce()
        mine = object()  # tells this call's own answer from one it shared with others
        made: list[object] = []

        def compute() -> object:
            made.append(self._outcome(request, produce(), mine))
            return made[0]

        for _ in range(2):
            try:
                value = self.cache.get_or_compute(key, compute, should_cache=_is_record)
            except _ServerError as error:
                # Nothing stale to serve instead. Another request's error is not ours.
                return error.answer if error.owner is mine else self._own(request, produce)
            if isinstance(value, _Passed):
                return value.answer if value.owner is mine else self._own(request, produce)
            if _is_record(value):  # one just made has all its ttl left, to the second
                return self._answer(value, request, self.ttl if made else None)
            self.cache.delete(key)  # an entry of another format: replace it, once
        return self._own(request, produce)

    def _outcome(self, request: HttpRequest, raw: object, mine: object) -> object:
        """What the algorithm gets from the handler: a record to keep, or an answer to pass.

        A 5xx is raised, so that the algorithm serves a stale answer instead if it has one.
        """
        response = _Response.parse(raw, request.version)
        if response is None:
            return _Passed(raw, mine)
        if response.status not in self.statuses:
            if response.status >= 500:
                raise _ServerError(_refuse(raw, request.version, "no-store"), response.status, mine)
            if response.status >= 400:  # edges must not keep errors
                return _Passed(_refuse(raw, request.version, "no-store"), mine)
            return _Passed(raw, mine)
        if not self._storable(response):
            return _Passed(raw, mine)
        return _record(response, self.clock() + self.ttl)

    def _own(self, request: HttpRequest, produce: Callable[[], Any]) -> Any:
        """A request that shared a computation whose answer was not to be kept runs its own.

        Such an answer may be someone's own (it sets a cookie) or an error; either
        way it was not stored, so every request that wanted it asks the handler.
        """
        raw = produce()
        response = _Response.parse(raw, request.version)
        if response is not None and response.status >= 400 and response.status not in self.statuses:
            return _refuse(raw, request.version, "no-store")
        return raw

    def _storable(self, response: _Response) -> bool:
        """Whether an answer may be shared: no cookies set, no refusal, no per-caller Vary."""
        if response.header("set-cookie") is not None or response.extra.get("cookies"):
            return False
        own = (response.header("cache-control") or "").lower()
        if any(word in own for word in _REFUSING):
            return False
        varies = {v.strip().lower() for v in (response.header("vary") or "").split(",")}
        return not (varies & _PRIVATE_VARY)

    def _answer(
        self, record: Any, request: HttpRequest, left: float | None = None
    ) -> dict[str, Any]:
        """The proxy response for a stored record: its headers, or a 304 when the tag matches."""
        headers = {k: v for k, v in record["headers"].items() if k.lower() not in _OWN_HEADERS}
        multi = record["multi"]
        if multi is not None:
            multi = {k: v for k, v in multi.items() if k.lower() not in _OWN_HEADERS}
        if left is None:  # past it: a stale answer, max-age=0
            left = record["fresh_until"] - self.clock()
        headers["Cache-Control"] = self.cache_control(left, request.authorized)
        headers["ETag"] = record["etag"]
        headers["Vary"] = self._vary_header()
        body, encoded = record["body"], record["base64"]
        status = record["status"]
        if 200 <= status < 300 and _matches(request.headers.get("if-none-match"), record["etag"]):
            status, body, encoded = 304, "", False
            headers = {k: v for k, v in headers.items() if k.lower() in _KEPT_BY_304}
            if multi is not None:
                multi = {k: v for k, v in multi.items() if k.lower() in _KEPT_BY_304}
        elif request.method == "HEAD":
            body, encoded = "", False
        answer: dict[str, Any] = {"statusCode": status, "headers": headers}
        if multi:
            answer["multiValueHeaders"] = multi
        answer["body"] = body
        answer["isBase64Encoded"] = encoded
        return answer

    # ------------------------------------------------------------ invalidation

    def invalidate(
        self,
        event_or_path: object,
        *,
        query: Query = (),
        headers: Mapping[str, str] | None = None,
        principal: str | None = None,
    ) -> bool:
        """Remove the answer to a GET (or HEAD) from every tier; ``True`` when a tier held it.

        ``event_or_path`` is an event as :meth:`handle` takes, or a path; with a
        path, ``query``, ``headers`` (those named in ``vary``, and
        ``Authorization`` for a caller's own answer) and ``principal`` select the
        answer as a request's would. The guarantee of ``f.invalidate()`` holds: an
        answer being computed when it runs can no longer be stored afterwards.

        Example:
            >>> http = HttpCache(ttl=60)
            >>> _ = http.handle({"httpMethod": "GET", "path": "/a"}, lambda: {"statusCode": 200})
            >>> http.invalidate("/a")
            True
        """
        return self.cache.delete(self.key(_request(event_or_path, query, headers, principal)))

    def refresh(self, event: object, produce: Callable[[], Any]) -> Any:
        """Invalidate the answer to ``event``, then answer it as :meth:`handle` does.

        The handler runs (unless another request stored a newer answer meanwhile),
        and its answer replaces the old one in every tier.
        """
        self.invalidate(event)
        return self.handle(event, produce)

    # ------------------------------------------------------------ fitting in

    def __call__(self, handler: Callable[P, R]) -> CachedHandler[P, R]:
        """Wrap a Lambda handler ``handler(event, context)``.

        The wrapper carries ``http_cache`` (this object), ``invalidate(event_or_path,
        ...)`` and ``refresh(event, context=None)``.
        """

        call: Callable[..., Any] = handler  # (event, context, ...): a Lambda handler

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            answer = self.handle(event, lambda: call(event, context, *args, **kwargs))
            return _headers_in_multi(answer) if _alb_multi(event) else answer

        def refresh(event: Any, context: Any = None) -> Any:
            return self.refresh(event, lambda: call(event, context))

        wrapper.http_cache = self  # type: ignore[attr-defined]
        wrapper.invalidate = self.invalidate  # type: ignore[attr-defined]
        wrapper.refresh = refresh  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def middleware(self, app: Any, next_middleware: Callable[[Any], Any]) -> Any:
        """A Powertools event-handler middleware: ``@app.get("/x", middlewares=[http.middleware])``.

        Works with ``APIGatewayRestResolver``, ``APIGatewayHttpResolver`` and
        ``LambdaFunctionUrlResolver``. Leave the route's own ``cache_control`` and
        ``compress`` unset: Powertools applies them after middlewares.
        """
        from aws_lambda_powertools.event_handler.api_gateway import Response

        made: list[Any] = []

        def produce() -> dict[str, Any]:
            response = next_middleware(app)
            made[:] = [response, _from_powertools(response)]
            return made[1]  # type: ignore[no-any-return]

        answer = self.handle(app.current_event.raw_event, produce)
        if made and answer is made[1]:
            return made[0]  # untouched: keep the route's own object (cookies and all)
        headers: dict[str, str | list[str]] = dict(answer.get("headers") or {})
        headers.update(answer.get("multiValueHeaders") or {})
        body = answer["body"]
        return Response(
            status_code=answer["statusCode"],
            body=base64.b64decode(body) if answer["isBase64Encoded"] else body,
            headers=headers,
        )


class _Passed:
    """An answer that is not kept, and the request whose handler made it."""

    __slots__ = ("answer", "owner")

    def __init__(self, answer: object, owner: object) -> None:
        self.answer = answer
        self.owner = owner


class _ServerError(Exception):
    """A 5xx answer, raised so that the algorithm serves a stale answer instead, if any."""

    def __init__(self, answer: object, status: int, owner: object) -> None:
        super().__init__(f"the handler answered {status}")
        self.answer = answer
        self.owner = owner


def _check_cache(cache: TieredCache, ttl: float | None, grace: float | None) -> None:
    """The cache's ttl and grace are the answers': refuse settings that say otherwise."""
    if not isinstance(cache, TieredCache):
        raise ConfigurationError(f"cache must be a TieredCache, got {type(cache).__name__}")
    if cache.default_ttl is None:
        raise ConfigurationError("cache must have a ttl: Cache-Control states what is left of it")
    if ttl is not None and ttl != cache.default_ttl:
        raise ConfigurationError(
            f"ttl={ttl:g} differs from the cache's ttl ({cache.default_ttl:g}), which answers"
            " are kept for; leave ttl unset"
        )
    if grace is not None and grace != cache.freshness.grace:
        raise ConfigurationError(
            f"grace={grace:g} differs from the cache's grace ({cache.freshness.grace}),"
            " which stale answers are kept for; leave grace unset"
        )
    if cache.freshness.jitter:
        raise ConfigurationError(
            "the cache has jitter: Cache-Control would promise more than the entry's lifetime"
        )


def _request(
    event_or_path: object,
    query: Query,
    headers: Mapping[str, str] | None,
    principal: str | None,
) -> HttpRequest:
    """The request whose answer :meth:`HttpCache.invalidate` removes."""
    if isinstance(event_or_path, str):
        if not event_or_path.startswith("/"):
            raise ValueError(f"a path starts with '/', got {event_or_path!r}")
        pairs: list[tuple[str, str]] = []
        items = query.items() if isinstance(query, Mapping) else query
        for name, value in items:
            values = [value] if isinstance(value, str) else list(value)
            pairs.extend((str(name), str(v)) for v in values)
        return HttpRequest(
            version="2.0",
            method="GET",
            path=event_or_path,
            query=tuple(sorted(pairs)),
            headers={str(k).lower(): str(v) for k, v in (headers or {}).items()},
            principal=principal,
        )
    request = HttpRequest.from_event(event_or_path)
    if request is None:
        raise ValueError(
            "expected a path or an API Gateway / Function URL event, got"
            f" {type(event_or_path).__name__}"
        )
    return request


def _from_powertools(response: Any) -> dict[str, Any]:
    """A Powertools ``Response`` as the proxy response it will become."""
    body = response.body
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body, separators=(",", ":"), default=str)
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        if isinstance(value, list):
            multi[name] = [str(v) for v in value]
        else:
            headers[name] = str(value)
    if response.cookies:
        multi["Set-Cookie"] = [str(cookie) for cookie in response.cookies]
    encoded = isinstance(body, bytes)
    return {
        "statusCode": int(response.status_code),
        "headers": headers,
        "multiValueHeaders": multi,
        "body": base64.b64encode(body).decode() if encoded else (body or ""),
        "isBase64Encoded": encoded,
    }


def _record(response: _Response, fresh_until: float) -> dict[str, Any]:
    """What is stored: the answer, its ETag, and when it stops being fresh."""
    etag = entity_tag(
        response.body_bytes(), response.header("content-type"), response.header("content-encoding")
    )
    return {
        "v": _RECORD_VERSION,
        "status": response.status,
        "headers": response.headers,
        "multi": response.multi,
        "body": response.body,
        "base64": response.base64,
        "etag": etag,
        "fresh_until": fresh_until,
    }


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and value.get("v") == _RECORD_VERSION


def _alb_multi(event: object) -> bool:
    """Whether ``event`` comes from an ALB target group with multi-value headers on
    (ALB then sends ``multiValueHeaders`` instead of ``headers``, and reads only
    ``multiValueHeaders`` of the answer)."""
    if not isinstance(event, Mapping) or "multiValueHeaders" not in event:
        return False
    context = event.get("requestContext")
    return isinstance(context, Mapping) and "elb" in context


def _headers_in_multi(answer: Any) -> Any:
    """``answer`` with its ``headers`` moved into ``multiValueHeaders``; a name already
    there keeps its values there (the ones ALB would have sent).

    >>> _headers_in_multi({"statusCode": 200, "headers": {"ETag": '"a"'}, "body": ""})
    {'statusCode': 200, 'body': '', 'multiValueHeaders': {'ETag': ['"a"']}}
    """
    if not isinstance(answer, Mapping) or "headers" not in answer:
        return answer
    out = dict(answer)
    single = out.pop("headers") or {}
    multi = {str(k): list(v) for k, v in (out.get("multiValueHeaders") or {}).items()}
    present = {name.lower() for name in multi}
    for name, value in single.items():
        if str(name).lower() not in present:
            multi[str(name)] = [str(value)]
    out["multiValueHeaders"] = multi
    return out


def _refuse(raw: Any, version: str, cache_control: str) -> Any:
    """``raw`` with ``Cache-Control: cache_control`` added when it sets none."""
    response = _Response.parse(raw, version)
    if response is None or response.header("cache-control") is not None:
        return raw
    if not (isinstance(raw, Mapping) and "statusCode" in raw):
        raw = {
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body,
            "isBase64Encoded": False,
        }
    return {**raw, "headers": {**(raw.get("headers") or {}), "Cache-Control": cache_control}}


@overload
def http_cached(handler: Callable[P, R], /) -> CachedHandler[P, R]: ...


@overload
def http_cached(
    handler: None = None,
    /,
    *,
    ttl: float | None = None,
    grace: float | None = None,
    stale_if_error: float | None = None,
    browser_ttl: float | None = None,
    vary: Iterable[str] = (),
    cache_authorized: bool = False,
    statuses: Iterable[int] = CACHEABLE_STATUSES,
    cache: TieredCache | None = None,
    namespace: str | None = None,
    clock: Callable[[], float] | None = None,
) -> Callable[[Callable[P, R]], CachedHandler[P, R]]: ...


def http_cached(
    handler: Callable[P, R] | None = None,
    /,
    *,
    ttl: float | None = None,
    grace: float | None = None,
    stale_if_error: float | None = None,
    browser_ttl: float | None = None,
    vary: Iterable[str] = (),
    cache_authorized: bool = False,
    statuses: Iterable[int] = CACHEABLE_STATUSES,
    cache: TieredCache | None = None,
    namespace: str | None = None,
    clock: Callable[[], float] | None = None,
) -> CachedHandler[P, R] | Callable[[Callable[P, R]], CachedHandler[P, R]]:
    """Cache a Lambda handler's HTTP answers, with ``Cache-Control``, ``ETag`` and 304s.

    Bare or with the arguments of :class:`HttpCache`; the handler's
    ``module.qualname`` tells its keys apart from other handlers'. The handler
    gains ``invalidate(event_or_path, ...)`` and ``refresh(event, context=None)``
    (see :meth:`HttpCache.invalidate`).

    Example:
        >>> @http_cached(ttl=60, grace=30)
        ... def handler(event, context):
        ...     return {"statusCode": 200, "body": "hello"}
        >>> handler({"httpMethod": "GET", "path": "/"}, None)["headers"]["ETag"]
        '"1da02013dd1b331b1424b4f6c2ea8bd7"'
    """

    def decorate(func: Callable[P, R]) -> CachedHandler[P, R]:
        if not callable(func):
            raise TypeError(f"@http_cached decorates a handler, got {type(func).__name__}")
        http = HttpCache(
            ttl=ttl,
            grace=grace,
            stale_if_error=stale_if_error,
            browser_ttl=browser_ttl,
            vary=vary,
            cache_authorized=cache_authorized,
            statuses=statuses,
            cache=cache,
            namespace=namespace,
            name=f"{func.__module__}.{func.__qualname__}",
            clock=clock,
        )
        return http(func)

    return decorate if handler is None else decorate(handler)
