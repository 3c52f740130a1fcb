"""layer/find-python.sh: which interpreter builds a runtime's layer, and in what order it looks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import ROOT

FIND = ROOT / "layer" / "find-python.sh"


def fake_python(folder: Path, version: str) -> Path:
    """A stand-in for python``version`` with pip: it passes the check and names itself."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / f"python{version}"
    binary.write_text('#!/bin/sh\ncase "$2" in *sys.executable*) echo "$0";; esac\nexit 0\n')
    binary.chmod(0o755)
    return binary


def find(version: str, path: str, pyenv_root: Path) -> str:
    env = {"PATH": f"{path}:/usr/bin:/bin", "PYENV_ROOT": str(pyenv_root), "HOME": "/nonexistent"}
    return subprocess.run(
        ["sh", str(FIND), version], env=env, capture_output=True, text=True, check=False
    ).stdout.strip()


def test_path_comes_before_pyenvs_versions(tmp_path: Path) -> None:
    on_path = fake_python(tmp_path / "bin", "3.77")
    fake_python(tmp_path / "pyenv" / "versions" / "3.77.1" / "bin", "3.77")
    assert find("3.77", str(tmp_path / "bin"), tmp_path / "pyenv") == str(on_path)


def test_pyenvs_newest_version_is_found_when_path_has_none(tmp_path: Path) -> None:
    fake_python(tmp_path / "pyenv" / "versions" / "3.77.1" / "bin", "3.77")
    newest = fake_python(tmp_path / "pyenv" / "versions" / "3.77.10" / "bin", "3.77")
    assert find("3.77", str(tmp_path / "empty"), tmp_path / "pyenv") == str(newest)


def test_usr_bin_is_the_last_place_looked_at(tmp_path: Path) -> None:
    """This machine image has Debian's python3.11, with pip, in /usr/bin."""
    assert find("3.11", str(tmp_path / "empty"), tmp_path / "no-pyenv") == "/usr/bin/python3.11"


def test_nothing_is_printed_when_no_interpreter_has_that_version(tmp_path: Path) -> None:
    assert find("3.99", str(tmp_path / "empty"), tmp_path / "no-pyenv") == ""
