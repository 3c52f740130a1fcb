"""template.yaml and layer/template.yaml pass cfn-lint and SAM; least privilege on the table."""

from __future__ import annotations

import copy
import re
import subprocess
from typing import Any

import pytest

from tests.support import ROOT, load_cloudformation, sam_env, sam_tool


def _statements(node: Any) -> list[dict[str, Any]]:
    """Every IAM statement anywhere in ``node`` (inside Fn::If branches too)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "Statement" in node:
            statement = node["Statement"]
            found += statement if isinstance(statement, list) else [statement]
        for value in node.values():
            found += _statements(value)
    elif isinstance(node, list):
        for item in node:
            found += _statements(item)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def dynamodb_wildcards(template: dict[str, Any]) -> list[str]:
    """IAM statements that grant DynamoDB with a wildcard action or resource."""
    problems: list[str] = []
    for statement in _statements(template.get("Resources", {})):
        actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        dynamodb = [a for a in actions if a == "*" or a.lower().startswith("dynamodb:")]
        if not dynamodb:
            continue
        wild_actions = [a for a in dynamodb if "*" in a]
        if wild_actions:
            problems.append(f"wildcard action {wild_actions} in {statement.get('Sid', statement)}")
        for resource in _as_list(statement.get("Resource", [])):
            if isinstance(resource, str) and "*" in resource:
                problems.append(
                    f"wildcard resource {resource!r} in {statement.get('Sid', statement)}"
                )
    return problems


@pytest.mark.parametrize("template", ["template.yaml", "layer/template.yaml"])
def test_cfn_lint_passes(template: str) -> None:
    result = subprocess.run(
        [sam_tool("cfn-lint"), template],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("folder", [".", "layer"])
def test_sam_validate_with_lint_passes(folder: str) -> None:
    # From the template's own folder, as its samconfig.toml (lint = true) is read there.
    result = subprocess.run(
        [sam_tool("sam"), "validate", "--lint"],
        check=False,
        cwd=ROOT / folder,
        capture_output=True,
        text=True,
        env=sam_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid SAM Template" in result.stdout


def test_no_dynamodb_wildcards_in_the_template() -> None:
    assert dynamodb_wildcards(load_cloudformation()) == []


def test_the_function_gets_only_what_the_dynamodb_tier_calls_on_the_table() -> None:
    function = load_cloudformation()["Resources"]["QuoteFunction"]["Properties"]
    (statement,) = [
        s for s in _statements(function["Policies"]) if s.get("Sid") == "CacheTableReadWrite"
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["CacheTable", "Arn"]}
    tier_source = (ROOT / "python" / "stratacache" / "tiers" / "dynamodb.py").read_text()
    for action in statement["Action"]:
        call = "".join("_" + c.lower() if c.isupper() else c for c in action.split(":")[1])[1:]
        assert re.search(rf"\.{call}\b|\"{call}\"", tier_source), f"{action} is never called"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("dynamodb:*", {"Fn::GetAtt": ["CacheTable", "Arn"]}),
        ("dynamodb:Get*", {"Fn::GetAtt": ["CacheTable", "Arn"]}),
        ("*", {"Fn::GetAtt": ["CacheTable", "Arn"]}),
        ("dynamodb:GetItem", "*"),
        ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/*"),
    ],
)
def test_the_checker_catches_a_doctored_template(action: str, resource: object) -> None:
    doctored = copy.deepcopy(load_cloudformation())
    doctored["Resources"]["Sneaky"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {
                "Statement": [{"Effect": "Allow", "Action": [action], "Resource": resource}]
            }
        },
    }
    assert len(dynamodb_wildcards(doctored)) == 1


def test_the_table_has_ttl_on_the_attribute_the_tier_writes_and_encryption() -> None:
    table = load_cloudformation()["Resources"]["CacheTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
