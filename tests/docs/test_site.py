"""The site builds strictly, and the deploy snippets say what the Deploy page promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.docs.markdown_blocks import ROOT, all_blocks


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Sub, !Ref, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "stratacache benchmarks" in (tmp_path / "performance" / "index.html").read_text()
    deploy = (tmp_path / "deploy" / "index.html").read_text()
    for tab in ("SAM / CloudFormation", "CDK", "Terraform", "Serverless Framework"):
        assert f">{tab}</label>" in deploy, tab


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [p for p in pages if not p.startswith("snippets/") and p not in nav]
    assert not missing


def test_yaml_snippets_parse() -> None:
    snippets = [b for b in all_blocks() if b.lang in {"yaml", "yml"}]
    assert len(snippets) >= 2
    for block in snippets:
        assert isinstance(yaml.load(block.code, Loader=_CloudFormationLoader), dict), block.where


def test_layers_are_resolved_from_ssm_never_imported() -> None:
    for block in all_blocks():
        assert "ImportValue" not in block.code, block.where
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "{{resolve:ssm:/stratacache/dev/python3.12/layer-arn}}" in deploy
    assert "${ssm:/stratacache/dev/python3.12/layer-arn}" in deploy  # Serverless Framework
    assert "aws lambda publish-layer-version" in deploy
    # The Powertools layer named is the release the tests run against.
    pinned = next(
        line.split("==")[1]
        for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines()
        if line.startswith("aws-lambda-powertools==")
    )
    assert f"/aws/service/powertools/python/x86_64/python3.12/{pinned}" in deploy
    assert deploy.count(f"/python3.12/{pinned}") >= 5  # the table and every tab
