"""Single-flight: concurrent callers of one key share one computation.

Threads wait on the first caller's computation; asyncio tasks await it. No
lock is held while the computation runs, so other keys never wait, and an
exception reaches every waiter of that flight without being remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class _Flight(Generic[R]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Run ``fn`` once per key among the threads that ask at the same time.

    Example:
        >>> flights = SingleFlight()
        >>> flights.do("k", lambda: 42)
        42
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}
        self._tasks: dict[tuple[int, str], Any] = {}

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
            with self._lock:
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
                    self._tasks.pop(loop_key, None)

            task = self._tasks[loop_key] = asyncio.ensure_future(run())
        # shield: one waiter being cancelled must not cancel the others' computation
        result: R = await asyncio.shield(task)
        return result
