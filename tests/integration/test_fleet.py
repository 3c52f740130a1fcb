"""The fleet benchmark's quick mode: with the lease, a fleet calls the origin as often as the
ideal (one call per key per ttl); without it, at least as often. Counts, never timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from devkit import fleet
from devkit.servers import MotoServer, RedisServer

pytestmark = pytest.mark.slow


def test_the_ideal_is_one_call_per_key_per_window() -> None:
    requests = [(0.0, 1), (0.4, 1), (1.0, 1), (1.1, 1), (2.5, 1), (0.2, 2), (5.0, 2)]
    assert fleet.ideal_origin_calls(requests, window=1.0) == 5
    assert fleet.ideal_origin_calls(requests, window=10.0) == 2
    assert fleet.ideal_origin_calls([], window=1.0) == 0


def test_quick_fleet_counts(
    redis_server: RedisServer,
    moto_server: MotoServer,
    table_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client: Any = fleet.dynamodb_client(moto_server.endpoint)
    results = fleet.sweep(
        fleet.QUICK_ENVIRONMENTS, fleet.quick_settings(), redis_server.url, table_name, client
    )
    assert [(r.settings.environments, r.settings.lease) for r in results] == [
        (1, True),
        (1, False),
        (8, True),
        (8, False),
    ]
    for result in results:
        tolerance = max(2, round(0.05 * result.ideal))
        assert result.calls > 0
        assert result.ideal > 0
        if result.settings.lease:
            assert abs(result.origin_calls - result.ideal) <= tolerance, result
        else:
            assert result.origin_calls >= result.ideal - tolerance, result
        assert result.redis_commands > 0
        assert result.dynamodb_requests > 0
        assert result.percentile(50) <= result.percentile(99) <= result.percentile(99.9)
        cost = result.monthly_cost()
        assert min(cost.values()) > 0
    fleet.show(results)
    assert "origin calls / ideal" in capsys.readouterr().out
    png = tmp_path / "fleet.png"
    fleet.chart(results, png)
    assert png.read_bytes().startswith(b"\x89PNG")
