"""An old redis-py ahead of the layer's (a function package in /var/task) is named in one
log line per environment, with its version, its path and the version needed, and the
function still answers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from stratacache.errors import StratacacheError
from stratacache.tiers import redis as redis_tier

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    from stratacache import cached_tiered
    from stratacache.tiers import MemoryTier, RedisTier

    def environment(namespace):
        tier = RedisTier("redis://127.0.0.1:1/0")

        @cached_tiered(tiers=[MemoryTier(), tier], ttl=60, namespace=namespace)
        def double(x):
            return 2 * x

        return double

    first, second = environment("a"), environment("b")
    print([first(i) for i in range(10)] + [second(i) for i in range(10)])
    """
)


def test_an_old_redis_py_is_named_once(tmp_path: Path) -> None:
    fake = tmp_path / "redis"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "4.6.0"\n\nclass Redis:\n    pass\n')
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([2 * i for i in range(10)] * 2)
    line = (
        f"ERROR stratacache needs redis-py 5.0.1 or newer, found redis-py 4.6.0 at "
        f"{fake / '__init__.py'}"
    )
    assert done.stderr.count(line) == 1, done.stderr
    assert "AttributeError" not in done.stderr


@pytest.mark.parametrize(
    ("version", "supported"),
    [("4.6.0", False), ("5.0.0", False), ("5.0.1", True), ("5.1.0b1", True), ("10.0", True)],
)
def test_which_versions_are_supported(version: str, supported: bool) -> None:
    module = SimpleNamespace(__version__=version, __file__=f"/var/task/redis-{version}.py")
    if supported:
        redis_tier._require_supported(module)
    else:
        with pytest.raises(StratacacheError, match=f"redis-py {version} is older than the 5.0.1"):
            redis_tier._require_supported(module)
