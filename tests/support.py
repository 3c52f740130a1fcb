"""Test helpers shared by every layer: fakes of our own seams, never of a server.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from stratacache.breaker import CircuitBreaker
from stratacache.freshness import Freshness
from stratacache.http import HttpCache
from stratacache.metrics import MetricsRecorder
from stratacache.tiered import TieredCache
from stratacache.tiers import DynamoDBTier, MemoryTier, RedisTier
from stratacache.tiers.base import FeedEntries, Missing, Tier

T = TypeVar("T")

REDIS_SECRET = "s3cret-Pa55word-4f9a"
"""The default user's password on the session's ``locked_redis`` server."""


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


class FakeSnapshotRuntime(ModuleType):
    """The Lambda runtime's ``snapshot_restore_py``: it records hooks and runs them when told.

    As awslambdaric's hooks runner does, before-snapshot hooks run in the reverse
    order of their registration, after-restore hooks in their order.
    """

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[Callable[[], object]] = []
        self.after: list[Callable[[], object]] = []

    def register_before_snapshot(self, func: Callable[[], object]) -> Callable[[], object]:
        self.before.append(func)
        return func

    def register_after_restore(self, func: Callable[[], object]) -> Callable[[], object]:
        self.after.append(func)
        return func

    def snapshot(self) -> None:
        for hook in reversed(self.before):
            hook()

    def restore(self) -> None:
        for hook in self.after:
            hook()


class KeepAliveProxy:
    """An HTTP/1.1 front for moto that keeps its clients' connections open, as AWS does.

    moto's server closes the connection after every answer; behind this proxy a
    boto3 client reuses its connection, ``accepted`` counts the connections made and
    ``operations`` the calls.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.accepted = 0
        self.operations: list[str] = []
        """The DynamoDB operations forwarded, in order (``GetItem``, ...)."""
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.operations.append(self.headers.get("X-Amz-Target", "").rpartition(".")[2])
                host, port = proxy.upstream.hostname, proxy.upstream.port
                upstream = http.client.HTTPConnection(host or "", port, timeout=30)
                try:
                    upstream.request("POST", self.path, body, dict(self.headers.items()))
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                proxy.accepted += 1
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KeepAliveProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)


class BrokenTier(MemoryTier):
    """A tier whose every call fails, as a dead server's would."""

    def __init__(self) -> None:
        super().__init__(name="broken")

    def get(self, key: str) -> object:
        raise ConnectionError("connection refused")

    def set(self, key: str, value: object, ttl: float | None) -> None:
        raise ConnectionError("connection refused")


ROOT = Path(__file__).resolve().parent.parent
# `make test SAM_VENV=...` passes its SAM virtual environment on; .venv-sam otherwise.
SAM_BIN = ROOT / os.environ.get("SAM_VENV", ".venv-sam") / "bin"


def sam_tool(name: str) -> str:
    """A tool of the SAM virtual environment (``make sam-venv``)."""
    tool = SAM_BIN / name
    assert tool.exists(), f"{tool} is missing: `make sam-venv` installs AWS SAM CLI and cfn-lint"
    return str(tool)


def sam_env() -> dict[str, str]:
    """The environment SAM CLI runs in: no telemetry, a region, no outer make's flags."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return {**env, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


# EMF lines as Powertools prints them


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF documents in captured stdout, one per line."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def value(doc: dict[str, Any], name: str) -> float:
    """A metric's value in an EMF document (Powertools prints a list of values)."""
    raw = doc[name]
    return float(sum(raw)) if isinstance(raw, list) else float(raw)


