"""EMF lines as CloudWatch reads them: one JSON document per line, whoever publishes.

Threads and a missing Powertools run in fresh interpreters whose stdout is a
pipe, as a Lambda function's is; every line they print is parsed on its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from stratacache import cached, log_cache_metrics
from stratacache import metrics as stratacache_metrics
from stratacache.metrics import MetricsRecorder
from stratacache.tiers import MemoryTier
from tests.support import cache_counts, emf_lines, run_python, value

THREADS = 8
CALLS = 4000
KEYS = 50


def cloudwatch_documents(stdout: str) -> list[dict[str, Any]]:
    """Every non-empty line as CloudWatch parses it: one whole JSON document each."""
    documents = []
    for line in stdout.splitlines():
        if line.strip():
            document = json.loads(line)  # raises on two documents glued on one line
            assert isinstance(document, dict)
            assert "_aws" in document
            documents.append(document)
    return documents


MANY_THREADS = f"""
import threading
from stratacache import cached, publish_metrics

@cached(ttl=3600)
def f(x):
    return x

def work():
    for i in range({CALLS}):
        f(i % {KEYS})

threads = [threading.Thread(target=work) for _ in range({THREADS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
publish_metrics()
"""


def test_eight_threads_publishing_every_millisecond_print_one_document_per_line() -> None:
    out = run_python(MANY_THREADS, STRATACACHE_METRICS_INTERVAL="0.001").stdout
    documents = cloudwatch_documents(out)
    l1 = [doc for doc in documents if doc["tier"] == "L1"]
    assert len(l1) > 1  # the interval published while the threads ran
    assert sum(value(doc, "CacheHit") + value(doc, "CacheMiss") for doc in l1) == THREADS * CALLS
    origin = sum(value(doc, "CacheOriginCall") for doc in documents if doc["tier"] == "origin")
    assert KEYS <= origin <= KEYS * THREADS  # concurrent first calls may each run the origin


# ------------------------------------------------------------------ one flush per invocation


def test_a_decorated_handler_prints_the_caches_lines_once_at_return(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    recorder = MetricsRecorder(interval=60, clock=lambda: now[0])
    monkeypatch.setattr(stratacache_metrics, "recorder", recorder)

    @cached(ttl=86_400, tier=MemoryTier(timer=lambda: now[0]))
    def f(x: int) -> int:
        return x

    printed_mid_invocation: list[int] = []

    @log_cache_metrics
    def handler(event: list[int], context: object) -> None:
        for x in event:
            f(x)
            now[0] += 61  # the interval passes between two lookups of one invocation
            printed_mid_invocation.append(len(emf_lines(capsys.readouterr().out)))

    handler([1, 1, 2], None)
    first = emf_lines(capsys.readouterr().out)
    now[0] += 3600  # idle for longer than the interval
    handler([1, 2, 3, 3], None)
    second = emf_lines(capsys.readouterr().out)

    assert printed_mid_invocation == [0] * 7
    assert cache_counts(first) == {
        "L1": {"CacheHit": 1, "CacheMiss": 2, "CacheError": 0},
        "origin": {"CacheOriginCall": 2},
    }
    assert cache_counts(second) == {
        "L1": {"CacheHit": 3, "CacheMiss": 1, "CacheError": 0},
        "origin": {"CacheOriginCall": 1},
    }

    # Outside a decorated handler (a thread between invocations), the interval works as ever.
    now[0] += 61
    f(1)
    assert cache_counts(emf_lines(capsys.readouterr().out)) == {
        "L1": {"CacheHit": 1, "CacheMiss": 0, "CacheError": 0}
    }


def test_an_async_handler_publishes_when_its_coroutine_returns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = MetricsRecorder(interval=60, clock=lambda: 0.0)
    monkeypatch.setattr(stratacache_metrics, "recorder", recorder)

    @cached(ttl=60, tier=MemoryTier(timer=lambda: 0.0))
    def f(x: int) -> int:
        return x

    @log_cache_metrics
    async def handler(event: list[int], context: object) -> int:
        await asyncio.sleep(0)
        return sum(f(x) for x in event)

    coroutine = handler([1, 1], None)
    assert emf_lines(capsys.readouterr().out) == []  # nothing ran yet, nothing to publish
    assert asyncio.run(coroutine) == 2
    assert cache_counts(emf_lines(capsys.readouterr().out)) == {
        "L1": {"CacheHit": 1, "CacheMiss": 1, "CacheError": 0},
        "origin": {"CacheOriginCall": 1},
    }


# ------------------------------------------------------------------ no Powertools

NO_POWERTOOLS = """
import json, logging, sys

class NoPowertools:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "aws_lambda_powertools":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

blocker = NoPowertools()
sys.meta_path.insert(0, blocker)
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

from stratacache import cached, log_cache_metrics, metrics

@cached(ttl=3600)
def f(x):
    return x

@log_cache_metrics
def handler(event, context):
    return f(event)

for i in range(6):
    handler(i % 2, None)
print(json.dumps({"pending": metrics.recorder.pending()}))
sys.meta_path.remove(blocker)  # Powertools after all: the counts kept go out
print(json.dumps({"printed": metrics.publish_metrics()}))
"""


def test_without_powertools_six_invocations_warn_once_and_keep_their_counts() -> None:
    done = run_python(NO_POWERTOOLS)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        "WARNING stratacache.metrics stratacache: attach the Powertools layer or install "
        "aws-lambda-powertools; cache metrics are off until then (counts are kept)"
    ]
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    kept = {
        "L1": {"CacheHit": 4, "CacheMiss": 2, "CacheError": 0},
        "origin": {"CacheOriginCall": 2},
    }
    assert lines[0] == {"pending": kept}
    assert cache_counts(lines[1:-1]) == kept
    assert lines[-1] == {"printed": 2}
