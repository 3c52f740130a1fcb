"""The decorators' L1 fast path: one memo lookup, one dict lookup, and the LRU kept."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import MemoryTier, cached, metrics


def test_the_fast_path_reads_the_plain_dict_of_the_installed_cachetools() -> None:
    tier = MemoryTier()
    assert type(tier.entries) is dict  # not cachetools' Python-level __getitem__
    tier.set("k", "v", ttl=None)
    assert tier.entries["k"][0] == "v"


def test_a_fast_path_hit_keeps_the_entry_recently_used() -> None:
    computed: list[str] = []

    @cached(tier=MemoryTier(maxsize=2))
    def f(x: str) -> str:
        computed.append(x)
        return x

    f("a")
    f("b")
    f("a")  # a hit on the fast path: "a" is now the most recently used
    f("c")  # evicts the least recently used: "b"
    f("a")
    f("b")
    assert computed == ["a", "b", "c", "b"]


def _decorated(kind: str) -> tuple[Any, Callable[[str], str]]:
    if kind == "sync":

        @cached(ttl=60)
        def f(x: str) -> str:
            return x

        return f, f

    @cached(ttl=60)
    async def g(x: str) -> str:
        return x

    return g, lambda x: asyncio.run(g(x))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_l1_hits_publish_the_metrics_on_the_same_schedule_sync_and_async(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[int] = []
    recorder = metrics.recorder
    monkeypatch.setattr(recorder, "publish", lambda: published.append(1))
    fn, call = _decorated(kind)
    assert call("a") == "a"  # a miss fills L1
    monkeypatch.setattr(recorder, "deadline", math.inf)
    published.clear()
    assert call("a") == "a"  # an L1 hit before the deadline: nothing published
    assert published == []
    monkeypatch.setattr(recorder, "deadline", -math.inf)
    assert call("a") == "a"  # an L1 hit past the deadline publishes, async as sync
    assert published == [1]
    assert fn.cache.stats()["L1"]["hits"] == 2


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sync_and_async_l1_hits_come_from_one_builder(kind: str) -> None:
    from stratacache import decorators

    built: list[int] = []
    original = decorators._fast_path

    def spy(*args: Any) -> Any:
        built.append(1)
        return original(*args)

    decorators._fast_path = spy  # type: ignore[assignment]
    try:
        _decorated(kind)
    finally:
        decorators._fast_path = original
    assert built == [1]
