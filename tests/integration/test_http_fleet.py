"""HTTP answers across a fleet, on real Valkey and moto: one handler call per cold path,
and an invalidation that a fill in flight cannot undo.

A fleet worker is a fresh interpreter with its own L1, like a separate Lambda
execution environment, and reaches Redis and DynamoDB (moto) over the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stratacache import DynamoDBTier, MemoryTier, RedisTier, TieredCache
from stratacache.freshness import Freshness
from stratacache.http import HttpCache, HttpRequest, entity_tag
from tests.support import ROOT, FakeClock, function_url_event, http_v2_event, rest_v1_event

# It announces itself, waits for the starting gun, then asks for the same cold path.
# The handler holds its answer until every worker has asked (with the lease), or,
# without it, until every worker is inside the handler: the burst overlaps for sure.
WORKER = """
import json, sys, time
import redis
from stratacache import TieredCache
from stratacache.http import http_cached
from stratacache.tiers import tiers_from_env

url, count, lock = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on"
control = redis.Redis.from_url(url)
held_until = "asking" if lock else "handler-calls"
cache = TieredCache(tiers_from_env(), ttl=300, namespace="fleet:http", lock=lock, lock_wait=120)

@http_cached(cache=cache)
def handler(event, context):
    control.incr("handler-calls")
    deadline = time.monotonic() + 60
    while int(control.get(held_until) or 0) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"symbol": "AMZN", "price": 1.5})}

event = {"version": "2.0", "rawPath": "/quote/AMZN", "rawQueryString": "", "headers": {},
         "requestContext": {"http": {"method": "GET", "path": "/quote/AMZN"}}}
control.incr("ready")
while not control.exists("go"):
    time.sleep(0.005)
control.incr("asking")
answer = handler(event, None)
print("ANSWER " + json.dumps(answer))
"""


def run_fleet(tmp_path: Path, redis_client: Any, url: str, count: int, lock: bool) -> list[Any]:
    script = tmp_path / "http_worker.py"
    script.write_text(textwrap.dedent(WORKER))
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(count), "on" if lock else "off"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
        )
        for _ in range(count)
    ]
    try:
        deadline = time.monotonic() + 120
        while int(redis_client.get("ready") or 0) < count:
            assert time.monotonic() < deadline, "the workers never got ready"
            assert all(w.poll() is None for w in workers), "a worker died before the burst"
            time.sleep(0.02)
        redis_client.set("go", 1)
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0] * count
    answers = []
    for output in outputs:
        (line,) = [x for x in output.splitlines() if x.startswith("ANSWER ")]
        answers.append(json.loads(line.removeprefix("ANSWER ")))
    return answers


def test_sixteen_cold_environments_asking_one_path_call_the_handler_once(
    tmp_path: Path, remote_env: dict[str, str], redis_client: Any
) -> None:
    answers = run_fleet(tmp_path, redis_client, remote_env["STRATACACHE_REDIS_URL"], 16, True)
    assert int(redis_client.get("handler-calls")) == 1
    assert {answer["statusCode"] for answer in answers} == {200}
    assert len({answer["headers"]["ETag"] for answer in answers}) == 1
    assert {answer["body"] for answer in answers} == {'{"symbol": "AMZN", "price": 1.5}'}


def test_without_the_lease_the_same_burst_calls_the_handler_in_every_environment(
    tmp_path: Path, remote_env: dict[str, str], redis_client: Any
) -> None:
    """The control: the burst above really overlaps; the lease is what makes it one call."""
    run_fleet(tmp_path, redis_client, remote_env["STRATACACHE_REDIS_URL"], 4, False)
    assert int(redis_client.get("handler-calls")) == 4


# ---------------------------------------------------------------- invalidation


class Origin:
    """A handler over data that moves, which can be stopped mid-answer."""

    def __init__(self) -> None:
        self.version = 1
        self.calls = 0
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        self._held: threading.Event | None = None

    def hold_release(self) -> None:
        assert self._held is not None
        self._held.set()

    def __call__(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        self.calls += 1
        body = f"price v{self.version}"
        hold, self.hold = self.hold, None
        if hold is not None:  # stop here, having read the data
            self._held = hold
            self.holding.set()
            assert hold.wait(30)
        return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": body}


@pytest.fixture
def shared(redis_tier: RedisTier, dynamodb_tier: DynamoDBTier) -> tuple[RedisTier, DynamoDBTier]:
    return redis_tier, dynamodb_tier


def environment(shared: tuple[RedisTier, DynamoDBTier]) -> HttpCache:
    """A new execution environment: an empty L1 in front of the shared Redis and DynamoDB."""
    cache = TieredCache([MemoryTier(), *shared], ttl=300, namespace="fleet-inv")
    return HttpCache(cache=cache, name="quotes")


def stored_bodies(http: HttpCache, shared: tuple[RedisTier, DynamoDBTier], event: Any) -> list[Any]:
    """The answer each tier holds for ``event``: this environment's chain, Redis, DynamoDB."""
    request = HttpRequest.from_event(event)
    assert request is not None
    key = http.key(request)
    found = [http.cache.get(key)]
    for tier in shared:
        found.append(TieredCache([tier], ttl=300, namespace="fleet-inv").get(key))
    return [None if entry is None else entry["body"] for entry in found]  # type: ignore[index]