def tier_lines(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents of the cache tiers (the origin's calls have a line of their own)."""
    return [doc for doc in documents if doc.get("tier") not in (None, "origin")]


def cache_counts(documents: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{tier: {metric: value}}`` from the documents that carry a ``tier`` dimension."""
    out: dict[str, dict[str, int]] = {}
    for doc in documents:
        if "tier" not in doc:
            continue
        for definition in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            name = definition["Name"]
            out.setdefault(doc["tier"], {})[name] = int(value(doc, name))
    return out


# template.yaml as data


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


def load_cloudformation(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """A CloudFormation template with its short tags: ``!Ref x`` reads as ``{"Ref": x}``."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
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


@dataclass
class Build:
    """What ``sam build`` made of both stacks (the e2e session fixture ``sam_built``)."""

    root: Path  # the example stack's build folder: one folder per resource, and its template
    function: Path  # the example function's code, as it lands in /var/task
    layers: Path  # the layer stack's build folder (layer/template.yaml)

    def layer(self, version: str) -> Path:
        """The python``version`` layer's python/ folder, as it lands in /opt/python."""
        return self.layers / ("StratacacheLayerPython" + version.replace(".", "")) / "python"


# ---------------------------------------------------------------- template.yaml


_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri"):  # local folders until `sam package` uploads them
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://bucket/" + key
json.dump(transform(template, json.loads(sys.argv[2]), NoManagedPolicies()), sys.stdout)
"""


@cache
def _transformed(parameters: str, template: Path) -> str:
    result = subprocess.run(
        [sam_tool("python"), "-c", _TRANSFORM, str(template), parameters],
        capture_output=True,
        text=True,
        check=True,
        env=sam_env(),
        timeout=120,
    )
    return result.stdout


def sam_transform(template: Path = ROOT / "template.yaml", /, **parameters: str) -> dict[str, Any]:
    """``template`` as CloudFormation gets it after the SAM transform, for these parameters."""
    transformed: dict[str, Any] = json.loads(
        _transformed(json.dumps(parameters, sort_keys=True), template)
    )
    return transformed


def cfn_resolve(node: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """``node`` with conditions (Fn::If) and parameter Refs decided for ``parameters``.

    Other intrinsic functions (Fn::Sub, Fn::GetAtt, resource Refs) are left as they are.
    """

    def value(node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (value(item) for item in node) if v != {"Ref": "AWS::NoValue"}]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return value(yes if condition(template["Conditions"][name]) else no)
        if set(node) == {"Ref"} and node["Ref"] in template.get("Parameters", {}):
            default = template["Parameters"][node["Ref"]].get("Default")
            return parameters.get(node["Ref"], default)
        return {k: v for k, v in ((k, value(v)) for k, v in node.items())
                if v != {"Ref": "AWS::NoValue"}}  # fmt: skip

    def condition(node: Any) -> bool:
        ((function, args),) = node.items()
        if function in (
            "Condition",
            "Fn::Condition",
        ):  # as SAM writes it, and as YAML reads !Condition
            return condition(template["Conditions"][args])
        if function == "Fn::Equals":
            return bool(value(args[0]) == value(args[1]))
        if function == "Fn::And":
            return all(condition(arg) for arg in args)
        if function == "Fn::Or":
            return any(condition(arg) for arg in args)
        if function == "Fn::Not":
            return not condition(args[0])
        raise AssertionError(f"unexpected condition {node}")

    return value(node)


def template_defaults(template: dict[str, Any]) -> dict[str, str]:
    """Each template parameter's default value, as text."""
    return {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" in parameter
    }


def cfn_sub(text: str, values: dict[str, str]) -> str:
    """``Fn::Sub``'s one-argument form: each ``${Name}`` replaced from ``values``."""
    import re

    def one(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"${{{match.group(1)}}} has no value"
        return values[match.group(1)]

    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, text)


def stream_records(endpoint: str, stream_arn: str) -> list[dict[str, Any]]:
    """Every record of a DynamoDB stream on moto, as JSON on the wire: Lambda's event shape.

    Read with a raw ``GetRecords`` request, not boto3, whose parser turns Binary
    values into bytes: Lambda hands a function the JSON, Binary base64-encoded.
    """
    import boto3

    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1")
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        target = urllib.parse.urlsplit(endpoint)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        connection.request(
            "POST",
            "/",
            body=json.dumps({"ShardIterator": iterator}),
            headers={
                "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                "dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        answer = json.loads(connection.getresponse().read())
        connection.close()
        for record in answer["Records"]:
            records.append({**record, "eventSourceARN": stream_arn})  # Lambda adds it
    return records


# ---------------------------------------------------------------- DynamoDB items


def dynamodb_attribute_values() -> Any:
    """A hypothesis strategy: any attribute value DynamoDB can hand back, as boto3's client does.

    ``{"S": str}``, ``{"N": str}``, ``{"B": bytes}``, ``{"BOOL": bool}``, ``{"NULL": True}``,
    the sets ``SS``, ``NS``, ``BS``, and ``L`` / ``M`` nesting any of them.
    """
    from hypothesis import strategies as st

    numbers = st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        # Within DynamoDB's range and its 38 digits of precision.
        st.decimals(-(10**30), 10**30, places=6, allow_nan=False, allow_infinity=False).map(str),
    )
    text = st.text(max_size=12)
    scalars = st.one_of(
        st.builds(lambda s: {"S": s}, text),
        st.builds(lambda n: {"N": n}, numbers),
        st.builds(lambda b: {"B": b}, st.binary(max_size=80)),
        st.builds(lambda b: {"BOOL": b}, st.booleans()),
        st.just({"NULL": True}),
        st.builds(lambda s: {"SS": s}, st.lists(text, min_size=1, max_size=3, unique=True)),
        st.builds(
            lambda n: {"NS": [str(x) for x in n]},
            st.lists(st.integers(-999, 999), min_size=1, max_size=3, unique=True),
        ),
        st.builds(
            lambda b: {"BS": b},
            st.lists(st.binary(max_size=9), min_size=1, max_size=3, unique=True),
        ),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
            st.builds(
                lambda fields: {"M": fields},
                st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
            ),
        ),
        max_leaves=6,
    )


# ---------------------------------------------------------------- stopping a call mid-way


def entry_keys(redis_client: Any) -> list[bytes]:
    """The keys in Redis other than the namespaces' invalidation feeds (``ns#feed{ns}``)."""
    return [key for key in redis_client.scan_iter() if b"#feed{" not in key]


class MovingData:
    """The data behind a cache: a version that moves, and a way to stop a reader in it.

    ``read(key)`` answers ``key@v<version>`` and counts in ``reads``; set ``hold`` to an
    event and the next read stops after reading (``holding`` is set) until it is set.
    """

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0
        self.hold: threading.Event | None = None
        self.holding = threading.Event()

    def read(self, key: str) -> str:
        self.reads += 1
        seen = f"{key}@v{self.version}"
        hold, self.hold = self.hold, None
        if hold is not None:  # stop here, having read the old version
            self.holding.set()
            assert hold.wait(30)
        return seen


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """``fn()`` started in a thread of its own; the thread, and a list that gets its result."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    return thread, out


class Gate:
    """Stops the next gated call to a tier right after it returned, until released."""

    def __init__(self) -> None:
        self.armed = False
        self.stopped = threading.Event()
        self.go = threading.Event()

    def pass_through(self, result: T) -> T:
        if self.armed:
            self.armed = False
            self.stopped.set()
            assert self.go.wait(30)
        return result


class GatedRedis(RedisTier):
    gate = Gate()  # reads
    write_gate = Gate()  # single-record conditional writes (a fill, a tombstone)

    def get(self, key: str) -> object | Missing:
        return self.gate.pass_through(super().get(key))

    def swap(
        self,
        key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        counter: tuple[str, int] | None = None,
    ) -> tuple[bool, object | Missing]:
        return self.write_gate.pass_through(super().swap(key, blob, keep, expect, counter))

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int | None]:
        return self.gate.pass_through(super().get_with_counter(key, counter))

    def get_with_feed(
        self, key: str, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[object | Missing, int | None, FeedEntries]:
        return self.gate.pass_through(super().get_with_feed(key, counter, feed, after, count))


class GatedDynamoDB(DynamoDBTier):
    gate = Gate()  # reads
    write_gate = Gate()  # single-record conditional writes

    def get(self, key: str) -> object | Missing:
        return self.gate.pass_through(super().get(key))

    def swap(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> tuple[bool, object | Missing]:
        return self.write_gate.pass_through(super().swap(key, blob, keep, expect))

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int | None]:
        return self.gate.pass_through(super().get_with_counter(key, counter))


class FakeSharedTier:
    """An in-memory fake of our own tier protocol with every capability, for engine tests.

    It keeps bytes with a keep-until on an injected clock, writes conditionally on
    the version bytes of the record it holds (as ``RedisTier``'s script does, a
    write never shortening how long a record was to be kept), and keeps counters.
    ``calls`` lists every operation asked of it, by name.
    """

    stores_bytes = True
    breaker = None
    max_value_bytes = None

    def __init__(self, clock: Callable[[], float], name: str = "L2") -> None:
        from stratacache.tiers.base import Capabilities

        self.name = name
        self.ttl: float | None = None
        self.capabilities = Capabilities(versioned=True, counter=True)
        self.clock = clock
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.counters: dict[str, int] = {}
        self.calls: list[str] = []

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self.data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self.clock():
            del self.data[key]
            return None
        return entry

    def get(self, key: str) -> object:
        from stratacache.tiers.base import MISS

        self.calls.append("get")
        entry = self._live(key)
        return MISS if entry is None else entry[0]

    def get_many(self, keys: Any) -> list[object]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.calls.append("set")
        assert isinstance(value, bytes)
        self.data[key] = (value, None if ttl is None else self.clock() + ttl)

    def set_many(self, items: Any, ttl: float | None) -> None:
        for key, value in items.items():
            self.set(key, value, ttl)

    def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: Any) -> int:
        return sum(self.delete(key) for key in keys)

    def remaining_ttl(self, key: str) -> float | None | Missing:
        from stratacache.tiers.base import MISS

        entry = self._live(key)
        if entry is None:
            return MISS
        return None if entry[1] is None else entry[1] - self.clock()

    def clear(self, prefix: str) -> int:
        doomed = [key for key in self.data if key.startswith(prefix)]
        for key in doomed:
            del self.data[key]
        return len(doomed)

    def close(self) -> None:
        """Nothing to release."""

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        from stratacache.tiers.base import ANY, FOREIGN, MISS, VERSION_OFFSET, VERSION_SIZE

        self.calls.append("swap")
        entry = self._live(key)
        current = None if entry is None else entry[0]
        version = None if current is None else current[VERSION_OFFSET:][:VERSION_SIZE]
        ok = (
            expect == ANY
            or (expect is None and current is None)
            or (expect == FOREIGN and current is not None and current[:3] != b"SC\x03")
            or (expect not in (None, ANY, FOREIGN) and version == expect)
        )
        if not ok:
            return False, MISS if current is None else current
        until = None if keep is None else self.clock() + keep
        if entry is not None and until is not None and (entry[1] is None or entry[1] > until):
            until = entry[1]
        self.data[key] = (blob, until)
        return True, MISS if current is None else current

    def swap_many(self, items: Any) -> list[bool]:
        return [
            self.swap(key, blob, keep, expect)[0] for key, (blob, expect, keep) in items.items()
        ]

    def delete_if(self, key: str, expect: bytes) -> bool:
        from stratacache.tiers.base import VERSION_OFFSET, VERSION_SIZE

        self.calls.append("delete_if")
        entry = self._live(key)
        if entry is None or entry[0][VERSION_OFFSET:][:VERSION_SIZE] != expect:
            return False
        del self.data[key]
        return True

    def read_counter(self, key: str) -> int:
        self.calls.append("read_counter")
        return self.counters.get(key, 0)

    def bump_counter(self, key: str, floor: int) -> int:
        self.calls.append("bump_counter")
        self.counters[key] = max(self.counters.get(key, 0) + 1, floor)
        return self.counters[key]

    def get_with_counter(self, key: str, counter: str) -> tuple[object, int | None]:
        self.calls.append("get_with_counter")
        found = self.get(key)
        self.calls.pop()
        return found, self.counters.get(counter)


# ---------------------------------------------------------------- DynamoDB requests as sent


def dynamodb_requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(operation, parameters)`` of every call ``client`` makes from now on, as sent."""
    import copy

    sent: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, copy.deepcopy(params)))

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    return sent


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still false after {timeout}s: {condition}"
        time.sleep(0.005)


def zlib_bomb(inflated: int) -> bytes:
    """zlib data that inflates to ``inflated`` bytes (whole MiB) of zeros: a few hundred KiB."""
    import zlib

    packer = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join(parts) + packer.flush()


def all_waiting(threads: list[threading.Thread]) -> bool:
    """Whether every one of ``threads`` is blocked in a threading wait (an Event, a Condition).

    Read from the threads' current frames, so a test can release a gate once the
    others have piled up behind it instead of sleeping and hoping they have.
    """
    import sys

    frames = sys._current_frames()
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        if frame is None or frame.f_code.co_name != "wait":
            return False
        if not frame.f_code.co_filename.endswith("threading.py"):
            return False
    return True


def throttle_call(client: Any, operation: str, nth: int) -> list[int]:
    """Make the ``nth`` call of ``operation`` on a boto3 DynamoDB client fail with a
    ThrottlingException before it is sent; the list returned counts the calls."""
    from botocore.exceptions import ClientError

    calls = [0]

    def throttle(**_: Any) -> None:
        calls[0] += 1
        if calls[0] == nth:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, operation
            )

    client.meta.events.register(f"before-call.dynamodb.{operation}", throttle)
    return calls


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter with ``env`` added; fails if it fails."""
    import sys

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, **env},
    )


def run_environment(folder: Path, env: dict[str, str], *argv: str) -> dict[str, Any]:
    """One more 'execution environment': a fresh interpreter running ``python *argv`` in
    ``folder`` (on its path); what it printed last, as JSON."""
    import sys

    out = subprocess.run(
        [sys.executable, *argv],
        cwd=folder,
        env={**os.environ, **env, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


# --- HTTP helpers ---
# HttpCache over one in-memory tier and a fake clock, and reading an answer's headers,
# for the HTTP unit tests.


class HttpOrigin:
    """A Lambda handler that counts its calls and answers what it is told to."""

    def __init__(self, body: str = '{"price": 1.5}', status: int = 200) -> None:
        self.calls = 0
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.extra: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        self.calls += 1
        return {
            "statusCode": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "isBase64Encoded": False,
            **self.extra,
        }


def http_memory_cache(clock: FakeClock, grace: float | None = None) -> TieredCache:
    """The tiers of an HTTP cache in tests: one memory tier, ttl 60, on ``clock``."""
    return TieredCache(
        [MemoryTier(timer=clock)],
        ttl=60,
        namespace="test",
        clock=clock,
        freshness=Freshness(grace=grace),
    )


def memory_http(clock: FakeClock, grace: float | None = None, **options: Any) -> HttpCache:
    """An :class:`HttpCache` with ttl 60 over :func:`http_memory_cache`."""
    return HttpCache(
        ttl=60, grace=grace, cache=http_memory_cache(clock, grace), clock=clock, **options
    )


def answer_header(answer: dict[str, Any], name: str) -> str | None:
    """A header of a proxy answer's ``headers``, its name in any case; ``None`` if absent."""
    for key, value in (answer.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


# --- engine fakes (chain mutation tests) ---


class FaultyTier(FakeSharedTier):
    """A :class:`FakeSharedTier` whose operations named in ``failing`` raise, as a tier that
    times out does; ``failing`` may change mid-test (from inside a computation, say).

    A failed call is listed in ``calls`` too, under the operation's name.
    """

    breaker: CircuitBreaker | None = None  # type: ignore[assignment]
    max_value_bytes: int | None = None  # type: ignore[assignment]

    def __init__(
        self,
        clock: Callable[[], float],
        name: str = "L2",
        *,
        breaker: CircuitBreaker | None = None,
        max_value_bytes: int | None = None,
    ) -> None:
        super().__init__(clock, name)
        self.breaker = breaker
        self.max_value_bytes = max_value_bytes
        self.failing: set[str] = set()
        self.failure: type[Exception] = ConnectionError
        """What a failing operation raises: silence by default; a server's refusal
        (an ``OutOfMemoryError``, say) is another kind of failure to the engine."""

    def _check(self, operation: str) -> None:
        if operation in self.failing:
            self.calls.append(operation)
            raise self.failure(f"{self.name} {operation} failed")

    def get(self, key: str) -> object:
        self._check("get")
        return super().get(key)

    def get_many(self, keys: Any) -> list[object]:
        self._check("get_many")
        return super().get_many(keys)

    def swap(self, key: str, blob: bytes, keep: float | None, expect: bytes | None) -> Any:
        self._check("swap")
        return super().swap(key, blob, keep, expect)

    def swap_many(self, items: Any) -> list[bool]:
        self._check("swap_many")
        return super().swap_many(items)

    def delete_if(self, key: str, expect: bytes) -> bool:
        self._check("delete_if")
        return super().delete_if(key, expect)

    def delete(self, key: str) -> bool:
        self._check("delete")
        return super().delete(key)

    def delete_many(self, keys: Any) -> int:
        self._check("delete_many")
        return super().delete_many(keys)

    def read_counter(self, key: str) -> int:
        self._check("read_counter")
        return super().read_counter(key)

    def get_with_counter(self, key: str, counter: str) -> tuple[object, int | None]:
        self._check("get_with_counter")
        return super().get_with_counter(key, counter)


class RestoringTier(FaultyTier):
    """A :class:`FaultyTier` that, like ``RedisTier``, can write a counter it lost back
    (``raise_counter``), alone or with a write in the same round trip; a counter never
    bumped (or lost) reads as ``None`` with a get, as the protocol says."""

    def raise_counter(self, key: str, floor: int) -> int:
        self.calls.append("raise_counter")
        self.counters[key] = max(self.counters.get(key, 0), floor)
        return self.counters[key]

    def swap(
        self,
        key: str,
        blob: bytes,
        keep: float | None,
        expect: bytes | None,
        counter: tuple[str, int] | None = None,
    ) -> Any:
        done = super().swap(key, blob, keep, expect)
        if counter is not None:
            self.raise_counter(*counter)
        return done

    def swap_many(self, items: Any, counter: tuple[str, int] | None = None) -> list[bool]:
        done = super().swap_many(items)
        if counter is not None:
            self.raise_counter(*counter)
        return done


class FakeFeedTier(FaultyTier):
    """A :class:`FaultyTier` that keeps an invalidation feed per namespace too (``FeedTier``).

    ``feeds[feed]`` lists ``(id, keys)`` oldest first, ids ``"1-0"``, ``"2-0"``, ...; a
    test trims one by deleting its oldest entries, or drops it, as a flushed server would.
    """

    def __init__(self, clock: Callable[[], float], name: str = "L2") -> None:
        from stratacache.tiers.base import Capabilities

        super().__init__(clock, name)
        self.capabilities = Capabilities(versioned=True, counter=True, feed=True)
        self.feeds: dict[str, FeedEntries] = {}
        self.published = 0

    def publish(self, feed: str, keys: Any) -> str:
        self._check("publish")
        self.calls.append("publish")
        self.published += 1
        entry_id = f"{self.published}-0"
        self.feeds.setdefault(feed, []).append((entry_id, tuple(keys)))
        return entry_id

    def _entries(self, feed: str, after: str | None, count: int) -> FeedEntries:
        entries = self.feeds.get(feed, [])
        if after is None:
            return entries[-1:]
        if after == "":
            return entries[:count]
        start = int(after.split("-")[0])
        return [entry for entry in entries if int(entry[0].split("-")[0]) >= start][:count]

    def delete(self, key: str) -> bool:
        held = super().delete(key)  # raises first when "delete" is failing
        return self.feeds.pop(key, None) is not None or held

    def read_with_feed(
        self, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[int | None, FeedEntries]:
        self._check("read_with_feed")
        self.calls.append("read_with_feed")
        return self.counters.get(counter), self._entries(feed, after, count)

    def get_with_feed(
        self, key: str, counter: str, feed: str, after: str | None, count: int
    ) -> tuple[object, int | None, FeedEntries]:
        self._check("get_with_feed")
        self.calls.append("get_with_feed")
        found = FakeSharedTier.get(self, key)
        self.calls.pop()
        return found, self.counters.get(counter), self._entries(feed, after, count)


def cache_over(clock: FakeClock, *tiers: Tier, **options: Any) -> TieredCache:
    """A cache over ``tiers`` for the engine's unit tests: every clock is ``clock``, a 60 s
    ttl, the generation read every 5 s, metrics kept (never flushed); ``options`` override."""
    settings: dict[str, Any] = {
        "namespace": "engine",
        "ttl": 60,
        "generation_check": 5,
        "recorder": MetricsRecorder(interval=3600),
        **options,
    }
    return TieredCache(list(tiers), clock=clock, monotonic=clock, **settings)


def memory_over(shared: Any, clock: FakeClock, **options: Any) -> TieredCache:
    """:func:`cache_over` an L1 on ``clock`` and ``shared``."""
    return cache_over(clock, MemoryTier(timer=clock), shared, **options)


def two_tiers(clock: FakeClock, **options: Any) -> tuple[TieredCache, FakeSharedTier]:
    """:func:`memory_over` a new :class:`FakeSharedTier`, and that tier."""
    shared = FakeSharedTier(clock)
    return memory_over(shared, clock, **options), shared


def guard_counts(cache: TieredCache, index: int) -> tuple[int, int, int]:
    """Hits, misses and errors the engine counted for ``cache``'s tier ``index``."""
    c = cache._engine.chain.guards[index].counts
    return c.hits, c.misses, c.errors


def library_messages(caplog: Any) -> list[str]:
    """The messages stratacache logged, in order."""
    return [r.getMessage() for r in caplog.records if r.name == "stratacache"]
