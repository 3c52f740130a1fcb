"""template.yaml: the API Gateway stage cache, CloudFront and the warm-up schedule.

Each is behind a parameter that is off by default; with all of them on the
template still passes cfn-lint. The custom resource that sets "Require
authorization" (which CloudFormation's MethodSetting lacks) is run here from the
template's own inline code, against a stand-in API Gateway client and a local
endpoint for its CloudFormation answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import pytest

from stratacache.http import HttpCache
from stratacache.warmup import is_warmup
from tests.support import ROOT, sam_tool

OPTIONS = {
    "EnableApiCache": "WithApiCache",
    "EnableCloudFront": "WithCloudFront",
    "WarmupSchedule": "WithWarmup",
}
OFF = {"EnableApiCache": "false", "EnableCloudFront": "false", "WarmupSchedule": ""}


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][name]
    return found


def refs(node: object) -> set[str]:
    """Every name ``Ref``'d or ``GetAtt``'d (also inside ``Fn::Sub`` strings) in ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                parts = text.split("${")[1:]
                found.update(part.split("}")[0].split(".")[0] for part in parts)
            found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


@pytest.mark.parametrize(
    "parameters",
    [
        ["EnableApiCache=true", "EnableCloudFront=true", "WarmupSchedule=rate(5 minutes)"],
        ["EnableCloudFront=true"],
        ["EnableApiCache=true"],
    ],
    ids=["all-on", "cloudfront-on-http-api", "api-cache-only"],
)
def test_cfn_lint_passes_with_the_options_on(parameters: list[str]) -> None:
    result = subprocess.run(
        [sam_tool("cfn-lint"), "--parameters", *parameters, "--", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_option_is_off_by_default_and_guards_its_resources(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for parameter, default in OFF.items():
        assert parameters[parameter]["Default"] == default
    conditions = template["Conditions"]
    assert conditions["WithApiCache"] == {"Fn::Equals": [{"Ref": "EnableApiCache"}, "true"]}
    assert conditions["WithCloudFront"] == {"Fn::Equals": [{"Ref": "EnableCloudFront"}, "true"]}
    assert conditions["WithWarmup"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WarmupSchedule"}, ""]}]
    }
    guarded = {
        name: body.get("Condition")
        for name, body in template["Resources"].items()
        if body.get("Condition") in OPTIONS.values()
    }
    # cfn-lint above checks that no resource reaches one its condition may leave out.
    assert sorted(set(guarded.values())) == sorted(OPTIONS.values())


def test_the_stage_caches_encrypted_with_the_ttl_and_size_parameters(
    template: dict[str, Any],
) -> None:
    stage = resource(template, "QuoteRestStage")["Properties"]
    assert stage["CacheClusterEnabled"] is True
    assert stage["CacheClusterSize"] == {"Ref": "ApiCacheSize"}
    (setting,) = stage["MethodSettings"]
    assert setting["CachingEnabled"] is True
    assert setting["CacheDataEncrypted"] is True
    assert setting["CacheTtlInSeconds"] == {"Ref": "ApiCacheTtl"}
    assert template["Parameters"]["ApiCacheTtl"]["MaxValue"] == 3600  # API Gateway's limit
    assert template["Parameters"]["ApiCacheSize"]["Default"] == "0.5"
    sizes = template["Parameters"]["ApiCacheSize"]["AllowedValues"]
    assert sizes == ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"]


def test_the_method_setting_and_cache_keys_name_the_method_that_exists(
    template: dict[str, Any],
) -> None:
    (setting,) = resource(template, "QuoteRestStage")["Properties"]["MethodSettings"]
    method = resource(template, "QuoteRestGet")["Properties"]
    parts = [
        resource(template, "QuoteRestResource")["Properties"]["PathPart"],
        resource(template, "QuoteRestSymbolResource")["Properties"]["PathPart"],
    ]
    assert setting["ResourcePath"] == "/" + "".join(f"~1{part}" for part in parts)
    assert setting["HttpMethod"] == method["HttpMethod"] == "GET"
    keys = method["Integration"]["CacheKeyParameters"]
    assert keys == ["method.request.path.symbol"]
    assert set(keys) <= set(method["RequestParameters"])
    assert method["Integration"]["Type"] == "AWS_PROXY"


# ---------------------------------------------------------------- Require authorization


class _Answers(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - one server per test, reset below

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local stand-in for CloudFormation's pre-signed ResponseURL."""
    _Answers.received = []
    server = HTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/answer", _Answers.received
    finally:
        server.shutdown()
        server.server_close()


class _FakeApiGateway:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    def update_stage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.fail:
            raise PermissionError("not allowed: apigateway:PATCH")
        return {}


def custom_resource(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> tuple[dict[str, Any], _FakeApiGateway]:
    """The inline function's module, with boto3 standing in for API Gateway."""
    client = _FakeApiGateway(fail)
    boto3 = ModuleType("boto3")
    boto3.client = lambda service: client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    code = resource(template, "ApiCacheAuthorizationFunction")["Properties"]["Code"]["ZipFile"]
    namespace: dict[str, Any] = {}
    exec(compile(code, "index.py", "exec"), namespace)  # the template's own inline code
    return namespace, client


def cfn_event(template: dict[str, Any], request_type: str, url: str) -> dict[str, Any]:
    properties = dict(resource(template, "ApiCacheAuthorization")["Properties"])
    properties.update({"RestApiId": "a1b2c3", "StageName": "dev", "DeploymentId": "d1"})
    properties.update(
        {
            "RequireAuthorizationForCacheControl": "true",
            "UnauthorizedCacheControlHeaderStrategy": "FAIL_WITH_403",
        }
    )
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "ApiCacheAuthorization",
        "ResourceType": "Custom::ApiCacheAuthorization",
        "ResourceProperties": properties,
    }


def test_the_custom_resource_sets_require_authorization_on_the_stage_and_the_method(
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    response_url: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = response_url
    module, client = custom_resource(template, monkeypatch)
    module["handler"](cfn_event(template, "Create", url), None)
    (call,) = client.calls
    assert call["restApiId"] == "a1b2c3"
    assert call["stageName"] == "dev"
    assert {(op["path"], op["value"]) for op in call["patchOperations"]} == {
        ("/*/*/caching/requireAuthorizationForCacheControl", "true"),
        ("/*/*/caching/unauthorizedCacheControlHeaderStrategy", "FAIL_WITH_403"),
        ("/~1quote~1{symbol}/GET/caching/requireAuthorizationForCacheControl", "true"),
        ("/~1quote~1{symbol}/GET/caching/unauthorizedCacheControlHeaderStrategy", "FAIL_WITH_403"),
    }
    (answer,) = received
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "a1b2c3/dev"
    assert answer["RequestId"] == "r-1"


def test_the_custom_resource_reports_a_failure_and_ignores_deletes(
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    response_url: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = response_url
    module, client = custom_resource(template, monkeypatch, fail=True)
    module["handler"](cfn_event(template, "Update", url), None)
    module["handler"](cfn_event(template, "Delete", url), None)
    assert len(client.calls) == 1  # the delete left the stage alone
    assert [answer["Status"] for answer in received] == ["FAILED", "SUCCESS"]
    assert "PermissionError" in received[0]["Reason"]


def test_require_authorization_is_on_by_default_and_passed_to_the_custom_resource(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["ApiCacheRequireAuthorization"]["Default"] == "true"
    assert parameters["ApiCacheUnauthorizedStrategy"]["Default"] == "FAIL_WITH_403"
    properties = resource(template, "ApiCacheAuthorization")["Properties"]
    assert properties["RequireAuthorizationForCacheControl"] == {
        "Ref": "ApiCacheRequireAuthorization"
    }
    assert properties["UnauthorizedCacheControlHeaderStrategy"] == {
        "Ref": "ApiCacheUnauthorizedStrategy"
    }


def test_the_custom_resource_may_patch_only_this_stage(template: dict[str, Any]) -> None:
    role = resource(template, "ApiCacheAuthorizationRole")["Properties"]
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "apigateway:PATCH"
    assert statement["Resource"]["Fn::Sub"].endswith("/restapis/${QuoteRestApi}/stages/${Stage}")


# ---------------------------------------------------------------- CloudFront


def test_the_cache_policy_keeps_answers_only_as_long_as_the_origin_says(
    template: dict[str, Any],
) -> None:
    config = resource(template, "QuoteCachePolicy")["Properties"]["CachePolicyConfig"]
    assert config["MinTTL"] == 0
    assert config["DefaultTTL"] == 0  # no Cache-Control from the origin: not kept
    # The longest lifetime HttpCache can advertise with the template's defaults fits.
    assert config["MaxTTL"] >= template["Parameters"]["QuoteTtl"]["Default"]
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"]["QueryStringBehavior"] == "all"  # as HttpCache keys
    assert key["CookiesConfig"]["CookieBehavior"] == "none"
    assert key["HeadersConfig"]["HeaderBehavior"] == "none"  # Authorization never forwarded


def test_the_distribution_fronts_the_api_with_that_policy(template: dict[str, Any]) -> None:
    config = resource(template, "QuoteDistribution")["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == {"Ref": "QuoteCachePolicy"}
    assert behavior["CachedMethods"] == ["GET", "HEAD"]
    (origin,) = config["Origins"]
    assert behavior["TargetOriginId"] == origin["Id"]
    condition, rest, http = origin["DomainName"]["Fn::If"]
    assert condition == "WithApiCache"  # the REST API when it exists, else the HTTP API
    assert refs(rest) == {"QuoteRestApi", "AWS::Region", "AWS::URLSuffix"}
    assert refs(http) == {"ServerlessHttpApi", "AWS::Region", "AWS::URLSuffix"}
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"


def test_http_cache_headers_are_ones_cloudfront_reads() -> None:
    header = HttpCache(ttl=300, grace=30).cache_control(120)
    directives = {part.split("=")[0] for part in header.split(", ")}
    assert directives <= {"s-maxage", "max-age", "stale-while-revalidate", "stale-if-error"}


# ---------------------------------------------------------------- warm-up


def test_the_warmup_schedule_sends_an_event_the_helper_recognises(
    template: dict[str, Any],
) -> None:
    rule = resource(template, "QuoteWarmupRule")["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "WarmupSchedule"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["QuoteFunction", "Arn"]}
    assert is_warmup(json.loads(target["Input"]))
    permission = resource(template, "QuoteWarmupPermission")["Properties"]
    assert permission["SourceArn"] == {"Fn::GetAtt": ["QuoteWarmupRule", "Arn"]}
