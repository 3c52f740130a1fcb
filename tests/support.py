"""Test helpers shared by every layer: fakes of our own seams, never of a server.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import json
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
