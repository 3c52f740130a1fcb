"""The built example under the Lambda runtime client: every tier answers, as users rely on.

No Docker here, so no ``sam local``: the built function runs under
``awslambdaric`` (the Runtime Interface Client Lambda itself uses) against a
local Runtime API, with the path Lambda gives it: the task root, then the
layer of the interpreter's own runtime, then what the managed runtime and the
Powertools layer provide; task root and layer are read-only.

Several execution environments take turns on one Redis and one table, as a
fleet of Lambda environments does: the first computes, the second gets an L2
hit, and after a Redis flush the third gets an L3 hit and promotes it, which
the fourth finds in L2. Every step is read from the EMF lines the function
printed, so an L2 or L3 tier that silently fails cannot pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from devkit.lambda_local import (
    POWERTOOLS_LAYER,
    RUNTIME_PROVIDED,
    LambdaEnvironment,
    runtime_client,
    runtime_dir,
)
from devkit.runtime_api import RuntimeAPI
from devkit.servers import MotoServer, RedisServer, fake_aws_environment

from tests.support import Build, tier_lines

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def function_env(
    redis_server: RedisServer, moto_server: MotoServer, table_name: str, redis_client: Any
) -> dict[str, str]:
    return {
        **fake_aws_environment(moto_server.endpoint),
        "STRATACACHE_REDIS_URL": redis_server.url,
        "STRATACACHE_TABLE_NAME": table_name,
        "POWERTOOLS_SERVICE_NAME": "quotes",
        "POWERTOOLS_METRICS_NAMESPACE": "StratacacheTest",
        "QUOTE_ORIGIN_DELAY": "0.01",
    }


def cold_start_and_invoke(
    build: Build, tmp_path: Path, name: str, env: dict[str, str], symbols: list[str]
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """One cold start and ``symbols`` invocations; the bodies, and each invocation's EMF docs."""
    runtime = tmp_path / "runtime"
    if not runtime.exists():
        runtime_dir(runtime, RUNTIME_PROVIDED + runtime_client() + POWERTOOLS_LAYER)
    layer = build.layer(VERSION)
    log = tmp_path / f"{name}.log"
    with (
        RuntimeAPI() as api,
        LambdaEnvironment(
            api,
            [build.function, layer, runtime],
            read_only=[build.function, layer],
            log=log,
            env=env,
        ) as lambda_env,
    ):
        payloads = lambda_env.invoke({"pathParameters": {"symbol": s}} for s in symbols)
    output = log.read_text()
    print(output)  # shown by pytest when the test fails
    assert all(payload["statusCode"] == 200 for payload in payloads)
    emf = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    # Each invocation prints its cache counts, then the handler's own metric set
    # (@metrics.log_metrics is the outer decorator): split on the latter.
    invocations: list[list[dict[str, Any]]] = [[]]
    for doc in emf:
        if "QuoteServed" in doc:
            invocations.append([])
        else:
            invocations[-1].append(doc)
    assert invocations.pop() == []
    assert len(invocations) == len(symbols), output
    assert all(doc["service"] == "quotes" for doc in emf)
    return [json.loads(p["body"]) for p in payloads], invocations


def tiers(docs: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """``{tier: (hits, misses, errors)}`` of one invocation's EMF lines."""
    return {
        doc["tier"]: (doc["CacheHit"][0], doc["CacheMiss"][0], doc["CacheError"][0])
        for doc in tier_lines(docs)
    }


def test_the_example_runs_under_the_lambda_runtime_client(
    sam_built: Build, tmp_path: Path, function_env: dict[str, str], redis_client: Any
) -> None:
    bodies, first = cold_start_and_invoke(sam_built, tmp_path, "first", function_env, ["AMZN"] * 2)
    assert tiers(first[0]) == {"L1": (0, 1, 0), "L2": (0, 1, 0), "L3": (0, 1, 0)}  # computed
    assert tiers(first[1]) == {"L1": (1, 0, 0)}  # warm: L1

    more, second = cold_start_and_invoke(sam_built, tmp_path, "second", function_env, ["AMZN"] * 2)
    bodies += more
    assert tiers(second[0]) == {"L1": (0, 1, 0), "L2": (1, 0, 0)}  # a new environment: L2
    assert tiers(second[1]) == {"L1": (1, 0, 0)}  # promoted into its L1

    redis_client.flushall()
    more, third = cold_start_and_invoke(sam_built, tmp_path, "third", function_env, ["AMZN"] * 2)
    bodies += more
    assert tiers(third[0]) == {"L1": (0, 1, 0), "L2": (0, 1, 0), "L3": (1, 0, 0)}
    assert tiers(third[1]) == {"L1": (1, 0, 0)}
    assert redis_client.dbsize() > 0  # the L3 hit was written back to Redis ...

    more, fourth = cold_start_and_invoke(sam_built, tmp_path, "fourth", function_env, ["AMZN"])
    bodies += more
    assert tiers(fourth[0]) == {"L1": (0, 1, 0), "L2": (1, 0, 0)}  # ... and found there

    assert len({json.dumps(body, sort_keys=True) for body in bodies}) == 1  # computed once
    assert bodies[0]["symbol"] == "AMZN"
