"""``make layer-lock``: resolve layer/requirements.in for each runtime into a hashed lock.

For every Python the layer is built for, that runtime's own interpreter resolves
``requirements.in`` (so markers and ``Requires-Python`` are judged by it) for the
Lambda platform, and ``layer/requirements-python3.X.txt`` gets every distribution
it would install, with the exact version and the wheel's sha256. The layer build
installs from that file with ``--require-hashes``, which also fails if a
dependency is missing from it. Standard library only: it runs before any
virtual environment exists.

Usage: ``python -m devkit.layerlock [3.10 3.11 ...]`` (default: every runtime).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

LAYER = Path(__file__).resolve().parent.parent / "layer"
RUNTIMES = ("3.10", "3.11", "3.12", "3.13")


def interpreter(version: str) -> str | None:
    """The interpreter ``layer/find-python.sh`` picks for ``version``, or ``None``."""
    found = subprocess.run(
        [str(LAYER / "find-python.sh"), version], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found or None


def resolve(python: str, version: str) -> list[tuple[str, str, str]]:
    """``(name, version, sha256)`` of what ``python``'s pip would install for the layer."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--dry-run", "--ignore-installed", "--report", str(report),
                "--target", str(Path(scratch) / "target"),
                "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                "--python-version", version, "--only-binary=:all:",
                "-r", str(LAYER / "requirements.in"),
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    return sorted(
        (
            item["metadata"]["name"].lower(),
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    )


def write_lock(version: str, pins: list[tuple[str, str, str]]) -> Path:
    lock = LAYER / f"requirements-python{version}.txt"
    lines = [
        f"# python{version} layer, written by `make layer-lock` from requirements.in: do not edit",
        *(f"{name}=={pinned} --hash=sha256:{digest}" for name, pinned, digest in pins),
    ]
    lock.write_text("\n".join(lines) + "\n")
    return lock


def main(argv: list[str]) -> int:
    for version in argv or RUNTIMES:
        python = interpreter(version)
        if python is None:
            print(f"python{version}: no interpreter with pip found, lock left as it is")
            continue
        lock = write_lock(version, resolve(python, version))
        print(f"python{version}: {lock.relative_to(LAYER.parent)} ({python})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
