"""The layer `sam build` makes works alone, and the example runs under the runtime client.

No Docker here, so no ``sam local``: the built function runs under
``awslambdaric`` (the Runtime Interface Client Lambda itself uses) against a
local Runtime API, with the path Lambda gives it: the task root, then the
layer, then what the managed runtime and the Powertools layer provide.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devkit.servers import MotoServer, RedisServer, fake_aws_environment

from tests.e2e.runtime_api import RuntimeAPI
from tests.support import ROOT, sam_env, sam_tool

SITE_PACKAGES = Path(pytest.__file__).resolve().parent.parent
# What a Lambda Python runtime has without any layer (boto3 and its dependencies) ...
RUNTIME_PROVIDED = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"]
# ... what the runtime interface client needs, and what AWS's Powertools layer adds.
RUNTIME_CLIENT = [
    "awslambdaric",
    "simplejson",
    "snapshot_restore_py.py",
    *(p.name for p in SITE_PACKAGES.glob("runtime_client.*.so")),  # its native HTTP client
]
POWERTOOLS_LAYER = ["aws_lambda_powertools", "typing_extensions.py"]


@dataclass
class Build:
    layer: Path  # the layer's python/ folder, as it lands in /opt/python
    function: Path  # the example function's code, as it lands in /var/task


@pytest.fixture(scope="session")
def sam_built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    out = tmp_path_factory.mktemp("sam-build")
    result = subprocess.run(
        [
            sam_tool("sam"),
            "build",
            "--build-dir",
            str(out / "build"),
            "--cache-dir",
            str(out / "cache"),
            "--no-cached",
        ],
        cwd=ROOT,
        env=sam_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Build(out / "build" / "StratacacheLayer" / "python", out / "build" / "QuoteFunction")


def runtime_dir(tmp_path: Path, names: list[str]) -> Path:
    """A folder with only ``names`` from this environment's site-packages, linked in."""
    folder = tmp_path / "runtime"
    folder.mkdir()
    for name in names:
        source = SITE_PACKAGES / name
        assert source.exists(), source
        (folder / name).symlink_to(source)
    return folder


@pytest.fixture
def servers_env(
    redis_server: RedisServer, moto_server: MotoServer, table_name: str, redis_client: Any
) -> dict[str, str]:
    return {
        **fake_aws_environment(moto_server.endpoint),
        "STRATACACHE_REDIS_URL": redis_server.url,
        "STRATACACHE_TABLE_NAME": table_name,
    }


# ---------------------------------------------------------------- the built layer


def test_the_layer_holds_stratacache_and_its_dependencies_only(sam_built: Build) -> None:
    top = sorted(p.name for p in sam_built.layer.iterdir() if not p.name.endswith(".dist-info"))
    assert top == ["cachetools", "redis", "stratacache"]
    assert not list(sam_built.layer.rglob("__pycache__"))
    assert (sam_built.layer / "stratacache" / "tiers" / "redis.py").is_file()
    assert not (sam_built.layer / "stratacache").is_symlink()


SELF_SUFFICIENT = """
import json, sys
sys.path[:0] = [{layer!r}, {runtime!r}]
import stratacache, redis, cachetools
from stratacache import cached_tiered

origins = []

@cached_tiered(ttl=60)
def double(x):
    origins.append(x)
    return {{"x": x, "double": 2 * x}}

double(21)
double(21)
double.cache.tiers[0].clear("")
double(21)
double.cache.tiers[0].clear("")
import redis as r; r.Redis.from_url({redis_url!r}).flushall()
double(21)
print(json.dumps({{
    "files": [stratacache.__file__, redis.__file__, cachetools.__file__],
    "origins": origins,
    "hits": {{name: s["hits"] for name, s in double.cache.stats().items()}},
    "site": [m for m in sys.modules if m in ("site", "pytest")],
}}))
"""


def test_the_built_layer_works_with_nothing_but_the_runtime(
    sam_built: Build, tmp_path: Path, servers_env: dict[str, str]
) -> None:
    runtime = runtime_dir(tmp_path, RUNTIME_PROVIDED)
    code = SELF_SUFFICIENT.format(
        layer=str(sam_built.layer),
        runtime=str(runtime),
        redis_url=servers_env["STRATACACHE_REDIS_URL"],
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],  # no site-packages, no PYTHONPATH
        env={**servers_env, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(out.stdout)
    assert all(path.startswith(str(sam_built.layer)) for path in report["files"])
    assert report["site"] == []
    assert report["origins"] == [21]
    assert report["hits"] == {"L1": 1, "L2": 1, "L3": 1}


# ---------------------------------------------------------------- the Lambda runtime client

RUN_CLIENT = """
import sys
sys.path[:0] = {path!r}
sys.argv = ["awslambdaric", "handler.handler"]
from awslambdaric.__main__ import main
main(sys.argv)
"""


@pytest.fixture
def lambda_process(
    sam_built: Build, tmp_path: Path, servers_env: dict[str, str]
) -> Iterator[tuple[RuntimeAPI, subprocess.Popen[str]]]:
    runtime = runtime_dir(tmp_path, RUNTIME_PROVIDED + RUNTIME_CLIENT + POWERTOOLS_LAYER)
    path = [str(sam_built.function), str(sam_built.layer), str(runtime)]
    env = {
        **servers_env,
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "stratacache-quote-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "POWERTOOLS_SERVICE_NAME": "quotes",
        "POWERTOOLS_METRICS_NAMESPACE": "StratacacheTest",
        "QUOTE_ORIGIN_DELAY": "0.01",
        "LAMBDA_TASK_ROOT": str(sam_built.function),
    }
    with RuntimeAPI() as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", RUN_CLIENT.format(path=path)],
            cwd=sam_built.function,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield api, process
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)  # it waits for the next event forever
            process.wait(timeout=10)


def test_the_example_runs_under_the_lambda_runtime_client(
    lambda_process: tuple[RuntimeAPI, subprocess.Popen[str]],
) -> None:
    api, process = lambda_process
    request_ids = [
        api.invoke({"pathParameters": {"symbol": s}}) for s in ("AMZN", "AMZN", "AMZN", "NVDA")
    ]
    try:
        results = [api.result(request_id) for request_id in request_ids]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=10)[0]
        print(output)  # shown by pytest when the test fails

    assert [kind for kind, _ in results] == ["response"] * 4
    bodies = [json.loads(payload["body"]) for _, payload in results]
    assert [body["symbol"] for body in bodies] == ["AMZN", "AMZN", "AMZN", "NVDA"]
    assert bodies[0] == bodies[1] == bodies[2]  # the same cached quote, computed once
    assert all(payload["statusCode"] == 200 for _, payload in results)

    emf = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    l1 = [doc for doc in emf if doc.get("tier") == "L1"]
    assert [(doc["CacheHit"], doc["CacheMiss"]) for doc in l1] == [
        ([0.0], [1.0]),  # cold start: a full miss
        ([1.0], [0.0]),  # warm: L1
        ([1.0], [0.0]),
        ([0.0], [1.0]),  # another symbol
    ]
    assert sum(1 for doc in emf if "QuoteServed" in doc) == 4
    assert all(doc["service"] == "quotes" for doc in emf)
