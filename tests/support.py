"""Test helpers shared by every layer: fakes of our own seams, never of a server.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stratacache.tiers import MemoryTier


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BrokenTier(MemoryTier):
    """A tier whose every call fails, as a dead server's would."""

    def __init__(self) -> None:
        super().__init__(name="broken")

    def get(self, key: str) -> object:
        raise ConnectionError("connection refused")

    def set(self, key: str, value: object, ttl: float | None) -> None:
        raise ConnectionError("connection refused")


ROOT = Path(__file__).resolve().parent.parent
SAM_BIN = ROOT / ".venv-sam" / "bin"


def sam_tool(name: str) -> str:
    """A tool of the SAM virtual environment (``make sam-venv``)."""
    tool = SAM_BIN / name
    assert tool.exists(), f"{tool} is missing: `make sam-venv` installs AWS SAM CLI and cfn-lint"
    return str(tool)


def sam_env() -> dict[str, str]:
    """The environment SAM CLI runs in: no telemetry, a region."""
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


# ---------------------------------------------------------------- HTTP event shapes
# What API Gateway REST APIs (payload 1.0), HTTP APIs (2.0) and Function URLs send.


def rest_v1_event(
    path: str = "/quote/AMZN",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0)."""
    sent = {
        "Accept": "application/json",
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-65f1a2b3-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    context: dict[str, Any] = {
        "resourceId": "2gxmpl",
        "resourcePath": "/quote/{symbol}",
        "httpMethod": method,
        "extendedRequestId": "JJbxmHc0IAMFfTQ=",
        "requestTime": "10/Mar/2024:14:25:07 +0000",
        "path": f"/Prod{path}",
        "accountId": "123456789012",
        "protocol": "HTTP/1.1",
        "stage": "Prod",
        "domainPrefix": "a1b2c3d4e5",
        "requestTimeEpoch": 1710080707000,
        "requestId": "e0a1c7e4-6e0b-4a7e-9d55-2f1c4f3f8c3e",
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": "203.0.113.7",
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "curl/8.5.0",
            "user": None,
        },
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "apiId": "a1b2c3d4e5",
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": "/quote/{symbol}",
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {name: [value] for name, value in sent.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"symbol": path.rsplit("/", 1)[-1]},
        "stageVariables": None,
        "requestContext": context,
        "body": None,
        "isBase64Encoded": False,
    }


def _v2_event(
    path: str,
    method: str,
    headers: dict[str, str] | None,
    query: dict[str, list[str]] | None,
    domain: str,
    route_key: str,
) -> dict[str, Any]:
    sent = {
        "accept": "application/json",
        "content-length": "0",
        "host": domain,
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-65f1a2b3-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    raw_query = "&".join(f"{k}={v}" for k, values in (query or {}).items() for v in values)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".", maxsplit=1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "10/Mar/2024:14:25:07 +0000",
            "timeEpoch": 1710080707000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    return event


def http_v2_event(
    path: str = "/quote/AMZN",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0)."""
    event = _v2_event(
        path,
        method,
        headers,
        query,
        "r3pmxmplak.execute-api.us-east-1.amazonaws.com",
        f"{method} /quote/{{symbol}}",
    )
    event["pathParameters"] = {"symbol": path.rsplit("/", 1)[-1]}
    return event


def function_url_event(
    path: str = "/quote/AMZN",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """A Lambda Function URL event (payload 2.0, no routes, ``lambda-url`` domain)."""
    return _v2_event(
        path,
        method,
        headers,
        query,
        "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
        "$default",
    )


# ---------------------------------------------------------------- template.yaml


def load_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """template.yaml as data; short tags read as ``{"Ref": x}`` and ``{"Fn::X": y}``."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    Loader.add_multi_constructor("!", short_tag)
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=Loader)
    return loaded
