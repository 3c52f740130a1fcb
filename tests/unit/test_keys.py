"""Keys: one call gives one key in every process; other calls and functions never collide."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratacache import KeyBuildError
from stratacache.keys import MAX_KEY_LENGTH, KeyMaker, canonical, fit_key, function_id


def lookup(region: str, ids: list[int], opts: dict[str, object] | None = None) -> None:
    """A function to build keys for."""


def key_of(*args: object, **kwargs: object) -> str:
    return KeyMaker(lookup)(args, kwargs)


def test_binding_makes_equivalent_calls_share_a_key() -> None:
    assert key_of("eu", [1]) == key_of(region="eu", ids=[1]) == key_of("eu", [1], None)


def test_different_arguments_give_different_keys() -> None:
    assert len({key_of("eu", [1]), key_of("eu", [2]), key_of("us", [1]), key_of("eu", [1, 1])}) == 4


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 1.0), (1, True), (0, False), (1, "1"), ([1], (1,)), ({1}, frozenset({1})), (b"a", "a")],
)
def test_values_that_python_calls_equal_but_differ_in_type_get_different_keys(
    a: object, b: object
) -> None:
    assert canonical(a) != canonical(b)


@given(st.dictionaries(st.text(), st.integers()))
def test_dict_and_set_order_never_changes_the_key(value: dict[str, int]) -> None:
    flipped = dict(reversed(list(value.items())))
    assert canonical(value) == canonical(flipped)
    assert canonical(set(value)) == canonical(set(flipped))


def test_strings_cannot_be_spliced_into_another_key() -> None:
    assert canonical(["a", "b"]) != canonical(["a,b"]) != canonical(["ab"])
    assert key_of("e", [1]) != key_of("e[1", [])


def test_dataclasses_enums_and_common_types_are_keyed() -> None:
    class Colour(enum.Enum):
        RED = 1

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    for value in [Point(1, 2), Colour.RED, Decimal("1.5"), dt.date(2026, 1, 1), dt.timedelta(1)]:
        assert canonical(value) == canonical(value)
    assert canonical(Point(1, 2)) != canonical(Point(2, 1))


def test_an_unkeyable_argument_is_named_with_the_way_out() -> None:
    with pytest.raises(KeyBuildError) as caught:
        key_of("eu", [1], {"client": object()})
    message = str(caught.value)
    assert "'opts'" in message
    assert "key=" in message
    assert "ignore=" in message
    assert f"{__name__}.lookup" in message


def test_a_call_that_does_not_fit_the_signature_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"lookup\(\).*unexpected keyword"):
        key_of("eu", [1], colour="red")


def test_a_short_printable_custom_key_is_used_as_it_is() -> None:
    maker = KeyMaker(lookup, key=lambda region, ids, opts=None: f"{region}/{len(ids)}")
    assert maker(("eu", [1, 2]), {}) == "eu/2"


def test_a_custom_key_that_is_not_a_short_string_is_digested() -> None:
    maker = KeyMaker(lookup, key=lambda region, ids, opts=None: (region, tuple(ids)))
    made = maker(("eu", [1, 2]), {})
    assert len(made) == 32
    assert made == maker(("eu", [1, 2]), {})


def test_a_custom_key_returning_something_unkeyable_is_named() -> None:
    maker = KeyMaker(lookup, key=lambda *a, **k: object())
    with pytest.raises(KeyBuildError, match="key= of"):
        maker(("eu", []), {})


def test_function_identity_is_module_and_qualified_name() -> None:
    assert function_id(lookup) == f"{__name__}.lookup"


def test_fit_key_keeps_short_keys_and_shortens_long_ones_distinctly() -> None:
    assert fit_key("ns:abc") == "ns:abc"
    long_a, long_b = "ns:" + "a" * 2000, "ns:" + "a" * 1999 + "b"
    assert len(fit_key(long_a).encode()) <= MAX_KEY_LENGTH
    assert fit_key(long_a).startswith("ns:")
    assert fit_key(long_a) != fit_key(long_b)


def test_keys_are_the_same_in_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    """``hash()`` changes per process; keys must not."""
    module = tmp_path / "keyed.py"
    module.write_text(
        textwrap.dedent(
            """
            import json
            from stratacache import cached

            @cached
            def report(tags, since, limits):
                return None

            ARGS = ({"b", "a", "c"}, {"day": 1, "month": 2}, [("x", 1.5), ("y", None)])
            print(json.dumps(report.cache.full_key(report.cache_key(*ARGS))))
            """
        )
    )
    keys = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", "import keyed"],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": f"{tmp_path}:{Path('python').resolve()}"},
            capture_output=True,
            text=True,
            check=True,
        )
        keys.add(json.loads(out.stdout))
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith("stratacache:keyed.report:")
