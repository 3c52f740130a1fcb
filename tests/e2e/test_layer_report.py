"""The report is a laptop tool: the layer leaves stratacache/report.py (and matplotlib) out."""

from __future__ import annotations

from devkit.lambda_local import RUNTIMES

from tests.support import Build


def test_the_layer_ships_no_report_module(sam_built: Build) -> None:
    layers = [sam_built.layer(v) for v in RUNTIMES if sam_built.layer(v).is_dir()]
    assert layers
    for layer in layers:
        assert (layer / "stratacache" / "tiered.py").is_file(), layer
        assert not list((layer / "stratacache").rglob("report.py")), layer
        assert not list((layer / "stratacache").rglob("report.*.pyc")), layer
        assert not (layer / "matplotlib").exists(), layer
