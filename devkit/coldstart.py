"""``python -m devkit.coldstart``: what a cold start and a warm invocation cost, side by side.

Three handlers run as Lambda runs them (``devkit.lambda_local``): the real
runtime interface client against a local Runtime API, a fresh interpreter per
cold start, the task and the built layer of this Python's runtime read-only,
``PYTHONDONTWRITEBYTECODE=1``:

- an empty handler (what the interpreter and the runtime client cost);
- the example handler (``examples/app/handler.py``: ``@cached_tiered`` over
  L1, L2, L3, Powertools metrics);
- the same written by hand (``devkit/coldstart_handlers/handwritten.py``):
  module-scope redis-py and boto3 clients, a dict as L1, the same hit and miss
  counts through Powertools.

Before every cold start Redis is emptied, so the first invocation misses L1
and L2 and hits L3 (a Redis GET, a DynamoDB get_item, the value written back
to Redis): both clients are used, as in a new environment of a warm fleet
after an eviction. Later invocations are L1 hits.

The cold starts of the three take turns, round after round, and each column
is the median of its rounds. Times: initialisation (process start to the
runtime's first request for an event), the first invocation (event handed out
to response posted), and a warm invocation. Nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.lambda_local import (
    POWERTOOLS_LAYER,
    ROOT,
    RUNTIME_PROVIDED,
    LambdaEnvironment,
    build_layer,
    runtime_client,
    runtime_dir,
)
from devkit.runtime_api import RuntimeAPI
from devkit.servers import MotoServer, RedisServer, create_cache_table, fake_aws_environment

HANDLERS = {
    "empty handler": ROOT / "devkit" / "coldstart_handlers" / "empty.py",
    "hand-written redis-py + boto3 + Powertools": (
        ROOT / "devkit" / "coldstart_handlers" / "handwritten.py"
    ),
    "stratacache minimal @cached_tiered handler": (
        ROOT / "devkit" / "coldstart_handlers" / "minimal.py"
    ),
    "stratacache example (L1/L2/L3)": ROOT / "examples" / "app" / "handler.py",
}
EMPTY, HANDWRITTEN, MINIMAL, OURS = HANDLERS
CACHED = (HANDWRITTEN, MINIMAL, OURS)
"""The handlers whose first invocation takes the L3 path (each publishes the hit)."""
EVENT = {"pathParameters": {"symbol": "AMZN"}}
TARGET_RATIO = 1.00


@dataclass
class ColdStart:
    init_ms: float  # process start to the first request for an event
    first_ms: float  # the first invocation
    warm_ms: float  # median of the later invocations
    cpu_ms: float | None  # CPU time of init and the first invocation (Linux)

    @property
    def cold_ms(self) -> float:
        return self.init_ms + self.first_ms


def cold_start(
    task: Path, layer: Path, runtime: Path, env: dict[str, str], log: Path, warm: int
) -> ColdStart:
    """One execution environment: its cold start, then ``warm`` warm invocations."""
    with (
        RuntimeAPI() as api,
        LambdaEnvironment(api, [task, layer, runtime], read_only=[task, layer], log=log, env=env)
        as function,
    ):  # fmt: skip
        api.probe = function.cpu_ms  # read at each request for an event
        function.invoke([EVENT] * (1 + warm))
        order = sorted(api.handed_out, key=api.handed_out.__getitem__)
        took = [(api.answered[r] - api.handed_out[r]) * 1000 for r in order]
        assert api.first_poll is not None
        return ColdStart(
            init_ms=(api.first_poll - function.started) * 1000,
            first_ms=took[0],
            warm_ms=statistics.median(took[1:]) if warm else 0.0,
            cpu_ms=api.probes[1] if len(api.probes) > 1 else None,  # the 2nd request
        )


def run(rounds: int, warm: int, redis_url: str, endpoint: str) -> dict[str, list[ColdStart]]:
    import boto3
    import redis

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    scratch = Path(tempfile.mkdtemp(prefix="stratacache-coldstart-"))
    try:
        layer = build_layer(version, "x86_64", scratch / "layer")
        runtime = runtime_dir(
            scratch / "runtime", RUNTIME_PROVIDED + runtime_client() + POWERTOOLS_LAYER
        )
        tasks: dict[str, Path] = {}
        for name, source in HANDLERS.items():
            task = scratch / f"task-{len(tasks)}"
            task.mkdir()
            shutil.copy(source, task / "handler.py")
            tasks[name] = task
        table = "coldstart"
        create_cache_table(boto3.client("dynamodb", endpoint_url=endpoint), table)
        env = {
            **fake_aws_environment(endpoint),
            "STRATACACHE_REDIS_URL": redis_url,
            "STRATACACHE_TABLE_NAME": table,
            "POWERTOOLS_SERVICE_NAME": "quotes",
            "POWERTOOLS_METRICS_NAMESPACE": "coldstart",
            "QUOTE_ORIGIN_DELAY": "0.05",
        }
        control = redis.Redis.from_url(redis_url)
        log = scratch / "lambda.log"
        for name in CACHED:  # the origin's answer into every tier, once
            cold_start(tasks[name], layer, runtime, env, log, warm=0)
        results: dict[str, list[ColdStart]] = {name: [] for name in HANDLERS}
        names = list(HANDLERS)
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                control.flushall()  # a new environment after an eviction: L2 misses, L3 hits
                results[name].append(cold_start(tasks[name], layer, runtime, env, log, warm))
        _check_l3_hits(log.read_text(), expected=len(CACHED) * rounds)
        control.close()
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_l3_hits(output: str, expected: int) -> None:
    """Both cached handlers really took the L3 path in every timed cold start."""
    import json

    docs = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    hits = sum(1 for doc in docs if doc.get("tier") == "L3" and doc.get("CacheHit") == [1.0])
    if hits != expected:
        raise RuntimeError(f"{hits} L3 hits in the cold starts, not {expected}: check the log")


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _ms(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width - 2}.{digits}f}ms"


def show(results: dict[str, list[ColdStart]], out: Any = sys.stdout) -> None:
    rounds = len(results[EMPTY])
    print(
        f"\nCold start under awslambdaric, Python {sys.version.split()[0]}, the python"
        f"{sys.version_info.major}.{sys.version_info.minor} layer read-only "
        f"(median of {rounds} cold starts each; first invocation: L2 miss, L3 hit)",
        file=out,
    )
    print(
        f"  {'handler':<44}{'init':>9}{'1st call':>10}{'init+1st':>10}{'CPU':>10}{'warm':>9}",
        file=out,
    )
    for name, runs in results.items():
        print(
            f"  {name:<44}{_ms(_median([r.init_ms for r in runs]), 9)}"
            f"{_ms(_median([r.first_ms for r in runs]), 10)}"
            f"{_ms(_median([r.cold_ms for r in runs]), 10)}"
            f"{_ms(_median([r.cpu_ms for r in runs]), 10)}"
            f"{_ms(_median([r.warm_ms for r in runs]), 9, 2)}",
            file=out,
        )
    for ours in (MINIMAL, OURS):
        compare(results[ours], results[HANDWRITTEN], ours, out)


def paired(
    ours: list[ColdStart], theirs: list[ColdStart], field: str
) -> tuple[float, float] | None:
    """The median of the per-round differences (ms) and of the per-round ratios of ``field``.

    Paired by round (the two ran one after the other), so load that drifts over the
    run cancels out.
    """
    pairs = [(getattr(a, field), getattr(b, field)) for a, b in zip(ours, theirs, strict=True)]
    known = [(a, b) for a, b in pairs if a is not None and b]
    if not known:
        return None
    return (
        statistics.median(a - b for a, b in known),
        statistics.median(a / b for a, b in known),
    )


def compare(ours: list[ColdStart], theirs: list[ColdStart], name: str, out: Any) -> None:
    """One stratacache handler against the hand-written one: what it adds, paired by round."""

    def said(field: str, digits: int) -> str:
        found = paired(ours, theirs, field)
        if found is None:
            return "-"
        added, ratio = found
        return f"{added:+.{digits}f} ms (paired ratio {ratio:.2f})"

    print(
        f"  {name} over the hand-written handler (median of paired rounds): "
        f"init+1st {said('cold_ms', 1)}, CPU {said('cpu_ms', 1)}, warm {said('warm_ms', 2)}",
        file=out,
    )
    found = paired(ours, theirs, "cold_ms")
    assert found is not None
    verdict = "met" if found[1] <= TARGET_RATIO else "NOT met"
    print(f"    target: init+1st paired ratio <= {TARGET_RATIO:.2f}: {verdict}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round: checks it runs")
    quick = parser.parse_args(argv).quick
    os.environ.update(fake_aws_environment())  # never real credentials or a real region
    with RedisServer() as redis_server, MotoServer() as moto:
        results = run(
            rounds=1 if quick else 15,
            warm=3 if quick else 9,
            redis_url=redis_server.url,
            endpoint=moto.endpoint,
        )
    show(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