@pytest.mark.parametrize("how", ["handler", "http-cache"])
def test_a_fill_in_flight_cannot_undo_an_invalidation(
    shared: tuple[RedisTier, DynamoDBTier], how: str
) -> None:
    origin = Origin()
    http = environment(shared)
    handler = http(origin)
    origin.hold = release = threading.Event()
    answers: list[Any] = []
    filling = threading.Thread(target=lambda: answers.append(handler(function_url_event(), None)))
    filling.start()
    assert origin.holding.wait(30)  # it computed v1 and is about to store it

    origin.version = 2
    if how == "handler":
        handler.invalidate("/quote/AMZN")
    else:
        http.invalidate(rest_v1_event())
    release.set()
    filling.join(30)
    assert answers[0]["body"] == "price v1"  # its own caller began first: it gets v1

    assert stored_bodies(http, shared, http_v2_event()) == [None, None, None]
    assert handler(http_v2_event(), None)["body"] == "price v2"
    assert environment(shared)(origin)(rest_v1_event(), None)["body"] == "price v2"
    assert stored_bodies(http, shared, http_v2_event()) == ["price v2"] * 3
    assert origin.calls == 2


def test_refresh_replaces_the_answer_in_every_shared_tier(
    shared: tuple[RedisTier, DynamoDBTier],
) -> None:
    origin = Origin()
    first_env = environment(shared)
    handler = first_env(origin)
    old = handler(http_v2_event(), None)
    origin.version = 2
    new = handler.refresh(rest_v1_event())
    assert new["body"] == "price v2"
    assert new["headers"]["ETag"] != old["headers"]["ETag"]
    assert stored_bodies(first_env, shared, http_v2_event()) == ["price v2"] * 3
    later = environment(shared)(origin)(function_url_event(), None)  # a new environment
    assert later["body"] == "price v2"
    assert later["headers"]["ETag"] == new["headers"]["ETag"]
    assert origin.calls == 2


def test_an_invalidation_in_one_environment_reaches_a_new_one(
    shared: tuple[RedisTier, DynamoDBTier],
) -> None:
    origin = Origin()
    first = environment(shared)(origin)
    first(rest_v1_event(), None)
    origin.version = 2
    assert environment(shared).invalidate("/quote/AMZN") is True
    assert environment(shared)(origin)(http_v2_event(), None)["body"] == "price v2"
    assert origin.calls == 2
    # (``first``'s own L1 may still serve its copy for its L1 lifetime: the README's bound.)


def test_one_environment_refreshes_a_stale_answer_while_another_serves_it_stale(
    shared: tuple[RedisTier, DynamoDBTier],
) -> None:
    clock = FakeClock()

    def stale_environment() -> HttpCache:
        cache = TieredCache(
            [MemoryTier(timer=clock), *shared],
            ttl=60,
            namespace="fleet-stale",
            clock=clock,
            freshness=Freshness(grace=30),
        )
        return HttpCache(cache=cache)

    origin = Origin()
    first = stale_environment()(origin)
    first(rest_v1_event(), None)
    clock.advance(70)  # past the ttl, within grace
    origin.version, origin.hold = 2, threading.Event()
    refreshing = threading.Thread(target=first, args=(rest_v1_event(), None))
    refreshing.start()
    assert origin.holding.wait(30)
    other = stale_environment()(origin)(http_v2_event(), None)  # a new environment
    origin.hold_release()
    refreshing.join(30)
    assert other["body"] == "price v1"
    assert other["headers"]["Cache-Control"].startswith("max-age=0, s-maxage=0")
    assert origin.calls == 2  # the first refresh only
    assert first(function_url_event(), None)["body"] == "price v2"


def test_a_304_made_when_the_handler_ran_carries_the_validators_everywhere(
    shared: tuple[RedisTier, DynamoDBTier],
) -> None:
    origin = Origin()

    def vary_environment() -> HttpCache:
        cache = TieredCache([MemoryTier(), *shared], ttl=300, namespace="fleet-304")
        return HttpCache(cache=cache, vary=["Accept-Language"])

    tag = entity_tag(b"price v1", "text/plain")
    wanted = {"If-None-Match": tag, "Accept-Language": "en"}
    cold = vary_environment()(origin)(rest_v1_event(headers=wanted), None)  # the handler runs
    warm = vary_environment()(origin)(http_v2_event(headers=wanted), None)  # from Redis
    assert origin.calls == 1
    for answer in (cold, warm):
        assert answer["statusCode"] == 304
        assert answer["body"] == ""
        assert answer["headers"]["ETag"] == tag
        assert answer["headers"]["Vary"] == "accept-language, authorization"
        assert answer["headers"]["Cache-Control"].startswith("max-age=")
        assert set(answer["headers"]) == {"Cache-Control", "ETag", "Vary"}
