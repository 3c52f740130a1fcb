"""Test helpers shared by every layer: fakes of our own seams, never of a server.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
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


@dataclass
class Build:
    """What ``sam build`` made (the e2e session fixture ``sam_built``)."""

    root: Path  # the build folder: one folder per resource, and the built template
    function: Path  # the example function's code, as it lands in /var/task

    def layer(self, version: str) -> Path:
        """The python``version`` layer's python/ folder, as it lands in /opt/python."""
        return self.root / ("StratacacheLayerPython" + version.replace(".", "")) / "python"


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
def _transformed(parameters: str) -> str:
    result = subprocess.run(
        [sam_tool("python"), "-c", _TRANSFORM, str(ROOT / "template.yaml"), parameters],
        capture_output=True,
        text=True,
        check=True,
        env=sam_env(),
        timeout=120,
    )
    return result.stdout


def sam_transform(**parameters: str) -> dict[str, Any]:
    """template.yaml as CloudFormation gets it after the SAM transform, for these parameters."""
    transformed: dict[str, Any] = json.loads(_transformed(json.dumps(parameters, sort_keys=True)))
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
