"""``import stratacache`` stays off the cold-start path: no boto3, botocore, redis or Powertools."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "boto3",
    "botocore",
    "redis",
    "aws_lambda_powertools",
    "cachetools_async",
    "s3transfer",
    "matplotlib",
)


def modules_loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def test_importing_the_package_imports_no_heavy_library() -> None:
    assert modules_loaded_after("import stratacache") == []


def test_decorating_with_remote_tiers_configured_still_imports_nothing_heavy(
    remote_env: dict[str, str],
) -> None:
    code = "import os\nfrom stratacache import cached_tiered\n@cached_tiered\ndef f(x): return x\n"
    assert modules_loaded_after(code, env={**remote_env, "PATH": ""}) == []


@pytest.mark.parametrize(("tier", "library"), [("redis", "redis"), ("dynamodb", "boto3")])
def test_a_remote_tier_imports_its_client_library_on_first_use(
    remote_env: dict[str, str], tier: str, library: str
) -> None:
    code = f"from stratacache import cached\n@cached(tier={tier!r})\ndef f(x): return x\nf(1)\n"
    loaded = modules_loaded_after(code, env=remote_env)
    assert library in loaded
    assert "aws_lambda_powertools" not in loaded
