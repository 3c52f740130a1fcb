"""``python -m stratacache.report``: golden EMF input gives the expected table; the PNG is real."""

from __future__ import annotations

import doctest
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.dates import ConciseDateFormatter

from stratacache import report
from tests.support import ROOT

DATA = Path(__file__).resolve().parent / "data"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = report.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def emf(tier: str, stamp_ms: int, hits: int, misses: int, **extra: object) -> str:
    """One EMF line as Powertools prints it for stratacache."""
    doc = {
        "_aws": {"Timestamp": stamp_ms, "CloudWatchMetrics": [{"Namespace": "Shop"}]},
        "tier": tier,
        "service": "quotes",
        "CacheHit": [float(hits)],
        "CacheMiss": [float(misses)],
        "CacheError": [0.0],
        **extra,
    }
    return json.dumps(doc)


def test_golden_input_gives_the_expected_report(capsys: pytest.CaptureFixture[str]) -> None:
    # report_golden.log mixes the shapes the lines come in (demo-numbered, CloudWatch JSON
    # events, tab-separated exports) with lines that are not ours; report_golden.txt was
    # worked out by hand from the counts in it.
    code, out, _ = run(capsys, str(DATA / "report_golden.log"), "--monthly-requests", "1000000")
    assert code == 0
    assert out == (DATA / "report_golden.txt").read_text()


def test_an_aws_logs_answer_reads_like_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [emf("L1", 1_700_000_000_000, 3, 1), emf("L2", 1_700_000_000_000, 1, 0)]
    answer = {"events": [{"timestamp": 1, "message": line} for line in lines]}
    indented = report.read_text(json.dumps(answer, indent=2))
    compact = report.read_text(json.dumps(answer))
    as_lines = report.read_text("\n".join(lines))
    assert indented.tiers == compact.tiers == as_lines.tiers
    assert indented.skipped == compact.skipped == 0  # the document's own lines are not events
    assert (as_lines.tiers[("quotes", "L1")].hits, as_lines.tiers[("quotes", "L2")].hits) == (3, 1)


