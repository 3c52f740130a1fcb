"""Separate processes, like separate Lambda execution environments, share L2 and L3."""

from __future__ import annotations

import importlib
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.support import entry_keys

SHARED_MODULE = """
import json, os
from stratacache import cached_tiered

@cached_tiered(ttl=300)
def whoami(region, ids):
    return {"computed_by": os.getpid(), "region": region, "ids": ids}

if __name__ == "__main__":
    value = whoami("eu", [3, 1, 2])
    stats = {name: s["hits"] for name, s in whoami.cache.stats().items()}
    print(json.dumps({"value": value, "hits": stats}))
"""


@pytest.fixture
def environment_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shared_fn.py").write_text(textwrap.dedent(SHARED_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def run_shared_fn(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    return support.run_environment(folder, env, "-m", "shared_fn")


def test_a_second_process_hits_l2_then_l3_after_a_redis_flush(
    remote_env: dict[str, str], environment_module: Path, redis_client: Any
) -> None:
    first = run_shared_fn(environment_module, remote_env)
    assert first["hits"] == {"L1": 0, "L2": 0, "L3": 0}
    assert first["value"]["computed_by"] != os.getpid()

    second = run_shared_fn(environment_module, remote_env)
    assert second["hits"] == {"L1": 0, "L2": 1, "L3": 0}
    assert second["value"] == first["value"]

    redis_client.flushall()
    third = run_shared_fn(environment_module, remote_env)
    assert third["hits"] == {"L1": 0, "L2": 0, "L3": 1}
    assert third["value"] == first["value"]
    promoted = [key for key in entry_keys(redis_client) if not key.endswith(b"#gen")]
    assert len(promoted) == 1  # promoted back into L2, beside the feed
    assert redis_client.get(b"stratacache:shared_fn.whoami#gen") == b"0"  # written back too

    # And this test process, a fourth environment, finds the same key.
    module = importlib.import_module("shared_fn")
    assert module.whoami("eu", [3, 1, 2]) == first["value"]
    assert module.whoami.cache.stats()["L2"]["hits"] == 1
