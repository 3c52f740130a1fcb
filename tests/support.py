"""Test helpers shared by every layer: fakes of our own seams, never of a server.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
