"""Counts that add up across SnapStart restores, against a real Redis server.

A fresh interpreter plays the function: its init primes the cache, then the
runtime's hooks runner (awslambdaric's, over ``snapshot_restore_py``, where
the lifecycle module registers its hooks) runs the before-snapshot hooks, and
each restored copy is a fork that runs the after-restore hooks and serves one
request. Every line the three print is parsed as CloudWatch parses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from devkit.servers import RedisServer

from tests.support import cache_counts, value

COPIES = 2

SNAPSTART = f"""
import os, sys
from awslambdaric import lambda_runtime_hooks_runner as runtime
from stratacache import cached_tiered, log_cache_metrics

@cached_tiered(ttl=300)
def quote(symbol):
    return {{"symbol": symbol}}

@log_cache_metrics
def handler(event, context):
    return quote(event["symbol"])

print("--- init")
quote("AMZN")  # the init primes the cache: one origin call, kept in L1 and L2
runtime.run_before_snapshot()
for copy in range({COPIES}):
    print(f"--- copy {{copy}}")
    pid = os.fork()
    if pid == 0:  # a restored copy
        runtime.run_after_restore()
        handler({{"symbol": "AMZN"}}, None)
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
"""


def run_snapstart(redis_url: str) -> dict[str, list[dict[str, Any]]]:
    """The EMF documents of the init and of each copy, by section."""
    env = {
        name: setting
        for name, setting in os.environ.items()
        if not name.startswith(("STRATACACHE_", "POWERTOOLS_"))
    }
    env.update(
        {
            "STRATACACHE_REDIS_URL": redis_url,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
            "PYTHONUNBUFFERED": "1",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", SNAPSTART],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    sections: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for line in done.stdout.splitlines():
        if line.startswith("--- "):
            current = sections.setdefault(line[4:], [])
        elif line.strip():
            current.append(json.loads(line))  # one whole document per line
    return sections


def test_restored_copies_count_the_inits_origin_call_once_and_start_cold(
    redis_server: RedisServer, redis_client: Any
) -> None:
    sections = run_snapstart(redis_server.url)
    assert list(sections) == ["init", "copy 0", "copy 1"]
    origin_calls = [
        sum(value(doc, "CacheOriginCall") for doc in docs if doc["tier"] == "origin")
        for docs in sections.values()
    ]
    assert origin_calls == [1, 0, 0]  # published by the before-snapshot hook, in the init
    assert cache_counts(sections["init"])["L1"]["CacheMiss"] == 1
    for copy in ("copy 0", "copy 1"):
        docs = sections[copy]
        assert docs[0]["contextReused"] is False
        assert cache_counts(docs) == {  # its own request only: L1 emptied, L2 hit
            "L1": {"CacheHit": 0, "CacheMiss": 1, "CacheError": 0},
            "L2": {"CacheHit": 1, "CacheMiss": 0, "CacheError": 0},
        }
