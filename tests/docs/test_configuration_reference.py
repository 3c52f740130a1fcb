"""The configuration reference lists exactly the variables the code reads, with true defaults."""

from __future__ import annotations

import re

from stratacache import config
from stratacache.tiers import dynamodb, redis
from tests.docs.markdown_blocks import ROOT

REFERENCE = ROOT / "docs" / "configuration.md"
ROW = re.compile(r"^\|\s*`(?P<name>[A-Z][A-Z0-9_]+)`\s*\|(?P<cells>.*)\|\s*$")
# A variable's name as it stands in source: not the tail of an identifier (ENV_...).
NAME = re.compile(r"(?<![A-Za-z0-9_])(?P<name>(?:STRATACACHE|POWERTOOLS)_[A-Z0-9_]*[A-Z0-9])")


def documented() -> dict[str, list[str]]:
    """Each variable of the reference's tables: its type, default and meaning cells."""
    rows: dict[str, list[str]] = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = [cell.strip() for cell in match["cells"].split("|")]
    return rows


def read_by_code(prefix: str) -> set[str]:
    """Every variable of that prefix named in the library: config's constants and any literal."""
    names = {
        value
        for attr, value in vars(config).items()
        if attr.startswith("ENV_") and isinstance(value, str) and value.startswith(prefix)
    }
    for source in (ROOT / "python" / "stratacache").rglob("*.py"):
        found = (m["name"] for m in NAME.finditer(source.read_text("utf-8")))
        names |= {name for name in found if name.startswith(prefix)}
    return names


def test_every_stratacache_variable_the_code_reads_is_documented_and_no_other() -> None:
    code = read_by_code("STRATACACHE_")
    docs = {name for name in documented() if name.startswith("STRATACACHE_")}
    assert len(code) >= 20  # the scan found config.py's names
    assert code - docs == set(), "read by the code, missing from docs/configuration.md"
    assert docs - code == set(), "in docs/configuration.md, never read by the code"


def test_every_powertools_variable_the_code_reads_is_documented() -> None:
    code = read_by_code("POWERTOOLS_")
    docs = {name for name in documented() if name.startswith("POWERTOOLS_")}
    assert code, "the scan found no POWERTOOLS_ variable"
    assert code - docs == set(), "read by the code, missing from docs/configuration.md"


def test_every_row_gives_a_type_a_default_and_a_meaning() -> None:
    for name, cells in documented().items():
        assert len(cells) == 3, f"{name}: type | default | meaning"
        assert all(cells), f"{name}: an empty cell"


def test_documented_defaults_are_the_code_defaults() -> None:
    expected = {
        config.ENV_TTL: config.DEFAULT_TTL,
        config.ENV_L1_MAXSIZE: config.DEFAULT_L1_MAXSIZE,
        config.ENV_METRICS_INTERVAL: config.DEFAULT_METRICS_INTERVAL,
        config.ENV_GENERATION_CHECK: config.DEFAULT_GENERATION_CHECK,
        config.ENV_BREAKER_THRESHOLD: config.DEFAULT_BREAKER_THRESHOLD,
        config.ENV_BREAKER_COOLDOWN: config.DEFAULT_BREAKER_COOLDOWN,
        config.ENV_REDIS_TIMEOUT: redis.DEFAULT_SOCKET_TIMEOUT,
        config.ENV_DYNAMODB_TIMEOUT: dynamodb.DEFAULT_TIMEOUT,
    }
    assert redis.DEFAULT_CONNECT_TIMEOUT == redis.DEFAULT_SOCKET_TIMEOUT  # one variable, both
    rows = documented()
    for name, value in expected.items():
        assert float(rows[name][1].strip("`")) == value, name
    assert rows[config.ENV_NAMESPACE][1] == f"`{config.DEFAULT_NAMESPACE}`"
    assert rows[config.ENV_POWERTOOLS_NAMESPACE][1] == f"`{config.DEFAULT_METRICS_NAMESPACE}`"
    assert rows[config.ENV_TABLE_KEY_ATTRIBUTE][1] == "`pk`"
