"""The devkit: `make demo` tells its story, `make bench` prints every row, moto behaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


def test_the_demo_answers_from_every_tier_and_promotes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "devkit.demo", "--json"],
        env={**os.environ, "QUOTE_ORIGIN_DELAY": "0.01"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows: list[dict[str, Any]] = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["tier"] for row in rows] == ["origin", "L1", "L1", "L2", "L1", "L3", "L1"]
    assert len({row["price"] for row in rows}) == 1
    # The L3 hit was promoted: L2 holds the key again, with at most the entry's remaining life.
    assert 0 < rows[5]["redis_pttl_ms"] <= 300_000
    hits_by_tier = {doc["tier"]: doc["CacheHit"] for doc in rows[5]["emf"] if "tier" in doc}
    assert hits_by_tier == {"L1": [0.0], "L2": [0.0], "L3": [1.0]}
    assert any("QuoteServed" in doc for doc in rows[0]["emf"])
    # Environments A, B and C each start cold: their first cache line says so.
    reused = [next(d["contextReused"] for d in row["emf"] if "tier" in d) for row in rows]
    assert reused == [False, True, True, False, True, False, True]


def test_the_bench_runs_every_row_in_quick_mode() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "devkit.bench", "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = (
        *("L1 hit", "L2 hit", "L3 hit", "Batch:", "Herd:", "Fleet:", "import stratacache"),
        "import boto3",
        *("Round trips per operation", "full miss, lock on", "L2 hit, new environment"),
        *("Cold start under awslambdaric", "empty handler", "hand-written", "paired ratio"),
        *("minimal @cached_tiered handler", "Warm batch:", "from stratacache import cached_tiered"),
    )
    for row in rows:
        assert row in out
    # L1, L2, L3, the warm batch, two cold starts, the import
    assert out.count("target:") == 7
    bare = next(line for line in out.splitlines() if "bare interpreter" in line)
    assert bare.endswith("heavy modules loaded: -")


def test_moto_serves_one_request_at_a_time_as_dynamodb_writes_an_item() -> None:
    """moto checks a condition and then writes, unlocked: requests must not overlap."""
    import threading
    import time

    from devkit.servers import OneRequestAtATime

    inside, most = 0, 0
    guard = threading.Lock()

    def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with guard:
            inside -= 1
        start_response("200 OK", [])
        return [b"ok"]

    app = OneRequestAtATime(slow_app)
    pool = [threading.Thread(target=app, args=({}, lambda status, headers: None)) for _ in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(10)
    assert most == 1
