"""Every built layer, under its own interpreter, from a read-only path: no compilation, L2 and L3.

The x86_64 layers are the ones ``sam build`` made (what deploys); the arm64 ones
come from the same Makefile target. arm64 code cannot run on this machine, so
those are checked for what can be checked honestly: the same pure-Python files
as the x86_64 layer, bytecode for every module, and no native binary at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from devkit.lambda_local import (
    RUNTIME_PROVIDED,
    RUNTIMES,
    layer_interpreter,
    read_only_argv,
    runtime_dir,
)
from devkit.servers import MotoServer, RedisServer, fake_aws_environment
from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.support import ROOT, Build, load_cloudformation

# The distributions each layer ships besides stratacache, per runtime (from its lock).
LOCKED = {
    version: sorted(
        line.split("==")[0]
        for line in (ROOT / "layer" / f"requirements-python{version}.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for version in RUNTIMES
}


def interpreter(version: str) -> str:
    found = layer_interpreter(version)
    if found is None:
        pytest.skip(f"no python{version} on this machine (`make layer` skips it too)")
    return found


def cpython_tag(version: str) -> str:
    return "cpython-3" + version.split(".")[1]


IMPORT_EVERYTHING = r"""
import json, os, pkgutil, sys, time
layer = {layer!r}
sys.path[:0] = [layer, {runtime!r}]
compiled = []

