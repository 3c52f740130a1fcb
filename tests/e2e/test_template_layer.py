"""layer/template.yaml, the layer stack other stacks depend on, and how the example finds it.

Other stacks read each layer version's ARN from an SSM parameter, never from an
export: CloudFormation refuses to change an export another stack imports, and
every new layer version is a new ARN.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import tomllib
from devkit.lambda_local import RUNTIMES

import stratacache
from tests.support import ROOT, cfn_sub, load_cloudformation, sam_transform, template_defaults

LAYER_TEMPLATE = ROOT / "layer" / "template.yaml"
SOURCES = {".yaml", ".yml", ".md", ".toml", ".json", ".py", ".tf", ".ts"}
RUNTIME_NAMES = [f"python{version}" for version in RUNTIMES]


def layer_stack(**parameters: str) -> dict[str, Any]:
    return sam_transform(LAYER_TEMPLATE, **parameters)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def powertools_under_test() -> str:
    """The aws-lambda-powertools release the test suite installs (requirements/dev.txt)."""
    text = (ROOT / "requirements" / "dev.txt").read_text()
    (version,) = re.findall(r"^aws-lambda-powertools(?:\[[^\]]*\])?==([\w.]+)", text, re.M)
    return str(version)


def test_one_layer_per_runtime_for_both_architectures_kept_after_the_stack_moves_on() -> None:
    layers = of_type(layer_stack(Stage="qa"), "AWS::Lambda::LayerVersion")
    by_runtime = {}
    for layer in layers.values():
        (runtime,) = layer["Properties"]["CompatibleRuntimes"]
        by_runtime[runtime] = layer
        assert sorted(layer["Properties"]["CompatibleArchitectures"]) == ["arm64", "x86_64"]
        assert layer["DeletionPolicy"] == layer["UpdateReplacePolicy"] == "Retain"
        # SAM's transform resolves the Stage in the name.
        assert layer["Properties"]["LayerName"] == {
            "Fn::Sub": "stratacache-qa-" + runtime.replace(".", "")
        }
    assert sorted(by_runtime) == RUNTIME_NAMES


def test_each_layer_is_built_by_the_makefile_target_named_after_it() -> None:
    resources = load_cloudformation(LAYER_TEMPLATE)["Resources"]
    makefile = (ROOT / "layer" / "Makefile").read_text()
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::LayerVersion":
            continue
        assert resource["Properties"]["ContentUri"] == "."  # the folder with the Makefile
        assert resource["Metadata"]["BuildMethod"] == "makefile"
        assert name.startswith("StratacacheLayerPython3")
        assert "build-StratacacheLayerPython3%:" in makefile


def test_the_layer_descriptions_carry_the_stratacache_version() -> None:
    template = load_cloudformation(LAYER_TEMPLATE)
    expected = f"stratacache {stratacache.__version__} "
    assert template["Description"].startswith(expected)
    for layer in of_type(template, "AWS::Serverless::LayerVersion").values():
        description = layer["Properties"]["Description"]
        assert description.startswith(expected), description
        assert len(description) <= 256  # Lambda's limit for a layer's description


def test_each_layer_arn_is_written_to_its_runtime_ssm_parameter() -> None:
    template = layer_stack(Stage="qa")
    layers = of_type(template, "AWS::Lambda::LayerVersion")
    runtime_of = {k: v["Properties"]["CompatibleRuntimes"][0] for k, v in layers.items()}
    written = {}
    for parameter in of_type(template, "AWS::SSM::Parameter").values():
        properties = parameter["Properties"]
        assert properties["Type"] == "String"
        name = cfn_sub(properties["Name"]["Fn::Sub"], {"Stage": "qa"})
        written[name] = runtime_of[properties["Value"]["Ref"]]
    assert written == {f"/stratacache/qa/{r}/layer-arn": r for r in RUNTIME_NAMES}


def test_no_layer_is_exported_and_nothing_imports_one() -> None:
    assert all("Export" not in o for o in layer_stack()["Outputs"].values())
    skip = {".git", ".venv", ".venv-sam", ".aws-sam", "dist", "tests", "node_modules"}
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in skip and not d.startswith(".venv")]
        for file in files:
            path = Path(folder) / file
            text = path.read_text(errors="replace") if path.suffix in SOURCES else ""
            if "ImportValue" in text:
                found.append(str(path.relative_to(ROOT)))
    assert found == []


def test_the_example_functions_find_a_layer_of_their_runtime_in_the_layer_stack() -> None:
    example = load_cloudformation()
    published = {
        cfn_sub(p["Properties"]["Name"]["Fn::Sub"], {"Stage": "dev"})
        for p in of_type(layer_stack(), "AWS::SSM::Parameter").values()
    }
    values = {**template_defaults(example), "Stage": "dev", "Architecture": "x86_64"}
    runtime = example["Globals"]["Function"]["Runtime"]
    for function in of_type(example, "AWS::Serverless::Function").values():
        (ours,) = [
            cfn_sub(layer["Fn::Sub"], values)
            for layer in function["Properties"]["Layers"]
            if "/stratacache/" in layer["Fn::Sub"]
        ]
        assert ours.removeprefix("{{resolve:ssm:").removesuffix("}}") in published
        assert f"/{function['Properties'].get('Runtime', runtime)}/" in ours


def test_the_template_powertools_pin_is_the_release_the_tests_run() -> None:
    pinned = load_cloudformation()["Parameters"]["PowertoolsVersion"]["Default"]
    assert pinned == powertools_under_test()


def test_every_powertools_layer_in_the_docs_is_the_tested_release() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    # A release (3.37.0) or "latest"; placeholders such as <version> are left aside.
    paths = re.findall(r"/aws/service/powertools/python/[^/\s]+/[^/\s]+/(\d[\w.]*|latest)", text)
    assert paths, "the docs show how to resolve the Powertools layer"
    assert set(paths) == {powertools_under_test()}
    assert "AWSLambdaPowertoolsPythonV3-" not in text  # no hand-written layer version


def test_each_samconfig_environment_deploys_a_layer_stack_of_the_same_stage() -> None:
    def stages(path: Path) -> dict[str, str]:
        config = tomllib.loads(path.read_text())
        found = {}
        for env, commands in config.items():
            if not isinstance(commands, dict) or "deploy" not in commands:
                continue
            overrides = commands["deploy"]["parameters"]["parameter_overrides"]
            (found[env],) = re.findall(r'Stage="([^"]+)"', overrides)
        return found

    example, layers = stages(ROOT / "samconfig.toml"), stages(ROOT / "layer" / "samconfig.toml")
    assert example == layers
    assert example["default"] == "dev"
