"""The build every end-to-end test goes through: ``sam build`` of both stacks once per session.

``sam build`` of the layer stack (layer/template.yaml) runs ``layer/Makefile``
once per layer resource, so it gives the python3.10 to 3.13 layers (x86_64)
exactly as they are deployed; the example stack's build gives the function.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from devkit.lambda_local import RUNTIMES, build_layer, layer_interpreter

from tests.support import ROOT, Build, load_cloudformation, sam_env, sam_tool


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as data, short tags read as their long forms."""
    return load_cloudformation()


def _sam_build(folder: Path, out: Path) -> None:
    result = subprocess.run(
        [sam_tool("sam"), "build", "--build-dir", str(out / "build"),
         "--cache-dir", str(out / "cache"), "--no-cached"],
        cwd=folder,
        env=sam_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def sam_built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Both stacks built as a user builds them: the example at the root, the layers in layer/."""
    out = tmp_path_factory.mktemp("sam-build")
    _sam_build(ROOT, out / "example")
    _sam_build(ROOT / "layer", out / "layer")
    return Build(
        out / "example" / "build",
        out / "example" / "build" / "QuoteFunction",
        out / "layer" / "build",
    )


@pytest.fixture(scope="session")
def arm64_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The arm64 layer of every runtime this machine has an interpreter for."""
    out = tmp_path_factory.mktemp("arm64-layers")
    return {
        version: build_layer(version, "arm64", out / version)
        for version in RUNTIMES
        if layer_interpreter(version)
    }
