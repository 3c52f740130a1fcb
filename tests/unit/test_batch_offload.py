"""``@cached_many`` offloads tier I/O the algorithm's way: a cancelled caller waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

from stratacache import MemoryTier, cached_many
from stratacache.tiers.base import Missing


class HeldTier(MemoryTier):
    """A tier whose batch read blocks until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()
        self.finished = False

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        self.entered.set()
        assert self.go.wait(30)
        found = super().get_many(keys)
        self.finished = True
        return found


def test_a_cancelled_batch_call_waits_for_its_tier_io_to_finish() -> None:
    tier = HeldTier()

    @cached_many(ttl=60, tiers=[tier], namespace="offload")
    async def squares(ids: list[int]) -> dict[int, int]:
        return {i: i * i for i in ids}

    async def scenario() -> tuple[bool, bool]:
        task = asyncio.ensure_future(squares([1, 2]))
        while not tier.entered.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        for _ in range(20):
            await asyncio.sleep(0)  # asyncio.to_thread would let the cancellation through here
        done_while_held = task.done()
        tier.go.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return done_while_held, tier.finished

    done_while_held, finished = asyncio.run(scenario())
    assert done_while_held is False  # the cancellation waited for the thread
    assert finished is True
