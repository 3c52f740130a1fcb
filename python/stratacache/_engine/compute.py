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
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, NamedTuple, TypeVar

from stratacache._engine.chain import Chain
from stratacache._engine.guard import FAILED, NOTHING_SEEN, Guard, Trace, redact
from stratacache._engine.invalidation import forget
from stratacache._engine.lease import HELD, WAIT, Lease
from stratacache._engine.singleflight import SingleFlight
from stratacache.envelope import Record, new_version, version_of
from stratacache.errors import SerializationError
from stratacache.keys import lock_key
from stratacache.tiers.base import FOREIGN, MISS, Foreign

logger = logging.getLogger("stratacache")

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
"""``should_cache(value)``: false keeps a computed value out of the tiers (it is still returned)."""


# ---------------------------------------------------------------- the algorithm


def get_or_compute(
    chain: Chain,
    lease: Lease,
    full_key: str,
    seen: tuple[Trace, Record | None] | None = None,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """Look up; serve a hit (refreshing it if due), else compute once and store.

    ``seen`` is a lookup the caller already made (its trace and what it found),
    so a decorator can answer a plain hit without starting the algorithm.
    ``should_cache(value)`` returning false keeps a computed value out of the tiers.
    """
    if seen is None:
        trace = chain.begin()
        record = yield Io(chain.read, (full_key, trace))
    else:
        trace, record = seen
    if record is not None:
        if not refresh_due(chain, record):
            return record.value
        return (yield from refresh_stale(chain, lease, full_key, trace, record, should_cache))
    return (yield Flight(full_key, lambda: fill(chain, lease, full_key, trace, should_cache)))


def fill(
    chain: Chain,
    lease: Lease,
    full_key: str,
    trace: Trace,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """A full miss: compute under the lease when one is to be had, else wait or compute."""
    guard = lease.guard(trace)
    if guard is None:
        return (yield from compute_and_store(chain, lease, full_key, trace, None, should_cache))
    token = new_version()
    held: bool | None = None  # unknown until the lease attempt answers
    try:
        outcome = yield Io(lease.acquire, (guard, full_key, trace, token))
        held = outcome is HELD
        if isinstance(outcome, Record):  # a value landed just before us
            return outcome.value
        if outcome is WAIT:
            deadline = chain.monotonic() + lease.wait
            pause = 0.005
            while outcome is WAIT and (left := deadline - chain.monotonic()) > 0:
                yield Sleep(min(pause, left))
                pause = min(pause * 2, 0.1)
                outcome = yield Io(lease.poll, (guard, full_key, trace, token))
                if isinstance(outcome, Record):
                    return outcome.value
            held = outcome is HELD
            # Otherwise the wait is up, or the tier failed: compute without the lease.
        mine = (guard, token) if held else None
        value = yield from compute_and_store(chain, lease, full_key, trace, mine, should_cache)
        held = False  # the value's write replaced the lease, or gave it back
        return value
    finally:
        if held is not False:  # the computation failed, or the lease attempt was cancelled
            yield Io(lease.give_up, (guard, full_key, trace, token))


def compute_and_store(
    chain: Chain,
    lease: Lease,
    full_key: str,
    trace: Trace,
    mine: tuple[Guard, bytes] | None,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """Call the function, then write its value (timed, for early refresh).

    ``mine``: the lease this trace holds in the entry's key, which the write
    replaces (or which is given back when the value stays out of the tiers).
    """
    started = chain.monotonic()
    chain.recorder.origin_call()
    value = yield COMPUTE
    delta = chain.monotonic() - started
    if should_cache is not None and not should_cache(value):
        if mine is not None:
            yield Io(lease.give_up, (mine[0], full_key, trace, mine[1]))
        return value
    left = yield Io(
        functools.partial(chain.write, delta=delta, lease=mine), (full_key, value, trace)
    )
    if left and mine is not None:
        yield Io(lease.give_up, (mine[0], full_key, trace, mine[1]))
    return value


def refresh_due(chain: Chain, record: Record) -> bool:
    """Whether a caller should recompute this entry now (stale, or chosen by XFetch)."""
    return record.stale_at is not None and chain.freshness.refresh_due(
        record.stale_at, record.delta, chain.clock()
    )


def refresh_stale(
    chain: Chain,
    lease: Lease,
    full_key: str,
    trace: Trace,
    record: Record,
    should_cache: ShouldCache | None = None,
) -> Steps:
    """One caller recomputes a stale (or early-refresh) entry; everyone else serves it.

    Across environments the one caller is the holder of the entry's refresh
    lease (the same lease as a fill's, in a key of its own: the entry stays
    served meanwhile).
    """
    stale = record.stale_at is not None and chain.clock() >= record.stale_at
    if not chain.flights.try_lead(full_key):
        return served(chain, record, stale)
    try:
        guard = lease.guard(trace)
        key = lock_key(full_key)
        token = new_version()
        held: object = None
        try:
            if guard is not None:
                held = yield Io(lease.acquire, (guard, key, trace, token))
                if held is not HELD and held is not None:  # another environment refreshes it
                    return served(chain, record, stale)
            yield Io(look, (chain, full_key, trace))  # the slower tiers' stale copies
            try:
                return (
                    yield from compute_and_store(chain, lease, full_key, trace, None, should_cache)
                )
            except Exception as exc:
                if not stale:
                    raise
                return served_on_error(chain, full_key, record, exc)
        finally:
            if held is HELD and guard is not None:
                yield Io(lease.give_up, (guard, key, trace, token))
    finally:
        chain.flights.release(full_key)


def look(chain: Chain, full_key: str, trace: Trace) -> None:
    """Note what each shared tier the trace has not read holds, so a write can replace it.

    A refresh that began from a faster tier's hit has not seen the slower
    tiers' copies; without this its conditional writes would expect nothing
    there and leave the stale copies in place. Nothing is counted.
    """
    now = chain.clock()
    for guard in chain.guards:
        at = (guard.index, full_key)
        if not guard.remote or at in trace.seen:
            continue
        raw = guard.get(full_key, trace)
        if raw is FAILED:
            continue
        if raw is MISS:
            trace.seen[at] = NOTHING_SEEN
        elif type(raw) is not bytes and isinstance(raw, Foreign):
            trace.seen[at] = (FOREIGN if raw.version is None else raw.version, None, 0.0)
        else:
            try:
                chain.note(trace, at, chain.codec.decode(full_key, raw), now)
            except SerializationError:
                version = version_of(raw) if isinstance(raw, bytes) and len(raw) >= 12 else FOREIGN
                trace.seen[at] = (version, None, 0.0)


def served(chain: Chain, record: Record, stale: bool) -> Any:
    """The value of an entry served instead of recomputed (counted when stale)."""
    if stale:
        chain.stale_served += 1
    return record.value


def served_on_error(chain: Chain, full_key: str, record: Record, exc: BaseException) -> Any:
    """Stale-if-error: serve the stale entry, with one log line that names the cause."""
    logger.warning(
        "stratacache served a stale %s: refreshing it failed: %s: %s",
        full_key,
        type(exc).__name__,
        redact(exc),
    )
    return served(chain, record, True)


def refresh(chain: Chain, lease: Lease, full_key: str) -> Steps:
    """Invalidate, then recompute and write where only this trace's tombstones stand.

    Older fills, and older refreshes, can no longer land; a newer invalidation or
    refresh that lands first wins over this one.
    """
    trace = yield Io(reset, (chain, full_key))
    return (yield from compute_and_store(chain, lease, full_key, trace, None))


def reset(chain: Chain, full_key: str) -> Trace:
    """Invalidate ``full_key`` and return a trace that has seen the tombstones it left.

    A refresh is this, then a fill by that trace: its writes may replace its own
    tombstones and nothing else, so a refresh whose value was computed before
    another invalidation finished can never write over it.
    """
    trace = chain.begin()
    forget(chain, [full_key], trace)
    trace.epoch = chain.marks.epoch  # it began after its own mark
    return trace


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


async def offload(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` in a worker thread; if the caller is cancelled meanwhile, it finishes first.

    For tier I/O outside the algorithm (``@cached_many``), with the same guarantee.
    """
    return await _settled(Io(fn, args))  # type: ignore[no-any-return]


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
