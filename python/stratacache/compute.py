"""Compute once: the one algorithm behind every cached call, and its two drivers.

The algorithm is written once, as generators that *yield* what they need done
instead of doing it: tier I/O (:class:`Io`), a pause (:class:`Sleep`), the
user's function (:data:`COMPUTE`), or joining a single-flight
(:class:`Flight`). :func:`run` carries those out for a ``def`` function,
:func:`arun` for an ``async def`` one (tier I/O in a worker thread, the
function awaited, ``asyncio.sleep``). Both drivers therefore take the same
steps: single-flight, the lease with wait-or-take-over, the recheck folded
into the lease attempt, freshness with stale-if-error, and the conditional
store.

A full miss with the lock costs a shared tier three round trips: the read,
the lease (a conditional write of a lease record into the entry's key, which
returns what is there when it fails, so a value that just landed is seen
without another read), and the value's write (conditional on the lease, which
it replaces: write and release in one).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, NamedTuple, TypeVar

from stratacache.envelope import Record, new_version
from stratacache.records import HELD, WAIT
from stratacache.singleflight import SingleFlight
from stratacache.slots import Call
from stratacache.tiered import TieredCache

R = TypeVar("R")

COMPUTE: Final = object()
"""Effect: call the user's function (its result, or its exception, comes back)."""


