"""Parameters shared through a real Redis, read from moto's SSM and Secrets Manager over HTTP.

Each "execution environment" is a fresh interpreter; they start together, as a
burst of cold starts does, and count their own SSM calls with botocore's hooks.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from devkit.servers import MotoServer, RedisServer, fake_aws_environment

from stratacache import MemoryTier, RedisTier
from stratacache.envelope import Codec
from stratacache.parameters import SharedParameters
from tests.support import entry_keys

ENVIRONMENTS = 20
PARAMETER = "/quotes/config"
CONFIG = {"currency": "EUR", "symbols": ["AMZN", "NVDA"]}
SECRET = "s3cr3t-db-password-never-logged"
KEY = "signing-key-for-tests-0123456789"

COLD_START = """
import json, sys

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider

from stratacache.parameters import SharedParameters

calls = []
client = boto3.client("ssm")
client.meta.events.register("before-call.ssm.GetParameter", lambda **_: calls.append(1))
params = SharedParameters(SSMProvider(boto3_client=client), ttl=300)
print("ready", flush=True)
sys.stdin.readline()  # blocks without spinning until every environment is ready
value = params.get(sys.argv[1], transform="json")
print(json.dumps({"value": value, "ssm_calls": len(calls)}), flush=True)
"""


def aws_env(moto_server: MotoServer) -> dict[str, str]:
    return {
        **fake_aws_environment(moto_server.endpoint),
        "AWS_ENDPOINT_URL_SSM": moto_server.endpoint,
        "AWS_ENDPOINT_URL_SECRETSMANAGER": moto_server.endpoint,
    }


@pytest.mark.slow
def test_twenty_fresh_environments_read_one_ssm_parameter_once(
    tmp_path: Path, redis_server: RedisServer, redis_client: Any, moto_server: MotoServer
) -> None:
    import boto3

    name = f"{PARAMETER}/{tmp_path.name}"
    env = aws_env(moto_server)
    ssm = boto3.client("ssm", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    ssm.put_parameter(Name=name, Value=json.dumps(CONFIG), Type="String")
    script = tmp_path / "cold_start.py"
    script.write_text(textwrap.dedent(COLD_START))
    child_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STRATACACHE_", "AWS_ENDPOINT_URL"))
    }
    child_env.update(env)
    child_env["STRATACACHE_REDIS_URL"] = redis_server.url  # L1 + the shared Redis
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), name],
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(ENVIRONMENTS)
    ]
    try:
        for process in processes:  # every environment is initialised: now the burst
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=60)  # also closes stdin
            assert process.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [r["value"] for r in results] == [CONFIG] * ENVIRONMENTS
    assert sum(r["ssm_calls"] for r in results) == 1


def test_a_secret_is_read_once_signed_in_redis_and_never_logged(
    redis_client: Any, moto_server: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    client = boto3.client(
        "secretsmanager", endpoint_url=moto_server.endpoint, region_name="us-east-1"
    )
    name = f"quotes/db-{os.getpid()}-{id(caplog)}"
    client.create_secret(Name=name, SecretString=SECRET)
    calls: list[int] = []
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append(1)
    )
    redis_tier = RedisTier(client=redis_client)

    def environment() -> SharedParameters:
        provider = SecretsProvider(boto3_client=client)
        return SharedParameters(
            provider, tiers=[MemoryTier(), redis_tier], ttl=300, signing_key=KEY
        )

    with caplog.at_level(logging.DEBUG, logger="stratacache"):
        assert [environment().get(name) for _ in range(3)] == [SECRET] * 3
        assert len(calls) == 1

        # An entry forged in Redis is refused, and the secret fetched again.
        (stored_key,) = [key for key in entry_keys(redis_client) if b"params" in key]
        assert SECRET.encode() in redis_client.get(stored_key)  # signed, not encrypted
        forged = redis_client.get(stored_key).replace(SECRET.encode(), b"attacker-chosen-value")
        redis_client.set(stored_key, forged)
        assert environment().get(name) == SECRET
        assert len(calls) == 2

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("stratacache")]
    assert any("signature does not match" in line for line in ours)
    assert not any(SECRET in line for line in ours)
    stored = redis_client.get(stored_key)  # fetched again and signed by the cache's envelope
    assert Codec(signing_key=KEY).decode(stored_key.decode(), stored).value == SECRET
