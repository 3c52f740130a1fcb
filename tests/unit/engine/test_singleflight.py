"""Single-flight on its own: one computation per key among the callers that overlap."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stratacache._engine import singleflight
from stratacache._engine.singleflight import SingleFlight
from tests.support import all_waiting, wait_until


def _follower(flights: SingleFlight, key: str, fn: object, got: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            got.append(flights.do(key, fn))  # type: ignore[arg-type]
        except Exception as exc:  # the error is what the test looks at
            got.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _blocked_leader(
    flights: SingleFlight, key: str, result: object
) -> tuple[threading.Event, threading.Thread, list[object], list[int]]:
    """A leader whose computation runs until the returned event is set."""
    gate, calls = threading.Event(), [0]
    got: list[object] = []

    def compute() -> object:
        calls[0] += 1
        gate.wait(60)
        if isinstance(result, Exception):
            raise result
        return result

    leader = _follower(flights, key, compute, got)
    wait_until(lambda: all_waiting([leader]))  # inside compute, the flight under way
    return gate, leader, got, calls


def test_a_caller_arriving_during_a_flight_waits_and_gets_its_result() -> None:
    flights = SingleFlight()
    gate, leader, got, calls = _blocked_leader(flights, "k", "value")
    extra: list[object] = []
    follower = _follower(flights, "k", lambda: "never", extra)
    wait_until(lambda: all_waiting([follower]))  # waiting on the leader's flight
    gate.set()
    leader.join(60)
    follower.join(60)
    assert got == ["value"]
    assert extra == ["value"]
    assert calls == [1]
    assert flights._flights == {}  # over: the next caller computes again
    assert flights.do("k", lambda: "again") == "again"


def test_an_error_reaches_every_waiter_and_is_not_remembered() -> None:
    flights = SingleFlight()
    boom = ValueError("boom")
    gate, leader, got, _ = _blocked_leader(flights, "k", boom)
    extra: list[object] = []
    follower = _follower(flights, "k", lambda: "never", extra)
    wait_until(lambda: all_waiting([follower]))
    gate.set()
    leader.join(60)
    follower.join(60)
    assert got == [boom]
    assert extra == [boom]
    assert flights._flights == {}
    assert flights.do("k", lambda: 3) == 3


def test_a_base_exception_also_ends_the_flight() -> None:
    flights = SingleFlight()

    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        flights.do("k", stop)
    assert flights._flights == {}


def test_forget_lets_a_new_caller_start_its_own_flight_and_keeps_it_after_the_old_ends() -> None:
    flights = SingleFlight()
    gate, leader, got, _ = _blocked_leader(flights, "k", "old")
    flights.forget("k")
    assert "k" not in flights._flights
    assert flights.try_lead("k")  # a new flight for k
    new = flights._flights["k"]
    gate.set()
    leader.join(60)
    assert got == ["old"]
    assert flights._flights["k"] is new  # the old flight's end left the new one alone
    flights.release("k")
    assert flights._flights == {}
    assert new.done.is_set()


def test_try_lead_claims_a_key_once_until_released() -> None:
    flights = SingleFlight()
    assert flights.try_lead("k") is True
    assert flights.try_lead("k") is False
    assert flights.try_lead("other") is True
    flights.release("k")
    assert flights.try_lead("k") is True
    flights.release("nothing")  # releasing an unclaimed key is harmless
    assert set(flights._flights) == {"k", "other"}


def test_forget_all_clears_every_flight_and_task() -> None:
    flights = SingleFlight()
    flights.try_lead("a")
    flights.try_lead("b")
    flights._tasks[(1, "a")] = object()
    flights._tasks[(1, "b")] = object()
    flights.forget("a")
    assert set(flights._flights) == {"b"}
    assert set(flights._tasks) == {(1, "b")}
    flights.forget("missing")  # nothing to forget
    flights.forget()
    assert flights._flights == {}
    assert flights._tasks == {}


def test_tasks_of_one_loop_share_one_awaited_call_and_the_next_call_runs_again() -> None:
    flights = SingleFlight()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return calls

    async def main() -> tuple[list[int], int, int]:
        together = await asyncio.gather(*(flights.ado("k", compute) for _ in range(3)))
        assert flights._tasks == {}
        return list(together), await flights.ado("k", compute), await flights.ado("j", compute)

    together, again, other = asyncio.run(main())
    assert together == [1, 1, 1]
    assert (again, other) == (2, 3)


def test_a_cancelled_waiter_does_not_cancel_the_others_computation() -> None:
    flights = SingleFlight()
    gate_holder: list[asyncio.Event] = []

    async def compute() -> str:
        await gate_holder[0].wait()
        return "done"

    async def main() -> str:
        gate_holder.append(asyncio.Event())
        first = asyncio.ensure_future(flights.ado("k", compute))
        second = asyncio.ensure_future(flights.ado("k", compute))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gate_holder[0].set()
        return await second

    assert asyncio.run(main()) == "done"
    assert flights._tasks == {}


def test_a_forgotten_task_is_not_removed_in_place_of_its_successor() -> None:
    flights = SingleFlight()

    async def main() -> None:
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return "old"

        old = asyncio.ensure_future(flights.ado("k", slow))
        await asyncio.sleep(0)
        flights.forget("k")
        successor = object()
        loop_key = (id(asyncio.get_running_loop()), "k")
        flights._tasks[loop_key] = successor
        gate.set()
        assert await old == "old"
        assert flights._tasks[loop_key] is successor

    asyncio.run(main())


def test_after_fork_the_child_forgets_every_flight() -> None:
    flights = SingleFlight()
    flights.try_lead("k")
    flights._tasks[(1, "k")] = object()
    lock = flights._lock
    singleflight._reset_after_fork()
    assert flights._flights == {}
    assert flights._tasks == {}
    assert flights._lock is not lock
    assert not flights._lock.locked()
    assert flights.do("k", lambda: 1) == 1


def test_tasks_of_different_event_loops_never_share_a_call() -> None:
    flights = SingleFlight()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:

        async def never() -> int:
            await asyncio.Event().wait()
            return 1

        async def two() -> int:
            return 2

        pending = first.create_task(flights.ado("k", never))
        first.run_until_complete(asyncio.sleep(0))  # the first loop's call is under way
        assert len(flights._tasks) == 1
        assert second.run_until_complete(flights.ado("k", two)) == 2
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            first.run_until_complete(pending)
        flights.forget()
        left = asyncio.all_tasks(first)  # the shared call itself, still waiting
        for task in left:
            task.cancel()
        first.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    finally:
        first.close()
        second.close()
