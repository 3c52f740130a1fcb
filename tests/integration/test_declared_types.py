"""A dataclass and a Pydantic model returned by a cached function come back as themselves.

Two fresh interpreters play two Lambda execution environments: the first computes
and fills L2 and L3, the second finds the value in L2, and after a Redis flush a
third finds it in L3. Each prints its value's type and ``repr``; the test process
rebuilds nothing itself and compares what the environments saw.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.support import ROOT

SHARED_MODULE = """
import dataclasses, datetime, decimal, json, sys
import pydantic
import pydantic.v1
from stratacache import JsonSerializer, cached_tiered


@dataclasses.dataclass(frozen=True)
class Quote:
    symbol: str
    price: decimal.Decimal
    at: datetime.datetime
    tags: tuple[str, ...] = ()


class Order(pydantic.BaseModel):
    id: int
    quote: Quote
    lines: list[str]


class LegacyOrder(pydantic.v1.BaseModel):
    id: int
    placed: datetime.date


serializer = JsonSerializer(types=[Quote, Order, LegacyOrder])
calls = []


@cached_tiered(ttl=300, serializer=serializer)
def lookup(kind):
    calls.append(kind)
    at = datetime.datetime(2026, 12, 2, 14, 0, tzinfo=datetime.timezone.utc)
    quote = Quote("AMZN", decimal.Decimal("178.25"), at, ("nasdaq",))
    if kind == "quote":
        return quote
    if kind == "order":
        return Order(id=7, quote=quote, lines=["a", "b"])
    return LegacyOrder(id=8, placed=datetime.date(2026, 12, 1))


def main():  # imported by name, as Lambda imports a handler module
    seen = {}
    for kind in ("quote", "order", "legacy"):
        value = lookup(kind)
        seen[kind] = [type(value).__module__ + "." + type(value).__qualname__, repr(value)]
    stats = {name: s["hits"] for name, s in lookup.cache.stats().items()}
    print(json.dumps({"seen": seen, "hits": stats, "calls": calls}))
"""


@pytest.fixture
def environment(tmp_path: Path) -> Path:
    (tmp_path / "shared_types.py").write_text(textwrap.dedent(SHARED_MODULE))
    return tmp_path


def run_shared_types(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    return support.run_environment(folder, env, "-c", "import shared_types; shared_types.main()")


def test_dataclasses_and_pydantic_models_come_back_from_l2_and_l3(
    remote_env: dict[str, str], environment: Path, redis_client: Any
) -> None:
    first = run_shared_types(environment, remote_env)
    assert first["calls"] == ["quote", "order", "legacy"]
    assert first["hits"] == {"L1": 0, "L2": 0, "L3": 0}
    assert first["seen"]["quote"] == [
        "shared_types.Quote",
        "Quote(symbol='AMZN', price=Decimal('178.25'), "
        "at=datetime.datetime(2026, 12, 2, 14, 0, tzinfo=datetime.timezone.utc), "
        "tags=('nasdaq',))",
    ]
    assert first["seen"]["order"][0] == "shared_types.Order"
    assert first["seen"]["legacy"] == [
        "shared_types.LegacyOrder",
        "LegacyOrder(id=8, placed=datetime.date(2026, 12, 1))",
    ]

    from_l2 = run_shared_types(environment, remote_env)
    assert from_l2["calls"] == []
    assert from_l2["hits"] == {"L1": 0, "L2": 3, "L3": 0}
    assert from_l2["seen"] == first["seen"]

    redis_client.flushall()
    from_l3 = run_shared_types(environment, remote_env)
    assert from_l3["calls"] == []
    assert from_l3["hits"] == {"L1": 0, "L2": 0, "L3": 3}
    assert from_l3["seen"] == first["seen"]


def test_an_environment_that_does_not_declare_the_type_misses_instead_of_importing(
    remote_env: dict[str, str], environment: Path
) -> None:
    run_shared_types(environment, remote_env)
    module = environment / "shared_types.py"
    module.write_text(
        module.read_text().replace(
            "JsonSerializer(types=[Quote, Order, LegacyOrder])", "JsonSerializer(types=[Quote])"
        )
    )
    undeclared = run_shared_types(environment, remote_env)
    assert undeclared["calls"] == ["order", "legacy"]  # a miss: computed again, not imported
    assert undeclared["hits"]["L2"] == 1
    assert undeclared["seen"]["order"][0] == "shared_types.Order"


def docs_block(after: str) -> str:
    """The first Python block of the decorators page after the line holding ``after``, dedented."""
    text = (ROOT / "docs" / "features" / "decorators.md").read_text()
    start = text.index("```python\n", text.index(after)) + len("```python\n")
    return textwrap.dedent(text[start : text.index("```", start)])


def test_the_docs_example_round_trips_through_l2_and_l3(
    remote_env: dict[str, str], redis_client: Any
) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_quote"}
    source = docs_block("come back from L2 and L3")
    exec(compile(source, "decorators.md", "exec", dont_inherit=True), namespace)
    fetch_quote = namespace["fetch_quote"]
    first = fetch_quote("AMZN")
    fetch_quote.cache.tiers[0].clear()  # as a new execution environment: L1 empty
    from_l2 = fetch_quote("AMZN")
    redis_client.flushall()
    fetch_quote.cache.tiers[0].clear()
    from_l3 = fetch_quote("AMZN")
    assert type(from_l2) is type(from_l3) is namespace["Quote"]
    assert from_l2 == from_l3 == first
    hits = {name: stats["hits"] for name, stats in fetch_quote.cache.stats().items()}
    assert hits == {"L1": 0, "L2": 1, "L3": 1}
