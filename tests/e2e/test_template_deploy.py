"""template.yaml as deployed: layers from SSM, ElastiCache Serverless settings, stream failures.

Read after SAM's transform (samtranslator, as ``sam deploy`` sends it), with the
conditions decided for the parameters a user would give.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import (
    ROOT,
    cfn_resolve,
    cfn_sub,
    load_cloudformation,
    sam_transform,
    template_defaults,
)

FUNCTIONS = ("QuoteFunction", "QuoteInvalidator")
REDIS_IAM = {"EnableRedis": "true", "RedisIamAuth": "true", "EnableStreamInvalidation": "true"}
REDIS_PLAIN = {"EnableRedis": "true", "RedisIamAuth": "false", "EnableStreamInvalidation": "true"}


def deployed(parameters: dict[str, str]) -> dict[str, Any]:
    """The transformed template with conditions decided: only the resources that exist."""
    template = sam_transform(**parameters)
    resources = {
        name: cfn_resolve(resource, template, parameters)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource
        or cfn_resolve({"Fn::If": [resource["Condition"], True, False]}, template, parameters)
    }
    return {**template, "Resources": resources}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]]  # fmt: skip


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(role: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """``(action, resource)`` pairs of the role's statements whose action starts with prefix."""
    return [
        (action, resource)
        for statement in statements(role)
        for action in as_list(statement["Action"])
        if action.startswith(prefix)
        for resource in as_list(statement["Resource"])
    ]


# ---------------------------------------------------------------- layers


def test_each_function_resolves_the_layers_of_its_own_runtime_and_architecture_from_ssm() -> None:
    parameters = {**REDIS_IAM, "Stage": "qa", "Architecture": "arm64"}
    resources = deployed(parameters)["Resources"]
    template = load_cloudformation()
    for name in FUNCTIONS:
        function = resources[name]["Properties"]
        runtime = function["Runtime"]  # python3.12
        layers = [
            cfn_sub(layer["Fn::Sub"], {**template_defaults(template), **parameters})
            for layer in function["Layers"]
        ]
        assert layers == [
            f"{{{{resolve:ssm:/stratacache/qa/{runtime}/layer-arn}}}}",
            f"{{{{resolve:ssm:/aws/service/powertools/python/arm64/{runtime}/"
            f"{template['Parameters']['PowertoolsVersion']['Default']}}}}}",
        ]


# ---------------------------------------------------------------- ElastiCache Serverless


def environment(resources: dict[str, Any], function: str) -> dict[str, Any]:
    env: dict[str, Any] = resources[function]["Properties"]["Environment"]["Variables"]
    return env


@pytest.mark.parametrize("parameters", [REDIS_IAM, REDIS_PLAIN])
def test_the_functions_use_the_serverless_cache_in_cluster_mode_over_tls(
    parameters: dict[str, str],
) -> None:
    resources = deployed(parameters)["Resources"]
    for function in FUNCTIONS:
        env = environment(resources, function)
        assert env["STRATACACHE_REDIS_CLUSTER"] == "true"
        assert env["STRATACACHE_REDIS_URL"]["Fn::Sub"].startswith("rediss://${ValkeyCache.")
    assert resources["ValkeyCache"]["Type"] == "AWS::ElastiCache::ServerlessCache"


def test_without_redis_no_cluster_mode_and_no_iam() -> None:
    resources = deployed({"RedisIamAuth": "true"})["Resources"]  # IAM needs Redis too
    env = environment(resources, "QuoteFunction")
    assert env["STRATACACHE_REDIS_URL"] == ""
    assert env["STRATACACHE_REDIS_CLUSTER"] == "false"
    assert env["STRATACACHE_REDIS_IAM_USER"] == ""
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::ElastiCache::")]


def test_iam_auth_signs_in_as_an_iam_user_of_the_cache_and_may_connect_only_there() -> None:
    resources = deployed(REDIS_IAM)["Resources"]
    cache = resources["ValkeyCache"]["Properties"]
    assert cache["UserGroupId"] == {"Ref": "ValkeyUserGroup"}
    group = resources["ValkeyUserGroup"]["Properties"]
    assert group["UserIds"] == [{"Ref": "ValkeyDefaultUser"}, {"Ref": "ValkeyIamUser"}]
    default = resources["ValkeyDefaultUser"]["Properties"]
    assert default["UserName"] == "default"
    assert default["AccessString"].split()[0] == "off"  # a group needs one; it can do nothing
    user = resources["ValkeyIamUser"]["Properties"]
    assert user["AuthenticationMode"] == {"Type": "iam"}
    assert user["UserId"] == user["UserName"]
    assert user["AccessString"].split()[0] == "on"

    for function in FUNCTIONS:
        env = environment(resources, function)
        assert env["STRATACACHE_REDIS_IAM_USER"] == {"Ref": "ValkeyIamUser"}
        assert env["STRATACACHE_REDIS_IAM_CACHE"] == {"Ref": "ValkeyCache"}
        assert env["STRATACACHE_REDIS_IAM_SERVERLESS"] == "true"
        role = resources[function + "Role"]
        assert sorted(granted(role, "elasticache:"), key=str) == [
            ("elasticache:Connect", {"Fn::GetAtt": ["ValkeyCache", "ARN"]}),
            ("elasticache:Connect", {"Fn::GetAtt": ["ValkeyIamUser", "Arn"]}),
        ]


def test_without_iam_auth_the_cache_has_no_user_group_and_no_connect_grant() -> None:
    resources = deployed(REDIS_PLAIN)["Resources"]
    assert "UserGroupId" not in resources["ValkeyCache"]["Properties"]
    assert "ValkeyIamUser" not in resources
    for function in FUNCTIONS:
        assert environment(resources, function)["STRATACACHE_REDIS_IAM_USER"] == ""
        assert granted(resources[function + "Role"], "elasticache:") == []


def test_every_stratacache_variable_the_template_sets_is_one_the_library_reads() -> None:
    config = (ROOT / "python" / "stratacache" / "config.py").read_text()
    names = set(re.findall(r'^ENV_\w+ = "(\w+)"', config, re.MULTILINE))
    for function in FUNCTIONS:
        env = environment(deployed(REDIS_IAM)["Resources"], function)
        set_here = {name for name in env if name.startswith("STRATACACHE_")}
        assert set_here <= names


# ---------------------------------------------------------------- stream invalidator


def test_a_stream_batch_that_fails_every_retry_is_kept_in_a_queue() -> None:
    resources = deployed(REDIS_PLAIN)["Resources"]
    (mapping,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    source = mapping["Properties"]
    queue_arn = {"Fn::GetAtt": ["QuoteInvalidatorFailures", "Arn"]}
    assert source["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["MaximumRetryAttempts"] == 10
    queue = resources["QuoteInvalidatorFailures"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # The event source sends as the function's role: that queue and nothing else.
    assert granted(resources["QuoteInvalidatorRole"], "sqs:") == [("sqs:SendMessage", queue_arn)]
    assert granted(resources["QuoteFunctionRole"], "sqs:") == []


def test_without_stream_invalidation_there_is_no_queue() -> None:
    resources = deployed({})["Resources"]
    assert "QuoteInvalidatorFailures" not in resources
    assert "QuoteInvalidator" not in resources
