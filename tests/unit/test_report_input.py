"""The report reads any log: hostile lines are skipped and counted, never a traceback.

Each kind of line the issue lists (type-confused ``_aws``, impossible counts, deep
nesting, invalid UTF-8, a megabyte of garbage) sits between two good lines; the good
lines are still counted and the bad one is reported as skipped. Reading is one pass
per line (the JSON scanner is asked once per line, whatever the line holds) and a
large log is read with bounded memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from stratacache import report
from tests.support import ROOT

GOOD = {
    "_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [{"Namespace": "Shop"}]},
    "tier": "L1",
    "service": "quotes",
    "CacheHit": [2.0],
    "CacheMiss": [1.0],
    "CacheError": [0.0],
}


def line(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


HOSTILE_LINES: dict[str, bytes] = {
    "_aws null": line(_aws=None).encode(),
    "_aws list": line(_aws=[1, 2]).encode(),
    "_aws string": line(_aws="x").encode(),
    "Timestamp string": line(_aws={"Timestamp": "now"}).encode(),
    "Timestamp Infinity": line(_aws={"Timestamp": float("inf")}).encode(),
    "Timestamp negative": line(_aws={"Timestamp": -1}).encode(),
    "count Infinity": line(CacheHit=[float("inf")]).encode(),
    "count NaN": line(CacheMiss=float("nan")).encode(),
    "count 1e400": line(CacheHit=[1.0]).replace("[1.0]", "[1e400]").encode(),
    "count -1": line(CacheHit=[-1]).encode(),
    "count true": line(CacheHit=True).encode(),
    "count string": line(CacheHit="5").encode(),
    "count dict": line(CacheHit={"a": 1}).encode(),
    "count huge int": line(CacheHit=[1]).replace("[1]", "[" + "9" * 5000 + "]").encode(),
    "counts 101 values": line(CacheHit=[1.0] * 101).encode(),
    "tier list": line(tier=["L1"]).encode(),
    "tier empty": line(tier="").encode(),
    "tier control characters": line(tier="L1\x1b[2J").encode(),
    "tier lone surrogate": line(tier="L\ud800").encode(),
    "function 300 characters": line(function_name="f" * 300).encode(),
    "nested 100k deep": b'{"_aws": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "object nested 100k deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "invalid UTF-8 in a value": line(service="cafe").encode().replace(b"cafe", b"caf\xff"),
    "invalid UTF-8 alone": b"\xff\xfe\xfd",
    "truncated": line().encode()[:-20],
    "JSON string": b'"just a string"',
    "JSON number": b"1e400",
    "JSON list of numbers": b"[1, 2, 3]",
    "Infinity": b"Infinity",
    "message not a string": b'{"timestamp": 1, "message": 5}',
    "message of garbage": b'{"message": "{{{{{{{{"}',
    "NUL bytes": b"\x00" * 100,
    "1.2 MB of braces": b'{"a":' * 240_000,
    "1.2 MB unterminated string": b'{"_aws": "' + b"{" * 1_200_000,
}


def read_between_good_lines(bad: bytes) -> report.Log:
    good = line().encode()
    return report.read_lines([good + b"\n", bad + b"\n", good + b"\n"])


@pytest.mark.parametrize("kind", HOSTILE_LINES)
def test_a_hostile_line_is_skipped_and_counted(kind: str) -> None:
    log = read_between_good_lines(HOSTILE_LINES[kind])
    assert (log.lines, log.skipped, log.other) == (2, 1, 0), kind
    assert (log.tiers[("quotes", "L1")].hits, log.tiers[("quotes", "L1")].misses) == (4, 2)
    assert report.skipped_note(log) == "skipped 1 line that is not EMF"


def test_every_hostile_line_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hostile.log"
    path.write_bytes(b"\n".join([line().encode(), *HOSTILE_LINES.values(), line().encode()]))
    code = report.main([str(path), "--monthly-requests", "100"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"skipped {len(HOSTILE_LINES)} lines that are not EMF" in out
    assert "quotes    L1            4        2       0    66.7%" in out


def test_an_emf_line_of_another_metric_is_counted_apart() -> None:
    other = json.dumps({"_aws": GOOD["_aws"], "service": "quotes", "QuoteServed": [6.0]})
    log = read_between_good_lines(other.encode())
    assert (log.lines, log.skipped, log.other) == (2, 0, 1)


def test_blank_lines_are_not_counted() -> None:
    log = read_between_good_lines(b"   \t ")
    assert (log.lines, log.skipped) == (2, 0)


def test_a_line_is_scanned_once_whatever_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The old reader retried from every "{" of a line that failed to parse: for these
    # lines that is one scan per brace, 240,000 scans of up to a megabyte each.
    scans: list[int] = []
    real = report._SCAN

    def counting(text: str, start: int) -> tuple[object, int]:
        scans.append(start)
        return real(text, start)

    monkeypatch.setattr(report, "_SCAN", counting)
    for kind in ("1.2 MB of braces", "1.2 MB unterminated string", "object nested 100k deep"):
        scans.clear()
        log = report.read_lines([HOSTILE_LINES[kind]])
        assert (log.skipped, len(scans)) == (1, 1), kind
    scans.clear()
    message = json.dumps({"timestamp": 1, "message": " 1  " + line()})
    assert report.read_lines([message]).lines == 1
    assert len(scans) == 2  # the event, then the EMF document in its message


def test_a_missing_file_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.log"
    code = report.main([str(missing)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        f"stratacache-report: error: cannot read {missing}: No such file or directory\n"
    )


def test_a_directory_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"stratacache-report: error: cannot read {tmp_path}: Is a directory\n"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e400"])
def test_impossible_prices_are_refused_by_name(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--origin-cost", value])
    assert exit_info.value.code == 2
    assert "argument --origin-cost" in capsys.readouterr().err


def test_a_line_over_the_limit_is_skipped_without_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "long.log"
    path.write_bytes(b"\n".join([line().encode(), b"x" * 5000, line().encode()]) + b"\n")
    log = report.Log()
    with path.open("rb") as stream:
        longest = max(len(chunk) for chunk in report.stream_lines(stream, log))
    assert longest < 1000
    log = report.Log()
    with path.open("rb") as stream:
        report.read_lines(report.stream_lines(stream, log), log)
    assert (log.lines, log.skipped) == (2, 1)


def test_distinct_series_past_the_limit_are_counted_not_kept() -> None:
    lines = [line(service=f"fn{number}") for number in range(report.MAX_SERIES + 5)]
    log = report.read_lines(lines)
    assert len(log.tiers) == report.MAX_SERIES
    assert log.overflow == 5
    assert "5 lines past the first 1,000 function/tier pairs" in report.skipped_note(log)


def test_the_timeline_keeps_a_bounded_number_of_buckets() -> None:
    # A day of one line a second, two tiers: 172,800 points become at most 2,048 buckets.
    log = report.Log()
    for second in range(86_400):
        for tier in ("L1", "L2"):
            report._add(log, {**GOOD, "tier": tier, "_aws": {"Timestamp": second * 1000}})
    assert len(log.timeline.buckets) <= report.TIMELINE_BUCKETS
    series = report.hit_rate_series(log)
    assert list(series) == ["L1", "L2"]
    assert len(series["L1"][0]) == 20
    assert set(series["L1"][1]) == {200 / 3}


def _peak_rss_kib(*argv: str) -> int:
    """Peak resident memory of the report run in a child process, in KiB."""
    probe = (
        "import resource, sys\n"
        "from stratacache import report\n"
        "code = report.main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,  # a hang guard only
        cwd=ROOT,
    )
    return int(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_a_large_log_is_read_in_bounded_memory(tmp_path: Path) -> None:
    # 96 MiB of EMF lines (the 94 MiB log once peaked at 367 MiB), against a log
    # of 10 lines: the report keeps sums, never the lines, so the peak barely moves.
    one = (" 1  " + line() + "\n").encode()
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    small.write_bytes(one * 10)
    with large.open("wb") as out:
        block = one * 1000
        while out.tell() < 96 * 1024 * 1024:
            out.write(block)
    lines = large.stat().st_size // len(one)
    baseline = _peak_rss_kib(str(small), "--monthly-requests", "1")
    peak = _peak_rss_kib(str(large), "--monthly-requests", "1")
    assert peak - baseline < 16 * 1024, (baseline, peak, lines)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


@pytest.mark.parametrize("indent", [None, 2])
def test_a_file_saved_with_a_byte_order_mark_reads_the_same(
    tmp_path: Path, indent: int | None
) -> None:
    answer = {"events": [{"timestamp": 1, "message": line()} for _ in range(3)]}
    path = tmp_path / "events.json"
    path.write_text(json.dumps(answer, indent=indent), encoding="utf-8-sig")
    log = report.Log()
    with path.open("rb") as stream:
        report.read_lines(report.stream_lines(stream, log), log)
    assert (log.lines, log.skipped) == (3, 0)
