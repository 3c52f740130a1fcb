"""`make demo` installs requirements/demo.txt alone, and the demo imports nothing more.

The demo runs here (in the development environment) while its imports are
recorded; every distribution they come from must be demo.txt's or a
dependency of one of its packages, so `make demo`'s smaller environment has
all it needs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys

from packaging.requirements import Requirement

from tests.support import ROOT

DEMO_REQUIREMENTS = ROOT / "requirements" / "demo.txt"
OURS = {"stratacache", "devkit", "handler", "examples", "tests"}
# Imported when installed, skipped when not: what the development environment happens to
# have does not make them the demo's needs.
OPTIONAL = {
    "simplejson": "requests uses it when installed, else json",
    "colorama": "werkzeug's log colours use it when installed (mkdocs-material brings it)",
    "snapshot_restore_py": "stratacache.lifecycle's SnapStart hooks; only Lambda's runtime has it",
}


def pins(path: str) -> dict[str, Requirement]:
    lines = (ROOT / path).read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonical(r.name): r for r in requirements}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[Requirement]) -> set[str]:
    """The installed distributions ``requirements`` need, their dependencies included."""
    found: set[str] = set()
    todo = [(r, sorted(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonical(requirement.name)
        if name in found and not extras:
            continue
        found.add(name)
        for text in importlib.metadata.requires(name) or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in ["", *extras]):
                todo.append((dependency, sorted(dependency.extras)))
    return found


def test_the_demo_imports_only_what_demo_txt_installs() -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "at_start = set(sys.modules)  # the interpreter's own, and site's .pth imports\n"
        "from devkit import demo\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    demo.main(['--json'])\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in set(sys.modules) - at_start})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "QUOTE_ORIGIN_DELAY": "0.01"},
        timeout=300,
    )
    imported = set(json.loads(done.stdout.splitlines()[-1]))
    providers = importlib.metadata.packages_distributions()
    needed = {
        canonical(dist)
        for module in imported - OURS - set(OPTIONAL) - set(sys.stdlib_module_names)
        for dist in providers.get(module, [])
    }
    assert "boto3" in needed  # the probe saw the demo's real imports
    assert "moto" in needed
    allowed = closure(list(pins("requirements/demo.txt").values()))
    assert needed <= allowed, sorted(needed - allowed)


def test_demo_txt_pins_the_development_environment_s_versions() -> None:
    demo, dev = pins("requirements/demo.txt"), pins("requirements/dev.txt")
    for name, requirement in demo.items():
        if name in dev:
            assert requirement.specifier == dev[name].specifier, name
        assert requirement.specifier.contains(importlib.metadata.version(name)), name


def test_make_demo_uses_its_own_environment() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (recipe,) = re.findall(r"^demo: (.*)\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe == ("$(DEMO_STAMP)", "$(DEMO_VENV)/bin/python -m devkit.demo")
    assert "$(DEMO_STAMP): requirements/demo.txt\n" in makefile
    assert "-r requirements/demo.txt" in makefile
