"""Keys: one call, one key in every process; other calls, functions, namespaces never meet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratacache import KeyBuildError, MemoryTier, TieredCache, cached
from stratacache.keys import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    KeyLayout,
    KeyMaker,
    canonical,
    digest,
    encode_segment,
    function_id,
    lock_key,
)


def lookup(region: str, ids: list[int], opts: dict[str, object] | None = None) -> None:
    """A function to build keys for."""


def key_of(*args: object, **kwargs: object) -> str:
    return KeyMaker(lookup)(args, kwargs)


# ---------------------------------------------------------------- canonical form


def test_binding_makes_equivalent_calls_share_a_key() -> None:
    assert key_of("eu", [1]) == key_of(region="eu", ids=[1])
    assert key_of("eu", [1]) == key_of("eu", [1], None)


def test_different_arguments_give_different_keys() -> None:
    assert len({key_of("eu", [1]), key_of("eu", [2]), key_of("us", [1]), key_of("eu", [1, 1])}) == 4


EQUAL_BUT_DIFFERENT = [
    1, 1.0, True, "1", Decimal(1), b"1", 0, False, 0.0, -0.0, "", b"", None, (), [], (1,), (1.0,),
    (True,), [1], {1}, frozenset({1}), {True}, {"a": 1}, {"a": 1.0}, {"a": True},
]  # fmt: skip


def test_values_that_python_calls_equal_but_differ_in_type_all_get_different_keys() -> None:
    forms = [canonical(value) for value in EQUAL_BUT_DIFFERENT]
    for i, a in enumerate(forms):  # every pair, not a chain of !=
        for j, b in enumerate(forms):
            if i != j:
                assert a != b, (EQUAL_BUT_DIFFERENT[i], EQUAL_BUT_DIFFERENT[j])


@given(st.dictionaries(st.text(), st.integers()))
def test_dict_and_set_order_never_changes_the_key(value: dict[str, int]) -> None:
    flipped = dict(reversed(list(value.items())))
    assert canonical(value) == canonical(flipped)
    assert canonical(set(value)) == canonical(set(flipped))


def test_strings_cannot_be_spliced_into_another_key() -> None:
    forms = {
        canonical(["a", "b"]),
        canonical(["a,b"]),
        canonical(["ab"]),
        canonical(["a", "", "b"]),
    }
    assert len(forms) == 4
    assert key_of("e", [1]) != key_of("e[1", [])


class Point(NamedTuple):
    x: int
    y: int


def test_dataclasses_namedtuples_enums_and_common_types_are_keyed() -> None:
    class Colour(enum.Enum):
        RED = 1

    @dataclasses.dataclass
    class Box:
        x: int
        y: int

    values = [Box(1, 2), Colour.RED, Point(1, 2), Decimal("1.5"), dt.date(2026, 1, 1)]
    values += [dt.timedelta(1), dt.datetime(2026, 11, 1, 1, 30, fold=1)]
    assert len({canonical(value) for value in values}) == len(values)
    assert canonical(Box(1, 2)) != canonical(Box(2, 1))
    assert canonical(Point(1, 2)) != canonical((1, 2))
    assert canonical(dt.datetime(2026, 11, 1, 1, 30, fold=1)) != canonical(
        dt.datetime(2026, 11, 1, 1, 30)
    )


def test_arguments_from_the_wild_are_keyed() -> None:
    lone_surrogate = json.loads('"\\ud800"')  # what json.loads of an event body can give
    huge = 7**6000  # more digits than str(int) allows
    assert canonical(lone_surrogate) != canonical("\ufffd")
    assert len(key_of(lone_surrogate, [huge])) == 32
    assert key_of("eu", [huge]) != key_of("eu", [huge + 1])


def test_nesting_past_the_limit_and_cycles_are_refused_by_name() -> None:
    deep: list[object] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    with pytest.raises(KeyBuildError, match=f"more than {MAX_DEPTH} levels"):
        key_of("eu", deep)
    looped: list[object] = [1]
    looped.append(looped)
    with pytest.raises(KeyBuildError, match="contains itself"):
        key_of("eu", looped)


def test_a_shared_but_acyclic_value_is_keyed() -> None:
    shared = [1, 2]
    assert canonical([shared, shared]) == canonical([[1, 2], [1, 2]])


KEYABLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**5000), max_value=10**5000)
    | st.floats(allow_nan=True)
    | st.text()
    | st.binary()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.datetimes(),
    lambda inner: (
        st.lists(inner)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text())
        | st.dictionaries(st.text() | st.integers(), inner)
    ),
    max_leaves=30,
)
ANYTHING = st.recursive(
    KEYABLE | st.builds(object) | st.builds(lambda: lambda: None) | st.builds(bytearray),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(ANYTHING)
def test_every_value_is_keyed_or_refused_with_key_build_error(value: Any) -> None:
    try:
        made = key_of("eu", [], {"v": value})
    except KeyBuildError:
        return
    assert len(made) == 32
    assert made == key_of("eu", [], {"v": value})


@given(st.lists(KEYABLE, max_size=3))
def test_every_keyable_value_is_keyed(values: list[object]) -> None:
    assert len(key_of("eu", [], {"v": values})) == 32


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


def test_a_custom_key_that_is_not_a_short_string_is_digested_and_marked() -> None:
    maker = KeyMaker(lookup, key=lambda region, ids, opts=None: region)
    made = maker(("~" + "x" * 32, [1, 2]), {})
    assert made.startswith("~")
    assert len(made) == 33
    assert maker(((1, 2), []), {}) != maker(("(1, 2)", []), {})


def test_a_custom_key_returning_something_unkeyable_is_named() -> None:
    maker = KeyMaker(lookup, key=lambda *a, **k: object())
    with pytest.raises(KeyBuildError, match="key= of"):
        maker(("eu", []), {})


# ---------------------------------------------------------------- stored layout


def test_namespaces_and_keys_cannot_be_spliced_into_each_other() -> None:
    assert KeyLayout("t").key("vip:secret") != KeyLayout("t:vip").key("secret")
    assert KeyLayout(("t", "vip")).key("secret") != KeyLayout("t:vip").key("secret")
    assert KeyLayout(("t", "vip")).key("secret") != KeyLayout("t").key("vip|secret")
    assert not KeyLayout("t:vip").key("secret").startswith(KeyLayout("t").prefix)
    assert not KeyLayout(("t", "vip")).key("x").startswith(KeyLayout("t").prefix)


@given(
    st.lists(st.text(), min_size=1, max_size=3),
    st.text(),
    st.lists(st.text(), min_size=1, max_size=3),
    st.text(),
)
def test_the_layout_is_injective(ns_a: list[str], key_a: str, ns_b: list[str], key_b: str) -> None:
    same = (ns_a, key_a) == (ns_b, key_b)
    a, b = KeyLayout(ns_a), KeyLayout(ns_b)
    assert (a.key(key_a) == b.key(key_b)) == same
    assert a.key(key_a).startswith(b.prefix) == (ns_a == ns_b)
    assert not a.key(key_a).startswith(b.generation_key)


HEAD = "f:a|"
ROOM = MAX_KEY_LENGTH - len("t|" + encode_segment(HEAD))  # the longest safe tail kept whole


@pytest.mark.parametrize(
    ("tail", "whole"),
    [
        ("i1", True),
        ("a b", True),  # encoded
        ("x" * ROOM, True),  # exactly at the limit
        ("x" * (ROOM + 1), False),  # one past it
        ("x" * 2000, False),
        ("\u00e9" * 300, False),  # short, but six times as long encoded
    ],
    ids=["safe", "unsafe", "at-limit", "past-limit", "long", "long-encoded"],
)
def test_keys_under_one_head_are_the_layouts_keys(tail: str, whole: bool) -> None:
    layout = KeyLayout("t")
    stored = layout.keys_under(HEAD)(tail)
    assert stored == layout.key(HEAD + tail)
    expected = "t|f%3Aa%7C" + encode_segment(tail) if whole else "t|~" + digest(HEAD + tail)
    assert stored == expected


def test_long_keys_are_shortened_within_the_limit_and_keep_their_namespace() -> None:
    layout = KeyLayout(("ns", "m" * 300))
    long_a, long_b = "a" * 2000, "a" * 1999 + "b"
    assert len(layout.key(long_a).encode()) <= MAX_KEY_LENGTH
    assert layout.key(long_a).startswith(layout.prefix)
    assert layout.key(long_a) != layout.key(long_b)
    assert KeyLayout(("ns", "m" * 300)).prefix != KeyLayout(("ns", "m" * 299 + "n")).prefix


def test_clear_removes_exactly_its_namespace_shortened_keys_included() -> None:
    tier = MemoryTier()
    mine = TieredCache([tier], namespace="n" * 70)
    theirs = TieredCache([tier], namespace="n" * 70 + ":x")
    mine.set("k" * 2000, 1)
    mine.set("short", 2)
    theirs.set("k" * 2000, 3)
    mine.clear()
    assert mine.get("k" * 2000) is None
    assert mine.get("short") is None
    assert theirs.get("k" * 2000) == 3


def test_a_segment_is_readable_when_plain_and_encoded_when_not() -> None:
    assert encode_segment("app.handler.fetch_quote") == "app.handler.fetch_quote"
    assert encode_segment("a:b|c#d%e") == "a%3Ab%7Cc%23d%25e"


# ---------------------------------------------------------------- function identity


def test_a_plain_function_is_named_by_module_and_qualified_name() -> None:
    assert function_id(lookup) == f"{__name__}.lookup"


def test_two_lambdas_never_share_an_identity() -> None:
    first, second = (lambda x: x), (lambda x: -x)
    assert function_id(first) != function_id(second)
    assert function_id(first) == function_id(first)


def test_a_redefined_function_of_the_same_name_gets_its_own_identity() -> None:
    namespace: dict[str, Any] = {"__name__": "redefined"}
    exec("def f():\n    return 1\nfirst = f\n\n\ndef f():\n    return 2\n", namespace)
    assert function_id(namespace["first"]) != function_id(namespace["f"])
    assert function_id(namespace["first"]) == "redefined.f"


def test_keys_and_identities_are_the_same_in_another_process_with_another_hash_seed(
    tmp_path: Path,
) -> None:
    """``hash()`` changes per process; keys must not."""
    module = tmp_path / "keyed.py"
    module.write_text(
        textwrap.dedent(
            """
            import json
            from stratacache import cached

            def scaled_by(k):
                @cached
                def scale(x):
                    return k * x
                return scale

            @cached
            def report(tags, since, limits):
                return None

            ARGS = ({"b", "a", "c"}, {"day": 1, "month": 2}, [("x", 1.5), ("y", None)])
            print(json.dumps([report.cache.full_key(report.cache_key(*ARGS)),
                              scaled_by(3).cache.namespace, (lambda: 1).__qualname__]))
            """
        )
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", "import keyed"],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": f"{tmp_path}:{Path('python').resolve()}"},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(out.stdout)
    assert len(outputs) == 1
    key, closure_namespace, _ = json.loads(outputs.pop())
    assert key.startswith("stratacache:keyed.report|")
    assert closure_namespace.startswith("stratacache:keyed.scaled_by.<locals>.scale@")


def test_lambdas_decorated_in_one_module_do_not_share_entries() -> None:
    first = cached(lambda x: ("first", x))
    second = cached(lambda x: ("second", x))
    assert first(1) == ("first", 1)
    assert second(1) == ("second", 1)


def test_the_readmes_layout_examples_hold() -> None:
    decorated = KeyLayout(("stratacache", "handler.fetch_quote"))
    assert decorated.key("3f2a") == "stratacache:handler.fetch_quote|3f2a"
    assert decorated.generation_key == "stratacache:handler.fetch_quote#gen"
    assert lock_key(decorated.key("3f2a")) == "stratacache:handler.fetch_quote|3f2a#lock"
    assert KeyLayout("t").key("vip:secret") == "t|vip%3Asecret"
    assert KeyLayout("t:vip").key("secret") == "t%3Avip|secret"
    long = KeyLayout("t").key("k" * 2000)
    assert long.startswith("t|~")
    assert len(long) == len("t|~") + 32


def test_a_lambdas_identity_says_where_it_stands() -> None:
    here = lambda: None  # noqa: E731
    assert re.search(r"\.<lambda>@L\d+C\d+$", function_id(here))
