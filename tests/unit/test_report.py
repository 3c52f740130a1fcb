"""``python -m stratacache.report``: golden EMF input gives the expected table; the PNG is real."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.container import BarContainer

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
    as_document = report.read(report.documents(json.dumps(answer, indent=2)))
    as_lines = report.read(report.documents("\n".join(lines)))
    assert as_document.tiers == as_lines.tiers
    assert (as_lines.tiers[("quotes", "L1")].hits, as_lines.tiers[("quotes", "L2")].hits) == (3, 1)


def test_standard_input_is_read_when_no_file_is_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(" 1  " + emf("L1", 0, 9, 1) + "\n"))
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
    assert "monthly estimate for 7,300 lookups (extrapolated from 10 in 3,600.000 s of log)" in out
    (origin_only,) = [line.split() for line in out.splitlines() if line.startswith("origin every")]
    assert origin_only[-2:] == ["7,300", "0.73"]  # at the default 0.0001 USD per origin call


def test_a_log_without_a_time_span_needs_the_monthly_volume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "emf.log"
    log.write_text(emf("L1", 0, 1, 1) + "\n")
    code, out, _ = run(capsys, str(log))
    assert code == 0
    assert "no cost estimate: the log spans no time: give the monthly volume" in out


def test_input_without_stratacache_lines_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text('START RequestId: 1\n{"_aws": {"Timestamp": 1}, "QuoteServed": [1.0]}\n')
    code, out, err = run(capsys, str(log))
    assert (code, out) == (2, "")
    assert "no stratacache EMF lines" in err


def test_consistent_reads_cost_twice_as_much() -> None:
    log = report.read(report.documents(emf("L1", 0, 0, 1) + "\n" + emf("L3", 0, 0, 1)))
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
    assert struct.unpack(">II", data[16:24]) == (1100, 420)  # 11 x 4.2 inches at 100 dpi
    assert len(data) > 20_000  # two drawn panels, not an empty canvas
    assert data.endswith(b"IEND\xaeB`\x82")


def test_the_chart_has_hit_rates_per_tier_and_the_cost_comparison() -> None:
    log = report.read(report.documents((DATA / "report_golden.log").read_text()))
    cost = report.estimate(log, report.Prices(), monthly_lookups=1_000_000)
    left, right = report.chart(log, cost).axes
    assert left.get_title() == "Hit rate per tier"
    assert [line.get_label() for line in left.get_lines()] == ["L1", "L2", "L3"]
    assert right.get_title() == "Monthly cost, 1,000,000 lookups"
    bars = {
        c.get_label(): sum(p.get_height() for p in c.patches)
        for c in right.containers
        if isinstance(c, BarContainer)
    }
    assert round(bars["origin every time"], 2) == 100.0
    assert round(sum(v for k, v in bars.items() if k != "origin every time"), 2) == 20.47


def test_the_hit_rate_series_is_per_tier_and_time_bucket() -> None:
    lines = [emf("L1", 0, 0, 2), emf("L2", 0, 1, 1), emf("L1", 10_000, 3, 1)]
    series = report.hit_rate_series(report.read(report.documents("\n".join(lines))), buckets=2)
    assert series == {"L1": ([2.5, 7.5], [0.0, 75.0]), "L2": ([2.5], [50.0])}


def test_the_entry_size_scales_request_units() -> None:
    log = report.read(report.documents(emf("L1", 0, 0, 1) + "\n" + emf("L2", 0, 0, 1)))
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
