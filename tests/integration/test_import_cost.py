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


def stratacache_modules_after(code: str) -> list[str]:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "import json\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def test_importing_the_package_loads_only_its_init() -> None:
    # Issue 18: `import stratacache` adds at most 3 ms after boto3, redis-py and Powertools;
    # counted, not timed: the public names are loaded on first use (PEP 562).
    loaded = stratacache_modules_after("import stratacache")
    assert [m for m in loaded if m.startswith("stratacache")] == ["stratacache"]
    assert "dataclasses" not in loaded
    assert "stratacache._engine" not in loaded


def test_a_public_name_loads_its_module_and_not_the_integrations() -> None:
    loaded = stratacache_modules_after("from stratacache import cached_tiered")
    assert "stratacache.decorators" in loaded
    unused = {"http", "warmup", "parameters", "streams", "report", "iam"}
    assert not [m for m in loaded if m.removeprefix("stratacache.") in unused]


def test_every_public_name_is_exported_lazily() -> None:
    import stratacache

    assert sorted(stratacache._EXPORTS) == sorted(stratacache.__all__)
    for name in stratacache.__all__:
        assert getattr(stratacache, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        stratacache.no_such_name  # noqa: B018