def count(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
        compiled.append(args[1])

sys.addaudithook(count)
started = time.perf_counter()
import stratacache
modules = ["stratacache"]
for found in pkgutil.walk_packages(stratacache.__path__, "stratacache."):
    __import__(found.name)
    modules.append(found.name)
import redis, redis.cluster
import_ms = (time.perf_counter() - started) * 1000
compiled_importing = list(compiled)  # boto3, imported later for L3, is the runtime's
try:
    open(os.path.join(layer, "probe"), "w").close()
    writable = True
except OSError:
    writable = False

from stratacache import cached_tiered
origins = []

@cached_tiered(ttl=60)
def double(x):
    origins.append(x)
    return {{"x": x, "double": 2 * x}}

double(21)  # a full miss: computed, written to every tier
double.cache.tiers[0].clear("")
double(21)  # L2 hit
double.cache.tiers[0].clear("")
redis.Redis.from_url({redis_url!r}).flushall()
double(21)  # L3 hit
print(json.dumps({{
    "compiled": compiled_importing,
    "modules": modules,
    "import_ms": import_ms,
    "writable": writable,
    "outside": sorted(
        name for name, module in sys.modules.items()
        if name.split(".")[0] in ("stratacache", "redis", "cachetools", "async_timeout")
        and getattr(module, "__file__", None) and not module.__file__.startswith(layer)
    ),
    "origins": origins,
    "stats": double.cache.stats(),
    "version": list(sys.version_info[:2]),
    "dont_write_bytecode": sys.flags.dont_write_bytecode,
}}))
"""


@pytest.fixture
def servers_env(
    redis_server: RedisServer, moto_server: MotoServer, table_name: str, redis_client: Any
) -> dict[str, str]:
    return {
        **fake_aws_environment(moto_server.endpoint),
        "STRATACACHE_REDIS_URL": redis_server.url,
        "STRATACACHE_TABLE_NAME": table_name,
    }


@pytest.mark.parametrize("version", RUNTIMES)
def test_the_layer_imports_without_compiling_and_answers_from_l2_and_l3(
    version: str, sam_built: Build, tmp_path: Path, servers_env: dict[str, str]
) -> None:
    python = interpreter(version)
    layer = sam_built.layer(version)
    runtime = runtime_dir(tmp_path / "runtime", RUNTIME_PROVIDED)
    code = IMPORT_EVERYTHING.format(
        layer=str(layer), runtime=str(runtime), redis_url=servers_env["STRATACACHE_REDIS_URL"]
    )
    env = {**servers_env, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        # -S -s: no site-packages; not -I, which would ignore PYTHONDONTWRITEBYTECODE.
        read_only_argv([layer], [python, "-S", "-s", "-c", code]),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    print(f"python{version}: imported in {report['import_ms']:.0f} ms")
    assert report["version"] == [3, int(version.split(".")[1])]
    assert report["writable"] is False  # as /opt is on Lambda
    assert report["dont_write_bytecode"] == 1
    assert report["compiled"] == []  # every module came from the layer's bytecode
    library = {p.relative_to(layer).with_suffix("").as_posix().replace("/", ".")
               for p in (layer / "stratacache").rglob("*.py")}  # fmt: skip
    assert {m.removesuffix(".__init__") for m in library} <= set(report["modules"])
    assert report["outside"] == []
    assert report["origins"] == [21]
    assert {tier: s["hits"] for tier, s in report["stats"].items()} == {"L1": 0, "L2": 1, "L3": 1}
    assert all(s["errors"] == 0 for s in report["stats"].values()), report["stats"]


def shipped(layer: Path) -> list[str]:
    return sorted(p.name for p in layer.iterdir() if not p.name.endswith(".dist-info"))


@pytest.mark.parametrize("version", RUNTIMES)
def test_the_layer_holds_stratacache_its_locked_dependencies_and_their_bytecode(
    version: str, sam_built: Build
) -> None:
    interpreter(version)
    layer = sam_built.layer(version)
    dists = sorted(p.name.split("-")[0].replace("_", "-") for p in layer.glob("*.dist-info"))
    assert dists == LOCKED[version]
    assert shipped(layer) == sorted(["stratacache", *(d.replace("-", "_") for d in dists)])
    assert not (layer / "stratacache").is_symlink()
    sources = list(layer.rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{cpython_tag(version)}.pyc"
        assert pyc.is_file(), f"no bytecode for {source}"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc} is not an unchecked-hash pyc"
    assert {p.name.split(".")[1] for p in layer.rglob("*.pyc")} == {cpython_tag(version)}
    assert not list(layer.rglob("tests"))


@pytest.mark.parametrize("version", RUNTIMES)
def test_every_dependency_needed_on_any_patch_release_of_the_runtime_is_shipped(
    version: str, sam_built: Build
) -> None:
    """redis needs async_timeout below 3.11.3: a python3.11 layer must work on 3.11.2 too."""
    interpreter(version)
    layer = sam_built.layer(version)
    names = {p.name.split("-")[0].lower().replace("_", "-") for p in layer.glob("*.dist-info")}
    missing = []
    for metadata in layer.glob("*.dist-info/METADATA"):
        for line in metadata.read_text().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.removeprefix("Requires-Dist:").strip())
            for patch in (0, 2, 3, 99):
                environment = {
                    "python_version": version,
                    "python_full_version": f"{version}.{patch}",
                    "extra": "",
                }
                marker: Marker | None = requirement.marker
                needed = marker is None or marker.evaluate(environment)
                if needed and requirement.name.lower().replace("_", "-") not in names:
                    missing.append(
                        f"{metadata.parent.name} needs {requirement} on {version}.{patch}"
                    )
    assert missing == []


@pytest.mark.parametrize("version", RUNTIMES)
def test_the_arm64_layer_has_the_same_pure_python_content_and_no_native_code(
    version: str, sam_built: Build, arm64_layers: dict[str, Path]
) -> None:
    """arm64 cannot run here: the same files as the x86_64 layer that does, and no binaries."""
    interpreter(version)
    x86, arm = sam_built.layer(version), arm64_layers[version]
    files = {p.relative_to(x86) for p in x86.rglob("*") if p.is_file()}
    assert {p.relative_to(arm) for p in arm.rglob("*") if p.is_file()} == files
    for relative in files:
        ours, theirs = (x86 / relative).read_bytes(), (arm / relative).read_bytes()
        assert not theirs.startswith(b"\x7fELF"), f"{relative} is a native binary"
        if relative.suffix == ".pyc":
            # Magic number, flags and the source's hash; marshal's output is not byte-stable.
            assert theirs[:16] == ours[:16], relative
        elif relative.name != "RECORD":
            assert theirs == ours, relative
    assert not [p for p in arm.rglob("*") if p.suffix in (".so", ".dylib", ".pyd")]


def test_each_template_layer_declares_the_one_runtime_whose_bytecode_it_carries(
    sam_built: Build,
) -> None:
    resources = load_cloudformation(sam_built.layers / "template.yaml")["Resources"]
    layers = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::LayerVersion"}
    assert sorted(layers) == [f"StratacacheLayerPython3{v.split('.')[1]}" for v in RUNTIMES]
    for version in RUNTIMES:
        properties = layers["StratacacheLayerPython" + version.replace(".", "")]["Properties"]
        assert properties["CompatibleRuntimes"] == [f"python{version}"]
        assert sorted(properties["CompatibleArchitectures"]) == ["arm64", "x86_64"]
        tags = {p.name.split(".")[1] for p in sam_built.layer(version).rglob("*.pyc")}
        assert tags == {cpython_tag(version)}


def test_make_layer_builds_what_it_can_says_what_it_skipped_and_prints_sizes(
    tmp_path: Path,
) -> None:
    version = next((v for v in reversed(RUNTIMES) if layer_interpreter(v)), None)
    if version is None:
        pytest.skip("no layer runtime interpreter on this machine")
    out = subprocess.run(
        ["make", "--no-print-directory", "layer", f"RUNTIMES=3.99 {version}",
         "ARCHS=arm64", f"DIST={tmp_path}"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout  # fmt: skip
    zipped = tmp_path / f"stratacache-layer-python{version}-arm64.zip"
    assert f"{zipped}: {zipped.stat().st_size} bytes zipped" in out
    assert "KiB unzipped" in out
    assert "skipped (no interpreter with pip found): python3.99" in out
    with zipfile.ZipFile(zipped) as archive:
        names = archive.namelist()
    assert "python/stratacache/__init__.py" in names
    assert f"python/stratacache/__pycache__/__init__.{cpython_tag(version)}.pyc" in names


def test_sam_build_fails_naming_the_variable_when_a_runtime_has_no_interpreter(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT / "layer"),
         "build-StratacacheLayerPython399", f"ARTIFACTS_DIR={tmp_path}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "no python3.99 with pip found" in out.stdout
    assert "LAYER_PYTHON_3_99=" in out.stdout
