"""`make report`: the demo's EMF lines through the report, as text and PNG."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import ROOT


def test_make_report_renders_the_demo_as_text_and_png(tmp_path: Path) -> None:
    subprocess.run(
        ["make", "--no-print-directory", "report", f"REPORT_DIR={tmp_path}"],
        cwd=ROOT,
        env={**os.environ, "QUOTE_ORIGIN_DELAY": "0.01"},
        capture_output=True,
        check=True,
        timeout=300,
    )
    text = (tmp_path / "report.txt").read_text()
    assert "quotes    L1            4        3       0    57.1%" in text
    assert (
        "quotes           7             1            6    85.7%" in text
    )  # counted, not estimated
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
