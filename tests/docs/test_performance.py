"""The Performance page shows a `make bench` recording that has the bench's current shape."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys

import pytest

from tests.docs.markdown_blocks import ROOT

RECORDING = ROOT / "docs" / "snippets" / "bench.txt"
HEADER = re.compile(r"^# make bench, recorded (?P<date>\d{4}-\d{2}-\d{2}) on: (?P<machine>.{20,})$")
MEASURE = re.compile(r"\b\d+(\.\d+)?\s?(ns|us|µs|ms)\b")


def skeleton(text: str) -> list[str]:
    """The output's lines, numbers and verdicts masked: what the bench prints, not how fast."""
    lines: list[str] = []
    for raw in text.splitlines():
        masked = raw.replace("NOT met", "met")
        masked = re.sub(r"[-+]?\d[\d,]*(\.\d+)?\s*(ns|us|ms|s)\b", "#t", masked)
        masked = re.sub(r"[-+]?\d[\d,]*(\.\d+)?", "#", masked)
        masked = " ".join(masked.split())
        # A table's rows differ only in their numbers: a full run and a quick one may
        # run more or fewer of them (the fleet's sizes, lease on and off in turn), the
        # table keeps its shape.
        if masked and masked not in lines[-4:]:
            lines.append(masked)
    return lines


def recording() -> tuple[re.Match[str], str]:
    first, _, body = RECORDING.read_text(encoding="utf-8").partition("\n")
    header = HEADER.match(first)
    assert header, f"{RECORDING.name} must start with '# make bench, recorded <date> on: <machine>'"
    return header, body


def test_the_recording_says_when_and_where() -> None:
    header, body = recording()
    day = datetime.date.fromisoformat(header["date"])
    assert day <= datetime.datetime.now(datetime.UTC).date()
    assert body.startswith("stratacache benchmarks: Python ")
    assert '--8<-- "bench.txt"' in (ROOT / "docs" / "performance.md").read_text()


# Durations that are settings, not measurements.
SETTINGS = ("20 + 40 + 80 ms of backoff",)


def test_no_measured_number_stands_outside_the_recording() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for setting in SETTINGS:
            text = text.replace(setting, "")
        found = MEASURE.search(text)
        assert found is None, f"{page.name}: {found[0]!r}: quote the bench recording instead"


@pytest.mark.slow
def test_the_recording_has_the_shape_of_the_bench_output_today() -> None:
    _, body = recording()
    out = subprocess.run(
        [sys.executable, "-m", "devkit.bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    assert skeleton(body) == skeleton(out), "the bench changed: run `make bench` and record it"
