"""`make mutate`'s quick mode: the breaker's tests kill at least 90% of its mutants.

mutmut runs in a stage of its own (see tests/mutate.py); a minute on two cores.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.mutate import ROOT

pytestmark = pytest.mark.slow


def test_the_quick_mutation_run_meets_its_target() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.mutate", "--quick", "--survivors"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "breaker.py" in result.stdout
    assert "killed" in result.stdout
