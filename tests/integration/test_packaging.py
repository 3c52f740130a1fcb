"""Packaging: `python -m build` without deprecation warnings; the wheel installs with [all].

The build runs on a copy of the files the sdist needs, so it never leaves an
egg-info beside python/stratacache (which would make the source tree look
like an installed distribution).
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib

import stratacache
from tests.support import ROOT

SDIST_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "python")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``python -m build``'s output (stdout and stderr) and the folder of its sdist and wheel."""
    source = tmp_path_factory.mktemp("source")
    for name in SDIST_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "always"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output, dist


@pytest.mark.slow
def test_build_makes_an_sdist_and_a_wheel_without_deprecation_warnings(
    built: tuple[str, Path],
) -> None:
    output, dist = built
    assert "deprecat" not in output.lower(), output
    version = stratacache.__version__
    assert sorted(p.name for p in dist.iterdir()) == [
        f"stratacache-{version}-py3-none-any.whl",
        f"stratacache-{version}.tar.gz",
    ]
    with zipfile.ZipFile(dist / f"stratacache-{version}-py3-none-any.whl") as wheel:
        info = f"stratacache-{version}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        assert f"{info}/licenses/LICENSE" in wheel.namelist()
    assert metadata["Version"] == version
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "all" in metadata.get_all("Provides-Extra", [])
    assert "stratacache-report = stratacache.report:main" in entry_points


@pytest.mark.slow
def test_the_wheel_installs_with_all_extras_in_a_fresh_virtualenv(
    built: tuple[str, Path], tmp_path: Path
) -> None:
    _, dist = built
    (wheel,) = dist.glob("*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"stratacache[all] @ {wheel.as_uri()}"],
        check=True,
        capture_output=True,
        timeout=900,
    )
    probe = "import stratacache, redis, boto3, matplotlib; print(stratacache.__version__)"
    # From another folder, so the installed package is imported, not the source tree.
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == stratacache.__version__
    chart = tmp_path / "report.png"
    golden = ROOT / "tests" / "unit" / "data" / "report_golden.log"
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "stratacache-report"), str(golden), "--png", str(chart)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "quotes-prod  L1            8        2       0    80.0%" in done.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    init = (ROOT / "python" / "stratacache" / "__init__.py").read_text()
    assert init.count(f'__version__ = "{stratacache.__version__}"') == 1


def test_the_license_is_an_spdx_expression_with_its_text() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert not any("License ::" in c for c in project["classifiers"])  # PEP 639: not both


def test_the_all_extra_is_every_other_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (everything,) = extras["all"]
    named = everything.removeprefix("stratacache[").removesuffix("]").split(",")
    assert sorted(named) == sorted(name for name in extras if name != "all")


def test_the_changelog_names_the_current_version() -> None:
    assert f"## [{stratacache.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
