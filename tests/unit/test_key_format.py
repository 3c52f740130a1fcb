"""The stored key format, pinned to the character.

Keys are digests of a canonical text form; a change to that form, however
harmless it looks, moves every key and orphans every entry already stored in
Redis and DynamoDB by the previous version. So each form is written out here:
changing one must be a deliberate, announced decision, never an accident.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
import re
import uuid
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from stratacache import ConfigurationError, KeyBuildError, cached
from stratacache.keys import (
    MAX_DEPTH,
    KeyLayout,
    KeyMaker,
    canonical,
    digest,
    encode_segment,
    function_id,
)


class Color(enum.Enum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: str


@dataclasses.dataclass
class Row:
    a: int
    b: list[int]


HERE = __name__


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (None, "N"),
        (True, "T"),
        (False, "F"),
        (0, "i0;"),
        (255, "iff;"),
        (-1, "i-1;"),
        (10**30, "ic9f2c9cd04674edea40000000;"),
        (1.5, "f1.5;"),
        (-0.0, "f-0.0;"),
        (float("inf"), "finf;"),
        (float("nan"), "fnan;"),
        ("", "s0:"),
        ("a:b", "s3:a:b"),
        ("é", "s1:é"),
        (b"\x00\xff", "b00ff;"),
        (Color.RED, f"e{HERE}.Color.RED;"),
        (Decimal("1.10"), "Decimal(1.10);"),
        (uuid.UUID(int=1), "UUID(00000000-0000-0000-0000-000000000001);"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "datetime(2024-01-02T03:04:05);"),
        (dt.date(2024, 1, 2), "date(2024-01-02);"),
        (dt.time(1, 2, 3), "time(01:02:03);"),
        (dt.datetime(2024, 11, 3, 1, 30, fold=1), "datetime(2024-11-03T01:30:00|1);"),
        (dt.timedelta(days=1, seconds=2, microseconds=3), "timedelta(1,2,3);"),
        ([1, "a"], "l[i1;s1:a]"),
        ((1,), "t[i1;]"),
        ({"b": 1, "a": 2}, "d{s1:a=i2;s1:b=i1;}"),
        ({2, 1}, "S{i1;i2;}"),
        (frozenset({"x"}), "Z{s1:x}"),
        (Point(1, "y"), f"n{HERE}.Point[i1;s1:y]"),
        (Row(1, [2]), f"D{HERE}.Row(a=i1;b=l[i2;])"),
        ([[]], "l[l[]]"),
        ({}, "d{}"),
    ],
)
def test_the_canonical_form_of_each_kind_of_argument(value: object, form: str) -> None:
    assert canonical(value) == form


def test_the_digest_is_blake2b_of_16_bytes() -> None:
    assert digest("abc") == "cf4ab791c62b8d2b2109c90275287816"
    # a lone surrogate is digested, not refused
    assert digest("\udc80") == "a9eac2dbc1be1ac8740107801b666f53"


def test_the_layout_of_entries_and_generations() -> None:
    layout = KeyLayout(("stratacache", "app.quote"))
    assert layout.prefix == "stratacache:app.quote|"
    assert layout.generation_key == "stratacache:app.quote#gen"
    assert layout.feed_key == "stratacache:app.quote#feed{stratacache:app.quote}"
    assert layout.key("a b") == "stratacache:app.quote|a%20b"


def test_unkeyable_values_are_refused_with_their_reason() -> None:
    loop: list[object] = []
    loop.append(loop)
    deep: list[object] = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(KeyBuildError, match=r"^the value contains itself$"):
        canonical(loop)
    with pytest.raises(KeyBuildError, match=rf"^the value is nested more than {MAX_DEPTH} levels"):
        canonical(deep)
    with pytest.raises(KeyBuildError, match=r"^the value is a object, which has no stable key$"):
        canonical(object())
    shared = [1]
    assert canonical([shared, shared]) == "l[l[i1;]l[i1;]]"  # shared, but no cycle


def test_nesting_up_to_the_limit_is_keyed() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH - 1):  # MAX_DEPTH lists in all
        deep = [deep]
    assert canonical(deep) == "l[" * MAX_DEPTH + "]" * MAX_DEPTH


# ---------------------------------------------------------------- function identity


def scaled_by(factor: object) -> Any:
    def scale(x: int) -> object:
        return factor * x  # type: ignore[operator]

    return scale


def closes_over(value: object) -> Any:
    def use() -> object:
        return value

    return use


def test_a_closure_is_named_by_a_digest_of_its_free_values() -> None:
    expected = f"{HERE}.scaled_by.<locals>.scale@" + digest("factor=i2;")[:12]
    assert function_id(scaled_by(2)) == expected
    assert function_id(scaled_by(3)) != expected  # another value, another identity


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (json, "value=module:json"),
        (Row, f"value=class:{HERE}.Row"),
        (scaled_by, f"value=function:{HERE}.scaled_by"),
        ((1, "a"), "value=t[i1;s1:a]"),
    ],
)
def test_each_kind_of_free_value_has_its_form(value: object, form: str) -> None:
    expected = f"{HERE}.closes_over.<locals>.use@" + digest(form)[:12]
    assert function_id(closes_over(value)) == expected


def test_a_closure_over_a_cached_function_names_what_it_wraps() -> None:
    def plain(x: int) -> int:
        return x

    wrapped = cached(plain)
    assert function_id(closes_over(wrapped)) == function_id(closes_over(plain))


def test_a_function_that_refers_to_itself_is_named_once() -> None:
    def outer() -> Any:
        def again(n: int) -> int:
            return again(n - 1) if n else 0

        return again

    again = outer()
    inner = f"{HERE}.test_a_function_that_refers_to_itself_is_named_once.<locals>.outer"
    assert function_id(again) == f"{inner}.<locals>.again@" + digest("again=self")[:12]


def test_a_closure_over_a_name_not_bound_yet_is_named() -> None:
    def outer() -> Any:
        def early() -> object:
            return late

        name = function_id(early)
        late = 1
        return name

    assert outer().endswith("<locals>.early@" + digest("late=<unbound>")[:12])


def test_a_closure_without_a_stable_form_is_refused_in_full() -> None:
    message = (
        f"{HERE}.scaled_by.<locals>.scale closes over 'factor', which is a object, which has "
        "no stable key, so it has no identity that other environments would agree on; pass "
        "namespace=... to the decorator to name its cache yourself"
    )
    with pytest.raises(ConfigurationError) as raised:
        function_id(scaled_by(object()))
    assert str(raised.value) == message


def test_a_lambda_is_named_by_its_line() -> None:
    here = lambda: None  # noqa: E731
    found = re.fullmatch(rf"{re.escape(HERE)}\..*<lambda>@L(\d+)C(\d+)", function_id(here))
    assert found is not None
    assert int(found.group(1)) == here.__code__.co_firstlineno


def test_what_is_not_a_python_function_is_named_by_module_and_qualified_name() -> None:
    assert function_id(len) == "builtins.len"
    assert function_id(functools.partial(len)) == "functools.partial"


# ---------------------------------------------------------------- argument keys


def fetch(region: str, ids: list[int], debug: bool = False) -> None:
    """A function to key."""


def test_arguments_are_keyed_by_name_in_signature_order() -> None:
    assert KeyMaker(fetch)(("eu", [1]), {}) == digest("region=s2:euids=l[i1;]debug=F")
    assert KeyMaker(fetch, ignore=["debug"])(("eu", [1]), {"debug": True}) == digest(
        "region=s2:euids=l[i1;]"
    )


def test_a_function_without_a_signature_is_keyed_by_its_positional_and_keyword_arguments() -> None:
    assert KeyMaker(max)((1, 2), {"key": None}) == digest("*=t[i1;i2;]**=d{s3:key=N}")


def test_key_mistakes_are_named_in_full() -> None:
    name = f"{HERE}.fetch"
    with pytest.raises(KeyBuildError) as raised:
        KeyMaker(fetch, ignore=["nope", "debug"])
    assert str(raised.value) == f"ignore names ['nope'] that {name} does not take"
    with pytest.raises(TypeError) as wrong:
        KeyMaker(fetch)((), {})
    assert str(wrong.value).startswith(f"{name}(): missing a required argument")
    with pytest.raises(KeyBuildError) as unkeyable:
        KeyMaker(fetch)(("eu", object()), {})
    assert str(unkeyable.value) == (
        f"cannot build a cache key for {name}: argument 'ids' is a object, which has no "
        "stable key; pass key=... to the decorator, or ignore=[...] to leave it out"
    )


@pytest.mark.parametrize(
    ("made", "kept"),
    [
        ("a" * 200, True),
        ("a" * 201, False),
        ("tab\there", False),
        ("~looks-digested", False),
        (42, False),
    ],
)
def test_a_custom_key_is_used_as_it_is_only_when_short_printable_and_unmarked(
    made: object, kept: bool
) -> None:
    key = KeyMaker(fetch, key=lambda *a, **k: made)(("eu", [1]), {})
    assert key == (made if kept else "~" + digest(canonical(made)))


def test_a_custom_key_that_cannot_be_keyed_is_named_in_full() -> None:
    with pytest.raises(KeyBuildError) as raised:
        KeyMaker(fetch, key=lambda *a, **k: object())(("eu", [1]), {})
    assert str(raised.value) == (
        f"key= of {HERE}.fetch returned a value that the value is a object, which has no "
        "stable key; return a str or a value made of JSON types, tuples and dataclasses"
    )


# ---------------------------------------------------------------- what mutation testing found


class Pair(NamedTuple):
    left: object
    right: object


def test_containers_inside_keys_sets_and_named_tuples_are_keyed_to_any_depth() -> None:
    assert canonical({(1, (2,)): "a"}) == "d{t[i1;t[i2;]]=s1:a}"
    assert canonical({(1, (2,))}) == "S{t[i1;t[i2;]]}"
    assert canonical(Pair([1], (2,))) == f"n{HERE}.Pair[l[i1;]t[i2;]]"


def test_a_class_that_only_looks_like_a_named_tuple_is_refused() -> None:
    class Impostor:
        _fields = ("a",)

    with pytest.raises(KeyBuildError, match="Impostor, which has no stable key"):
        canonical(Impostor())


def test_segments_encode_every_byte_of_utf_8_lone_surrogates_included() -> None:
    assert encode_segment("é") == "%C3%A9"
    assert encode_segment("\udc80") == "%ED%B2%80"


def test_a_shortened_namespace_keeps_its_first_216_characters() -> None:
    prefix = KeyLayout("n" * 300).prefix
    assert prefix == "n" * 216 + "~" + digest("n" * 300) + "|"


def test_a_function_without_a_module_is_named_under_a_question_mark() -> None:
    def orphan() -> None:
        pass

    orphan.__module__ = None  # type: ignore[assignment]
    assert function_id(orphan, closure=False).startswith("?.")


def test_a_function_of_a_script_run_with_python_m_is_named_by_its_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.machinery
    import sys
    import types

    def main_function() -> None:
        pass

    main_function.__module__ = "__main__"
    script = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", script)
    script.__spec__ = None
    assert function_id(main_function, closure=False).startswith("__main__.")
    script.__spec__ = importlib.machinery.ModuleSpec("app.handler", None)
    assert function_id(main_function, closure=False).startswith("app.handler.")


def test_a_free_function_with_a_cache_attribute_but_nothing_wrapped_is_a_function() -> None:
    def helper() -> None:
        pass

    helper.cache = "not a cached function"  # type: ignore[attr-defined]
    expected = (
        f"{HERE}.closes_over.<locals>.use@"
        + digest(
            f"value=function:{HERE}.test_a_free_function_with_a_cache_attribute_but_nothing_"
            "wrapped_is_a_function.<locals>.helper"
        )[:12]
    )
    assert function_id(closes_over(helper)) == expected


def test_free_values_and_arguments_nested_up_to_the_limit_are_keyed() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    function_id(closes_over(deep))  # no ConfigurationError
    assert KeyMaker(fetch)(("eu", deep), {})


def test_every_free_variable_counts_in_a_closures_name() -> None:
    def outer() -> Any:
        b = 2

        def both() -> object:
            return (a_late, b)

        name = function_id(both)
        a_late = 1
        return name

    assert outer().endswith("@" + digest("a_late=<unbound>;b=i2;")[:12])


def test_closure_false_names_the_function_alone() -> None:
    assert function_id(scaled_by(object()), closure=False) == f"{HERE}.scaled_by.<locals>.scale"


def test_functions_that_claim_one_name_are_told_apart_by_place_then_by_code() -> None:
    module = f"claims_{id(object())}"

    def define(body: str, line: int) -> Any:
        namespace: dict[str, Any] = {"__name__": module}
        exec("\n" * (line - 1) + f"def f():\n    return {body}\n", namespace)
        return namespace["f"]

    first, elsewhere = define("1", 1), define("2", 5)
    same_spot = define("3", 5)
    assert function_id(first) == f"{module}.f"
    assert function_id(first) == f"{module}.f"  # asked again: the same name
    at = function_id(elsewhere)
    assert re.fullmatch(rf"{module}\.f@L6C\d+", at)
    assert function_id(elsewhere) == at
    by_code = function_id(same_spot)
    assert re.fullmatch(rf"{re.escape(at)}@[0-9a-f]{{12}}", by_code)
    assert function_id(same_spot) == by_code


def test_ignore_leaves_out_only_the_arguments_named() -> None:
    assert KeyMaker(fetch, ignore=["region"])(("eu", [1]), {}) == digest("ids=l[i1;]debug=F")


def test_a_custom_key_gets_the_keyword_arguments_too() -> None:
    make = KeyMaker(fetch, key=lambda region, ids, debug=False: f"{region}-{debug}")
    assert make(("eu",), {"ids": [1], "debug": True}) == "eu-True"


def test_a_callable_without_a_qualified_name_is_named_with_a_question_mark() -> None:
    with pytest.raises(KeyBuildError) as raised:
        KeyMaker(functools.partial(fetch), ignore=["nope"])
    assert str(raised.value) == "ignore names ['nope'] that functools.? does not take"
