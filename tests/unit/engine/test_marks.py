"""Invalidation marks on their own: which calls may still write a key into memory."""

from __future__ import annotations

from stratacache._engine.marks import MAX_MARKS, Marks


def test_a_mark_refuses_only_calls_that_began_before_it_and_only_for_its_key() -> None:
    marks = Marks()
    before = marks.epoch
    assert marks.writable("k", before)  # an unmarked key is writable from the start
    marks.mark("k")
    assert marks.epoch == before + 1
    assert marks.marks == {"k": before + 1}
    assert not marks.writable("k", before)
    assert marks.writable("k", marks.epoch)  # a call that began at the mark may write
    assert marks.writable("other", before)
    marks.mark("k")
    assert not marks.writable("k", before + 1)
    assert marks.writable("k", before + 2)


def test_then_runs_under_the_marks_lock() -> None:
    marks = Marks()
    held: list[bool] = []
    marks.mark("k", lambda: held.append(marks._lock.locked()))
    marks.mark_all(lambda: held.append(marks._lock.locked()))
    marks.guarded(["k"], marks.epoch, lambda keys: held.append(marks._lock.locked()))
    assert held == [True, True, True]
    marks.mark("k")  # without then: nothing to run, nothing fails
    marks.mark_all()
    assert not marks._lock.locked()


def test_mark_all_refuses_every_older_call_and_forgets_the_keys() -> None:
    marks = Marks()
    marks.mark("k")
    since = marks.epoch
    marks.mark_all()
    assert marks.epoch == since + 1
    assert marks.floor == marks.epoch
    assert marks.marks == {}
    assert not marks.writable("never-marked", since)
    assert marks.writable("never-marked", marks.epoch)


def test_past_max_marks_every_older_call_is_refused_and_the_marks_forgotten() -> None:
    marks = Marks()
    for n in range(MAX_MARKS):
        marks.mark(f"k{n}")
    assert len(marks.marks) == MAX_MARKS
    assert marks.floor == 0
    since = marks.epoch
    marks.mark("one more")
    assert marks.marks == {"one more": since + 1}
    assert marks.floor == since + 1
    assert not marks.writable("never-marked", since)
    assert marks.writable("never-marked", since + 1)


def test_one_mark_less_than_the_limit_keeps_every_mark() -> None:
    marks = Marks()
    for n in range(MAX_MARKS - 1):
        marks.mark(f"k{n}")
    marks.mark("last")
    assert len(marks.marks) == MAX_MARKS
    assert marks.floor == 0


def test_guarded_writes_only_the_keys_still_writable_and_nothing_when_none_is() -> None:
    marks = Marks()
    since = marks.epoch
    marks.mark("b")
    written: list[list[str]] = []
    marks.guarded(["a", "b", "c"], since, written.append)
    assert written == [["a", "c"]]
    marks.guarded(["b"], since, written.append)
    assert written == [["a", "c"]]  # nothing writable: write is not called at all
    marks.guarded(["b"], marks.epoch, written.append)
    assert written == [["a", "c"], ["b"]]
