"""SnapStart hooks without servers: registration, fresh randomness, L1 dropped, never raising.

The runtime's ``snapshot_restore_py`` is either the real one (installed with
awslambdaric, in a fresh interpreter) or the ``snapstart`` fixture's stand-in,
whose recorded hooks the tests call as the runtime would.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest

from stratacache import MemoryTier, TieredCache, cached, lifecycle
from stratacache.envelope import new_version
from stratacache.freshness import Freshness
from tests.support import FakeClock, FakeSnapshotRuntime, emf_lines, run_python, value


def last_json(code: str) -> Any:
    """What ``python -c code`` printed last, as JSON."""
    return json.loads(run_python(code).stdout.splitlines()[-1])


def test_the_hooks_are_registered_once_when_the_first_cache_is_built(
    snapstart: FakeSnapshotRuntime,
) -> None:
    assert (snapstart.before, snapstart.after) == ([], [])
    TieredCache([MemoryTier()])
    TieredCache([MemoryTier()])
    assert snapstart.before == [lifecycle.before_snapshot]
    assert snapstart.after == [lifecycle.after_restore]


def test_the_real_runtime_module_gets_the_hooks_at_the_first_cache_and_nothing_else_loads() -> None:
    code = """
import json, sys
from stratacache import cached  # the public names load on first use (PEP 562)
loaded = set(sys.modules)
@cached
def f(x): return x
@cached
def g(x): return x
imported = sorted(set(sys.modules) - loaded)
import snapshot_restore_py as runtime
registered = [[f.__qualname__ for f, _, _ in runtime.get_before_snapshot()],
              [f.__qualname__ for f, _, _ in runtime.get_after_restore()]]
print(json.dumps([registered, imported]))
"""
    registered, imported = last_json(code)
    assert registered == [["before_snapshot"], ["after_restore"]]
    assert imported == ["snapshot_restore_py"]


def test_importing_stratacache_registers_nothing() -> None:
    code = """
import json
import snapshot_restore_py as runtime
import stratacache
print(json.dumps([runtime.get_before_snapshot(), runtime.get_after_restore()]))
"""
    assert last_json(code) == [[], []]


def test_without_the_runtime_module_caches_work_and_nothing_is_registered() -> None:
    code = """
import json, sys
sys.modules["snapshot_restore_py"] = None  # what an interpreter without it sees
from stratacache import cached, lifecycle
@cached
def f(x): return x * 2
print(json.dumps([f(2), lifecycle.install()]))
"""
    assert last_json(code) == [4, False]


def test_restored_copies_draw_jitter_of_their_own(snapstart: FakeSnapshotRuntime) -> None:
    @cached(ttl=100, jitter=0.5)
    def quote(symbol: str) -> str:
        return symbol

    policy = quote.cache._engine.chain.freshness
    random.seed(2024)  # whatever state the snapshot carries into every copy
    snapshot = random.getstate()
    predicted = random.Random()
    predicted.setstate(snapshot)
    # What a copy would draw if nothing reseeded it: the same in every copy.
    same = Freshness(jitter=0.5, rng=predicted.random)
    without_reseed = [same.lifetimes(100.0)[0] for _ in range(4)]

    copies = []
    for _ in range(2):
        random.setstate(snapshot)  # a copy resumes with the snapshot's state ...
        snapstart.restore()  # ... and the runtime runs the after-restore hooks
        copies.append([policy.lifetimes(100.0)[0] for _ in range(4)])

    assert copies[0] != without_reseed
    assert copies[1] != without_reseed
    assert copies[0] != copies[1]
    assert all(soft is not None and 50.0 <= soft <= 100.0 for soft in copies[0] + copies[1])


def test_after_restore_l1_is_empty_even_for_entries_the_wall_clock_keeps_alive(
    snapstart: FakeSnapshotRuntime,
) -> None:
    wall = FakeClock()
    calls: list[str] = []

    @cached(ttl=300, tier=MemoryTier(timer=wall))
    def quote(symbol: str) -> str:
        calls.append(symbol)
        return symbol.lower()

    quote("AMZN")
    l1 = quote.cache._engine.chain.l1
    assert l1 is not None
    assert len(l1) == 1
    snapstart.snapshot()
    wall.advance(30)  # restored 30 s later: well within the entry's 300 s
    snapstart.restore()

    assert len(l1) == 0
    assert quote("AMZN") == "amzn"
    assert calls == ["AMZN", "AMZN"]


class CloseFails(MemoryTier):
    def close(self) -> None:
        raise OSError("socket already gone")

    def clear(self, prefix: str = "") -> int:
        raise RuntimeError("cannot clear")


def test_the_hooks_never_raise_they_log(
    snapstart: FakeSnapshotRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    TieredCache([CloseFails(name="odd")])
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        snapstart.snapshot()
        snapstart.restore()
    assert "tier odd could not close before the snapshot: OSError" in caplog.text
    assert "tier odd could not clear after restore: RuntimeError" in caplog.text


def test_warm_with_no_remote_tier_configured_opens_nothing_and_registers_the_hooks(
    snapstart: FakeSnapshotRuntime,
) -> None:
    assert lifecycle.warm() == {}
    assert snapstart.before == [lifecycle.before_snapshot]


def test_record_versions_and_lease_tokens_do_not_depend_on_the_random_module() -> None:
    # A snapshot's copies share random's state; new_version() makes both a record's
    # version and a lease's token, from os.urandom.
    state = random.getstate()
    drawn = []
    for _ in range(2):
        random.setstate(state)
        drawn.append(new_version())
    assert drawn[0] != drawn[1]


def test_warm_holds_the_tiers_it_was_given_weakly(snapstart: FakeSnapshotRuntime) -> None:
    import gc
    import weakref

    tier = MemoryTier()
    lifecycle.warm([tier])
    assert list(lifecycle._state.warmed_tiers) == [tier]
    gone = weakref.ref(tier)
    del tier
    gc.collect()
    assert gone() is None
    assert list(lifecycle._state.warmed_tiers) == []


def test_after_restore_a_copy_counts_from_zero_cold_and_on_a_new_interval(
    snapstart: FakeSnapshotRuntime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stratacache import metrics

    now = [0.0]
    monkeypatch.setattr(metrics, "recorder", metrics.MetricsRecorder(60, clock=lambda: now[0]))
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    cache = TieredCache([MemoryTier()])
    cache.get("init")
    snapstart.snapshot()
    (init,) = emf_lines(capsys.readouterr().out)  # published into the init's log
    assert (value(init, "CacheMiss"), init["contextReused"]) == (1, False)
    cache.get("in the snapshot")  # counted by the frozen init: no copy's own
    now[0] = 1000.0  # restored long after the init's interval ran out
    snapstart.restore()
    cache.get("first request")
    assert emf_lines(capsys.readouterr().out) == []  # the interval started over at restore
    now[0] = 1060.0
    cache.get("a minute later")
    (copy,) = emf_lines(capsys.readouterr().out)
    assert (value(copy, "CacheMiss"), copy["contextReused"]) == (2, False)


def test_warm_given_a_tier_it_cannot_hold_weakly_logs_and_does_not_raise(
    snapstart: FakeSnapshotRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    class Unhashable(MemoryTier):  # as a tier of one's own with __eq__ and no __hash__
        __hash__ = None  # type: ignore[assignment]

    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert lifecycle.warm([Unhashable()]) == {}
    assert "cannot reopen tier L1 after a restore" in caplog.text
