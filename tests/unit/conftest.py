"""Unit tests start no server: a test that asks for one fails at collection, one that starts
one through devkit.servers fails when it tries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SERVER_FIXTURES = frozenset({"redis_server", "moto_server", "redis_cluster", "cluster"})
"""The session's servers; every fixture that talks to one depends on one of these."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        asked = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if asked:
            raise pytest.UsageError(
                f"{item.nodeid} uses {sorted(asked)}: a test with servers belongs in "
                "tests/integration"
            )


@pytest.fixture(autouse=True)
def no_server_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a server process from a unit test fails the test."""
    import devkit.servers

    def refuse(args: list[str], *_: Any, **__: Any) -> Any:
        raise AssertionError(f"a unit test started a server ({args[0]}): move it to integration")

    monkeypatch.setattr(devkit.servers, "start_process", refuse)
