"""Every Python block of the README and the docs pages runs as pasted.

Each block runs alone in a fresh interpreter, as a reader would paste it: with
L1 only by default, or (``<!-- docs-test: servers -->``) with the environment
variables that point stratacache at the suite's Redis and moto servers. A block
that cannot run here says so in a ``skip`` directive; those are few and counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from devkit.servers import fake_aws_environment

from tests.docs.markdown_blocks import ROOT, Block, all_blocks, python_blocks

# Runs before a block whose directive names it, in the same interpreter: the state a
# reader's account would already have (a parameter in SSM), never the block's own work.
SETUPS = {
    "ssm": """
import boto3 as _boto3
_ssm = _boto3.client("ssm")
_ssm.put_parameter(Name="/app/flags", Value='{"new_checkout": true}', Type="String")
_ssm.put_parameter(Name="/app/region", Value="eu-west-1", Type="String")
_sm = _boto3.client("secretsmanager")
_sm.create_secret(Name="db-password", SecretString="s3cret-value")
""",
}

# Skipped blocks must stay rare: each needs a reason, and this many at most.
MAX_SKIPPED = 2

PYTHON_BLOCKS = python_blocks()


def base_environment() -> dict[str, str]:
    """This process's environment without any cache setting, with a fake AWS account."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("STRATACACHE_", "POWERTOOLS_", "AWS_ENDPOINT_URL"))
    }
    env.update(fake_aws_environment())
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(ROOT)])
    return env


def run_block(
    block: Block, env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    setup = SETUPS[block.options["setup"]] if "setup" in block.options else ""
    script = tmp_path / f"{block.path.stem}_line{block.line}.py"
    script.write_text(setup + "\n" + block.code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_python_block_runs_as_pasted(
    block: Block, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options = block.options
    if "skip" in options:
        assert options["skip"], f"{block.where}: a skipped block must say why"
        return
    unknown = set(options) - {"servers", "setup", "expect"}
    assert not unknown, f"{block.where}: unknown docs-test directive {sorted(unknown)}"
    env = base_environment()
    if "servers" in options:
        redis_server = request.getfixturevalue("redis_server")
        moto_server = request.getfixturevalue("moto_server")
        request.getfixturevalue("redis_client")  # an emptied database
        env.update(fake_aws_environment(moto_server.endpoint))
        env["AWS_ENDPOINT_URL"] = moto_server.endpoint  # SSM, Secrets Manager: moto too
        env["STRATACACHE_REDIS_URL"] = redis_server.url
        env["STRATACACHE_TABLE_NAME"] = request.getfixturevalue("table_name")
    result = run_block(block, env, tmp_path)
    assert result.returncode == 0, f"{block.where} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{block.where} logged a traceback:\n{result.stderr}"
    if "expect" in options:
        assert options["expect"] in result.stdout, f"{block.where} printed:\n{result.stdout}"


def test_skipped_blocks_are_few_and_give_a_reason() -> None:
    skipped = [b for b in PYTHON_BLOCKS if "skip" in b.options]
    assert len(skipped) <= MAX_SKIPPED, [b.where for b in skipped]
    assert all(b.options["skip"] for b in skipped)
    # The README's and the getting-started page's examples always run.
    assert not [b for b in skipped if b.path.name in {"README.md", "getting-started.md"}]


def test_blocks_are_found_on_every_page_that_has_them() -> None:
    pages = {b.path.relative_to(ROOT).as_posix() for b in PYTHON_BLOCKS}
    assert "README.md" in pages
    assert {"docs/getting-started.md", "docs/features/decorators.md", "docs/testing.md"} <= pages
    assert len(PYTHON_BLOCKS) >= 30


def test_directives_stand_only_before_python_blocks() -> None:
    misplaced = [b.where for b in all_blocks() if b.directive and b.lang not in {"python", "py"}]
    assert not misplaced


def test_the_readme_example_uses_l2_and_l3_once_the_environment_names_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first = next(b for b in PYTHON_BLOCKS if b.path.name == "README.md")
    laptop = run_block(first, base_environment(), tmp_path)
    assert laptop.returncode == 0, laptop.stderr
    assert "'L1'" in laptop.stdout
    assert "'L2'" not in laptop.stdout

    redis_server = request.getfixturevalue("redis_server")
    moto_server = request.getfixturevalue("moto_server")
    request.getfixturevalue("redis_client")
    env = {
        **base_environment(),
        **fake_aws_environment(moto_server.endpoint),
        "STRATACACHE_REDIS_URL": redis_server.url,
        "STRATACACHE_TABLE_NAME": request.getfixturevalue("table_name"),
    }
    lambda_like = run_block(first, env, tmp_path)
    assert lambda_like.returncode == 0, lambda_like.stderr
    stats = lambda_like.stdout.splitlines()[-1]
    # One miss in each tier, then an L1 hit; nothing failed.
    assert "'L2': {'hits': 0, 'misses': 1, 'errors': 0" in stats
    assert "'L3': {'hits': 0, 'misses': 1, 'errors': 0" in stats