class Io(NamedTuple):
    """Effect: a blocking tier operation ``fn(*args)``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


class Sleep(NamedTuple):
    """Effect: pause for ``seconds``."""

    seconds: float


class Flight(NamedTuple):
    """Effect: run ``steps()`` once among the concurrent callers of ``key``."""

    key: str
    steps: Callable[[], Steps]


Steps = Generator[Any, Any, Any]
ShouldCache = Callable[[Any], bool]
"""Whether a computed value is to be stored (dogpile's ``should_cache_fn``)."""


def _io(fn: Callable[..., Any], *args: Any) -> Io:
    return Io(fn, args)


# ---------------------------------------------------------------- the algorithm


def get_or_compute(
    cache: TieredCache,
    full_key: str,
    seen: tuple[Call, Record | None] | None = None,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """Look up; serve a hit (refreshing it if due), else compute once and store.

    ``seen`` is a lookup the caller already made (its call and what it found),
    so a decorator can answer a plain hit without starting the algorithm.
    ``should_cache(value)`` returning false keeps a computed value out of the
    tiers; it is still returned (and a lease this call holds is given back).
    """
    if seen is None:
        call = cache.begin()
        record = yield _io(cache.read, full_key, call)
    else:
        call, record = seen
    if record is not None:
        if not cache.refresh_due(record):
            return record.value
        return (yield from refresh_stale(cache, full_key, call, record, should_cache))
    return (yield Flight(full_key, lambda: fill(cache, full_key, call, should_cache)))


def fill(
    cache: TieredCache, full_key: str, call: Call, should_cache: ShouldCache | None = None
) -> Steps:
    """A full miss: compute under the lease when one is to be had, else wait or compute."""
    slot = cache.lease_slot(call)
    if slot is None:
        value, _ = yield from compute_and_store(cache, full_key, call, None, should_cache)
        return value
    token = new_version()
    held: bool | None = None  # unknown until the lease attempt answers
    try:
        outcome = yield _io(cache.acquire, slot, full_key, call, token)
        held = outcome is HELD
        if isinstance(outcome, Record):  # a value landed just before us
            return outcome.value
        if outcome is WAIT:
            deadline = cache.monotonic() + cache.lock_wait
            pause = 0.005
            while outcome is WAIT and (left := deadline - cache.monotonic()) > 0:
                yield Sleep(min(pause, left))
                pause = min(pause * 2, 0.1)
                outcome = yield _io(cache.poll, slot, full_key, call, token)
                if isinstance(outcome, Record):
                    return outcome.value
            held = outcome is HELD
            # Otherwise the wait is up, or the tier failed: compute without the lease.
        value, stored = yield from compute_and_store(
            cache, full_key, call, token if held else None, should_cache
        )
        if stored:
            held = False  # the value's write replaced the lease (or found it gone)
        return value
    finally:
        if held is not False:  # the computation failed, or the lease attempt was cancelled
            yield _io(cache.give_up, slot, full_key, call, token)


def compute_and_store(
    cache: TieredCache,
    full_key: str,
    call: Call,
    token: bytes | None,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """Call the function, then write its value (timed, for early refresh).

    Returns ``(value, stored)``: ``stored`` is false when ``should_cache`` refused it.
    """
    started = cache.monotonic()
    cache.recorder.origin_call()
    value = yield COMPUTE
    if should_cache is not None and not should_cache(value):
        return value, False
    delta = cache.monotonic() - started
    yield _io(lambda: cache.write(full_key, value, call, delta=delta, token=token))
    return value, True


def refresh_stale(
    cache: TieredCache,
    full_key: str,
    call: Call,
    record: Record,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """One caller recomputes a stale (or early-refresh) entry; everyone else serves it."""
    stale = cache.is_stale(record)
    if not cache.flights.try_lead(full_key):
        return cache.served(record, stale)
    try:
        slot = cache.lock_slot(call)
        token = uuid.uuid4().hex
        held: bool | None = False if slot is None else None
        try:
            if slot is not None:
                held = yield _io(cache.refresh_lock, slot, full_key, call, token)
                if held is False:  # another environment is refreshing it
                    return cache.served(record, stale)
            try:
                value, _ = yield from compute_and_store(cache, full_key, call, None, should_cache)
                return value
            except Exception as exc:
                if not stale:
                    raise
                return cache.served_on_error(full_key, record, exc)
        finally:
            if held is not False and slot is not None:
                yield _io(cache.refresh_unlock, slot, full_key, call, token)
    finally:
        cache.flights.release(full_key)


def refresh(cache: TieredCache, full_key: str) -> Steps:
    """Invalidate, then recompute and write where only this call's tombstones stand.

    Older fills, and older refreshes, can no longer land; a newer invalidation or
    refresh that lands first wins over this one.
    """
    call = yield _io(cache.reset, full_key)
    value, _ = yield from compute_and_store(cache, full_key, call, None)
    return value


# ---------------------------------------------------------------- drivers


def run(
    steps: Steps,
    compute: Callable[[], R],
    flights: SingleFlight,
    sleep: Callable[[float], None],
) -> R:
    """Carry the steps out in this thread.

    Example:
        >>> def steps():
        ...     value = yield COMPUTE
        ...     return value * 2
        >>> run(steps(), lambda: 21, SingleFlight(), lambda s: None)
        42
    """
    send: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = steps.send(send) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        send, error = None, None
        try:
            if effect is COMPUTE:
                send = compute()
            elif type(effect) is Io:
                send = effect.fn(*effect.args)
            elif type(effect) is Sleep:
                sleep(effect.seconds)
            else:
                send = flights.do(
                    effect.key, functools.partial(_lead, effect, compute, flights, sleep)
                )
        except BaseException as exc:
            error = exc


async def arun(
    steps: Steps,
    compute: Callable[[], Awaitable[Any]],
    flights: SingleFlight,
    offload: bool,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Any:
    """Carry the steps out in an event loop: I/O in a worker thread when ``offload``."""
    import asyncio  # loaded by the running loop already; import stratacache skips it

    pause = sleep or asyncio.sleep
    send: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = steps.send(send) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        send, error = None, None
        try:
            if effect is COMPUTE:
                send = await compute()
            elif type(effect) is Io:
                send = await _settled(effect) if offload else effect.fn(*effect.args)
            elif type(effect) is Sleep:
                await pause(effect.seconds)
            else:
                send = await flights.ado(
                    effect.key, functools.partial(_alead, effect, compute, flights, offload, sleep)
                )
        except BaseException as exc:
            error = exc


def _lead(
    flight: Flight, compute: Callable[[], R], flights: SingleFlight, sleep: Callable[[float], None]
) -> R:
    return run(flight.steps(), compute, flights, sleep)


async def _alead(
    flight: Flight,
    compute: Callable[[], Awaitable[Any]],
    flights: SingleFlight,
    offload: bool,
    sleep: Callable[[float], Awaitable[None]] | None,
) -> Any:
    return await arun(flight.steps(), compute, flights, offload, sleep)


async def _settled(effect: Io) -> Any:
    """Run tier I/O in a thread; if the caller is cancelled meanwhile, let it finish first.

    The thread cannot be stopped: a lease it is taking lands whatever happens.
    Waiting for it before the cancellation reaches the algorithm lets the
    algorithm's cleanup see the lease and give it back, instead of leaving it
    to block every other caller for the whole lease. The thread's future is a
    plain future, not a task (as ``asyncio.to_thread`` would make): when the
    event loop ends, ``asyncio.run`` cancels every task, and a cancelled task
    would stop the wait before the thread is done.
    """
    import asyncio
    import contextvars

    call = functools.partial(contextvars.copy_context().run, effect.fn, *effect.args)
    done = asyncio.get_running_loop().run_in_executor(None, call)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait({done})
        raise