def test_standard_input_is_read_when_no_file_is_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO((" 1  " + emf("L1", 0, 9, 1) + "\n").encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = run(capsys, "--monthly-requests", "10")
    assert code == 0
    assert "quotes    L1            9        1       0    90.0%" in out


def test_the_monthly_volume_is_extrapolated_from_the_time_span(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "emf.log"
    log.write_text(emf("L1", 0, 4, 1) + "\n" + emf("L1", 3_600_000, 4, 1) + "\n")
    code, out, _ = run(capsys, str(log))
    assert code == 0
    # 10 lookups in an hour; AWS prices a month as 730 hours.
    assert "monthly estimate for 7,300 lookups (extrapolated from 10 in 1.0 h of log)" in out
    (origin_only,) = [line.split() for line in out.splitlines() if line.startswith("origin every")]
    assert origin_only[-2:] == ["7,300", "0.73"]  # at the default 0.0001 USD per origin call


@pytest.mark.parametrize("span_ms", [0, 8, 59_999])
def test_a_month_is_not_extrapolated_from_under_a_minute_of_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, span_ms: int
) -> None:
    # The case: 8 ms of demo log once became 2.3 billion lookups a month.
    log = tmp_path / "emf.log"
    log.write_text(emf("L1", 0, 1, 1) + "\n" + emf("L1", span_ms, 1, 1) + "\n")
    code, out, _ = run(capsys, str(log))
    assert code == 0
    assert "monthly estimate" not in out
    assert "under a minute, too short to extrapolate a month from" in out
    assert "give the monthly volume with --monthly-requests" in out
    code, out, _ = run(capsys, str(log), "--monthly-requests", "1000")
    assert "monthly estimate for 1,000 lookups (given)" in out


def test_a_minute_of_log_is_extrapolated(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "emf.log"
    log.write_text(emf("L1", 0, 1, 0) + "\n" + emf("L1", 60_000, 1, 0) + "\n")
    code, out, _ = run(capsys, str(log))
    assert code == 0
    assert "monthly estimate for 87,600 lookups (extrapolated from 2 in 1.0 min of log)" in out


def test_the_origin_price_says_where_it_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    golden = str(DATA / "report_golden.log")
    _, out, _ = run(capsys, golden, "--monthly-requests", "10")
    assert "origin calls priced at 0.0001 USD a call, the default placeholder" in out
    _, out, _ = run(capsys, golden, "--monthly-requests", "10", "--origin-cost", "0.002")
    assert "origin calls priced at 0.002 USD a call, given with --origin-cost" in out


def test_input_without_stratacache_lines_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text('START RequestId: 1\n{"_aws": {"Timestamp": 1}, "QuoteServed": [1.0]}\n')
    code, out, err = run(capsys, str(log))
    assert (code, out) == (2, "")
    assert err == (
        "stratacache-report: error: no stratacache EMF lines (dimension tier) in the input "
        "(skipped 1 line that is not EMF; 1 EMF line of other metrics)\n"
    )


def test_consistent_reads_cost_twice_as_much() -> None:
    log = report.read_text(emf("L1", 0, 0, 1) + "\n" + emf("L3", 0, 0, 1))
    eventual = report.estimate(log, report.Prices(), monthly_lookups=1_000_000)
    consistent = report.estimate(log, report.Prices(consistent_read=True), 1_000_000)
    reads = {row[0]: row[1] for row in eventual.rows}["L3 DynamoDB reads"]
    assert reads == 500_000
    assert {row[0]: row[1] for row in consistent.rows}["L3 DynamoDB reads"] == 2 * reads


def test_the_png_is_a_real_png_of_the_expected_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chart = tmp_path / "charts" / "report.png"
    code, out, _ = run(
        capsys,
        str(DATA / "report_golden.log"),
        "--monthly-requests",
        "1000000",
        "--png",
        str(chart),
    )
    assert code == 0
    assert out.endswith(f"chart: {chart}\n")
    data = chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1600, 560)  # 16 x 5.6 inches at 100 dpi
    assert len(data) > 40_000  # three drawn panels, not an empty canvas
    assert data.endswith(b"IEND\xaeB`\x82")


def texts(axes: Axes) -> list[str]:
    return [text.get_text() for text in axes.texts]


def test_the_chart_says_what_it_shows() -> None:
    log = report.read_text((DATA / "report_golden.log").read_text())
    cost = report.estimate(log, report.Prices(), monthly_lookups=1_000_000)
    figure = report.chart(log, cost, source="app.log")
    title = figure.get_suptitle()
    assert title.startswith("stratacache report: app.log, 2023-11-14 22:13:20 to 23:13:20 UTC")
    assert "skipped 3 lines that are not EMF" in title
    assert figure.get_supxlabel() == (
        "origin calls priced at 0.0001 USD a call, "
        "the default placeholder: set yours with --origin-cost"
    )
    tiers, timeline, costs = figure.axes
    # Hit rate per tier, with its value and counts on each bar.
    assert tiers.get_title() == "Hit rate per tier"
    assert [label.get_text() for label in tiers.get_xticklabels()] == [
        "checkout\nL1",
        "checkout\nL3",
        "quotes-prod\nL1",
        "quotes-prod\nL2",
    ]
    assert texts(tiers) == ["50.0%\n2 of 4", "50.0%\n1 of 2", "80.0%\n8 of 10", "50.0%\n1 of 2"]
    # Over time, on a datetime axis.
    assert timeline.get_title() == "Hit rate over time"
    assert isinstance(timeline.xaxis.get_major_formatter(), ConciseDateFormatter)
    assert timeline.get_xlabel() == "time (UTC)"
    assert [line.get_label() for line in timeline.get_lines()] == ["L1", "L2", "L3"]
    # Cost on a log scale, so a $0.00049 item shows beside $100, each bar labelled.
    assert costs.get_title() == "Monthly cost, 1,000,000 lookups (given)"
    assert costs.get_xscale() == "log"
    assert texts(costs) == [
        "$0.00049",
        "$6.13",
        "$0.0089",
        "$0.04",
        "$14.29",
        "$20.47",
        "$100.00",
    ]
    (bars,) = [c for c in costs.containers if isinstance(c, BarContainer)]
    widths = [patch.get_width() for patch in bars.patches]
    left = costs.get_xlim()[0]
    assert all(width > left * 1.5 for width in widths)  # every bar is visible


def test_a_short_log_has_no_time_panel_and_says_why_there_is_no_cost() -> None:
    log = report.read_text("\n".join([emf("L1", 0, 3, 1), emf("L2", 11, 0, 1)]))
    figure = report.chart(log, None, source="demo.txt", note="the log spans 11 ms")
    assert "demo.txt, 1970-01-01 00:00:00 to 00:00:00 UTC (11 ms)" in figure.get_suptitle()
    tiers, costs = figure.axes
    assert tiers.get_xlabel() == "no hit rate over time: the log spans 11 ms, under a minute"
    assert texts(tiers) == ["75.0%\n3 of 4", "0.0%\n0 of 1"]
    assert texts(costs) == ["no cost estimate:\nthe log spans 11 ms"]


def test_without_matplotlib_the_chart_names_the_extra(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if the report extra were not installed\n"
        "from stratacache import report\n"
        "sys.exit(report.main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(DATA / "report_golden.log"), "--png", "x.png"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stratacache-report: error: --png needs matplotlib: pip install 'stratacache[report]'\n"
    )
    assert not (tmp_path / "x.png").exists()


def test_the_report_doctests_pass() -> None:
    assert doctest.testmod(report).failed == 0


def test_the_hit_rate_series_is_per_tier_and_time_bucket() -> None:
    lines = [emf("L1", 0, 0, 2), emf("L2", 0, 1, 1), emf("L1", 10_000, 3, 1)]
    series = report.hit_rate_series(report.read_text("\n".join(lines)), buckets=2)
    assert series == {"L1": ([2.5, 7.5], [0.0, 75.0]), "L2": ([2.5], [50.0])}


def test_the_entry_size_scales_request_units() -> None:
    log = report.read_text(emf("L1", 0, 0, 1) + "\n" + emf("L2", 0, 0, 1))
    small = report.estimate(log, report.Prices(), monthly_lookups=100)
    large = report.estimate(log, report.Prices(value_kb=3), monthly_lookups=100)
    assert [row[1] for row in small.rows][:1] == [200]  # one read and one write a lookup
    assert [row[1] for row in large.rows][:1] == [600]


def test_the_default_prices_are_the_documented_ones() -> None:
    assert report.Prices() == report.Prices(
        ecpu_per_million=0.0023,
        storage_gb_hour=0.084,
        storage_gb=0.1,
        read_per_million=0.125,
        write_per_million=0.625,
        origin_call=0.0001,
        value_kb=1.0,
        consistent_read=False,
    )
    assert "0.0023 USD per million ECPUs" in (ROOT / "docs/features/report.md").read_text()


def test_matplotlib_is_an_extra_the_layer_never_ships() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'report = ["matplotlib' in pyproject
    for pins in (ROOT / "layer").glob("requirements*"):
        assert "matplotlib" not in pins.read_text().lower(), pins
    probe = "import stratacache.report, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"  # only drawing a chart imports it
