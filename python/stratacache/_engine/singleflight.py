"""Single-flight: concurrent callers of one key share one computation.

Threads wait on the first caller's computation; asyncio tasks await it. No
lock is held while the computation runs, so other keys never wait, and an
exception reaches every waiter of that flight without being remembered.

An invalidation calls :meth:`SingleFlight.forget`: callers already waiting
get the flight they joined, callers arriving afterwards start a new one, so
nobody who asks after an ``invalidate()`` returned gets a value computed
before it. After ``fork()`` the child forgets every flight: the threads that
would finish them were not copied.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class _Flight(Generic[R]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


_instances: weakref.WeakSet[SingleFlight] = weakref.WeakSet()


class SingleFlight:
    """Run ``fn`` once per key among the threads (or tasks) that ask at the same time.

    Example:
        >>> flights = SingleFlight()
        >>> flights.do("k", lambda: 42)
        42
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}
        self._tasks: dict[tuple[int, str], Any] = {}
        _instances.add(self)

    def do(self, key: str, fn: Callable[[], R]) -> R:
        """``fn()``'s result; a caller arriving while it runs waits and gets the same."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = fn()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            self._end(key, flight)

    def _end(self, key: str, flight: _Flight[Any]) -> None:
        with self._lock:
            if self._flights.get(key) is flight:  # not forgotten and replaced meanwhile
                del self._flights[key]
        flight.done.set()

    def try_lead(self, key: str) -> bool:
        """Claim ``key`` without waiting; ``False`` when a flight for it is under way."""
        with self._lock:
            if key in self._flights:
                return False
            self._flights[key] = _Flight()
            return True

    def release(self, key: str) -> None:
        """End a flight claimed with :meth:`try_lead`."""
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.done.set()

    def forget(self, key: str | None = None) -> None:
        """Let callers arriving from now on start a new flight for ``key`` (all keys: ``None``)."""
        with self._lock:
            if key is None:
                self._flights.clear()
                self._tasks.clear()
                return
            self._flights.pop(key, None)
            for loop_key in [k for k in self._tasks if k[1] == key]:
                del self._tasks[loop_key]

    async def ado(self, key: str, fn: Callable[[], Awaitable[R]]) -> R:
        """Like :meth:`do` for coroutines: tasks of one event loop share one awaited call."""
        import asyncio  # loaded by the running loop already

        loop_key = (id(asyncio.get_running_loop()), key)
        task = self._tasks.get(loop_key)
        if task is None:

            async def run() -> R:
                try:
                    return await fn()
                finally:
                    if self._tasks.get(loop_key) is task:
                        del self._tasks[loop_key]

            task = self._tasks[loop_key] = asyncio.ensure_future(run())
        # shield: one waiter being cancelled must not cancel the others' computation
        result: R = await asyncio.shield(task)
        return result

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flights = {}
        self._tasks = {}


def _reset_after_fork() -> None:
    for flights in list(_instances):
        flights._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
