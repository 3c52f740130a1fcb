"""JsonSerializer(types=[...]): declared dataclasses and Pydantic models round-trip exactly.

Nothing named in stored bytes is ever imported: a name that is not declared is
refused, and the byte format of every type the serializer held before is unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pydantic
import pydantic.v1
import pytest

from stratacache import ConfigurationError, SerializationError
from stratacache.serialization import JsonSerializer


@dataclasses.dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    at: dt.datetime
    venues: tuple[str, ...] = ()


@dataclasses.dataclass(slots=True)
class Basket:
    quotes: list[Quote]
    by_id: dict[uuid.UUID, Quote]
    total: Decimal = dataclasses.field(init=False, default=Decimal(0))


class Customer(pydantic.BaseModel):
    id: int
    name: str
    since: dt.date
    tags: set[str] = set()


class Account(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    owner: Customer
    balance: Decimal


class LegacyCustomer(pydantic.v1.BaseModel):
    id: int
    joined: dt.datetime


AT = dt.datetime(2026, 12, 2, 14, 0, tzinfo=dt.UTC)
QUOTE = Quote("AMZN", Decimal("178.25"), AT, ("nasdaq",))


def round_trip(serializer: JsonSerializer, value: object) -> object:
    return serializer.loads(serializer.dumps(value))


def test_a_dataclass_comes_back_as_itself() -> None:
    back = round_trip(JsonSerializer(types=[Quote]), QUOTE)
    assert type(back) is Quote
    assert back == QUOTE
    assert type(back.venues) is tuple


def test_nested_dataclasses_with_slots_and_fields_outside_init() -> None:
    basket = Basket([QUOTE], {uuid.UUID(int=7): QUOTE})
    basket.total = Decimal("178.25")
    back = round_trip(JsonSerializer(types=[Quote, Basket]), basket)
    assert type(back) is Basket
    assert back == basket
    assert back.total == Decimal("178.25")
    assert type(back.by_id[uuid.UUID(int=7)]) is Quote


def test_a_pydantic_v2_model_comes_back_as_itself() -> None:
    account = Account.model_validate(
        {
            "owner": Customer(id=1, name="Ada", since=dt.date(2020, 1, 2), tags={"vip"}),
            "balance": Decimal("10.50"),
            "note": "extra fields survive",
        }
    )
    back = round_trip(JsonSerializer(types=[Account]), account)
    assert type(back) is Account
    assert back == account
    assert type(back.owner) is Customer
    assert back.model_extra == {"note": "extra fields survive"}


def test_a_pydantic_v1_model_comes_back_as_itself() -> None:
    legacy = LegacyCustomer(id=2, joined=AT)
    back = round_trip(JsonSerializer(types=[LegacyCustomer]), legacy)
    assert type(back) is LegacyCustomer
    assert back == legacy


def test_a_pydantic_model_holding_a_declared_dataclass() -> None:
    class Order(pydantic.BaseModel):
        quote: Quote
        lines: list[str]

    order = Order(quote=QUOTE, lines=["a"])
    back = round_trip(JsonSerializer(types=[Order, Quote]), order)
    assert back == order
    assert type(back.quote) is Quote


def test_an_undeclared_class_is_refused_with_the_fix_in_the_message() -> None:
    with pytest.raises(SerializationError, match=r"JsonSerializer\(types=\[Quote\]\)"):
        JsonSerializer().dumps(QUOTE)
    with pytest.raises(SerializationError, match=r"types=\[Quote\]"):
        JsonSerializer(types=[Customer]).dumps(QUOTE)


def test_a_subclass_is_not_its_declared_parent() -> None:
    @dataclasses.dataclass(frozen=True)
    class SpecialQuote(Quote):
        pass

    with pytest.raises(SerializationError, match="SpecialQuote"):
        JsonSerializer(types=[Quote]).dumps(SpecialQuote("X", Decimal(1), AT))


def test_a_stored_name_is_looked_up_never_imported() -> None:
    # `this` prints the Zen of Python when imported: a fresh interpreter shows whether
    # reading the entry imported it.
    probe = (
        "import sys\n"
        "from stratacache import SerializationError\n"
        "from stratacache.serialization import JsonSerializer\n"
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Quote:\n"
        "    symbol: str\n"
        "try:\n"
        '    JsonSerializer(types=[Quote]).loads(b\'{"$obj":["this.Zen",{}]}\')\n'
        "except SerializationError as exc:\n"
        "    print(exc)\n"
        "print('this' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "stored value is a 'this.Zen' object, which is not among this serializer's types; "
        "it is never imported",
        "False",
    ]


def test_a_reader_without_the_types_misses() -> None:
    data = JsonSerializer(types=[Quote]).dumps(QUOTE)
    with pytest.raises(SerializationError, match="declares no types"):
        JsonSerializer().loads(data)


def test_an_entry_that_no_longer_fits_its_class_is_refused() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    old = JsonSerializer(types={"Point": Point}).dumps(Point(1, 2))

    @dataclasses.dataclass
    class PointV2:
        x: int

    with pytest.raises(SerializationError, match="does not fit the class"):
        JsonSerializer(types={"Point": PointV2}).loads(old)


NOT_AN_OBJECT = "stored object is not [name, fields]"


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        (b'{"$obj":"Quote"}', NOT_AN_OBJECT),
        (b'{"$obj":[]}', NOT_AN_OBJECT),
        (b'{"$obj":["Quote",{},1]}', NOT_AN_OBJECT),
        (b'{"$obj":["Quote",[1]]}', NOT_AN_OBJECT),
        (
            b'{"$obj":[1,{}]}',
            "stored value is a 1 object, which is not among this serializer's types; "
            "it is never imported",
        ),
        (
            b'{"$obj":[["Quote"],{}]}',  # a name that cannot even be looked up
            "stored value is a ['Quote'] object, which is not among this serializer's types; "
            "it is never imported",
        ),
        (
            b'{"$obj":["this.Zen",{}]}',
            "stored value is a 'this.Zen' object, which is not among this serializer's types; "
            "it is never imported",
        ),
    ],
)
def test_malformed_object_entries_are_refused(payload: bytes, refusal: str) -> None:
    with pytest.raises(SerializationError) as refused:
        JsonSerializer(types={"Quote": Quote}).loads(payload)
    assert str(refused.value) == refusal


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (b'{"$obj":["Quote",{}]}', "'Quote'"),
        (b'{"$obj":"Quote"}', "'?'"),
        (b'{"$obj":[]}', "'?'"),
    ],
)
def test_a_reader_without_types_names_what_it_cannot_rebuild(payload: bytes, name: str) -> None:
    with pytest.raises(SerializationError) as refused:
        JsonSerializer().loads(payload)
    assert str(refused.value) == (
        f"stored value is a {name} object; this serializer declares no types "
        "(JsonSerializer(types=[...]))"
    )


def test_fields_the_class_no_longer_has_are_named() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    with pytest.raises(SerializationError) as refused:
        JsonSerializer(types={"Point": Point}).loads(b'{"$obj":["Point",{"z":3,"x":1,"y":2}]}')
    assert str(refused.value) == (
        "stored Point does not fit the class: TypeError: no field named y, z"
    )


def test_a_set_of_declared_objects_is_ordered_by_their_json_with_sorted_keys() -> None:
    @dataclasses.dataclass(frozen=True)
    class Pair:
        b: int
        a: int

    serializer = JsonSerializer(types={"Pair": Pair})
    pairs = {Pair(b=1, a=2), Pair(b=2, a=1)}
    data = serializer.dumps(pairs)
    assert data == b'{"$set":[{"$obj":["Pair",{"b":2,"a":1}]},{"$obj":["Pair",{"b":1,"a":2}]}]}'
    assert serializer.loads(data) == pairs


def test_bad_declarations_are_configuration_errors_naming_the_type() -> None:
    with pytest.raises(ConfigurationError, match="is not a class"):
        JsonSerializer(types=[QUOTE])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="Decimal is neither a dataclass nor"):
        JsonSerializer(types=[Decimal])
    twin = type("Quote", (), {"__module__": Quote.__module__, "__qualname__": "Quote"})
    twin = dataclasses.dataclass(twin)
    with pytest.raises(ConfigurationError) as twins:
        JsonSerializer(types=[Quote, twin])
    assert str(twins.value) == (
        f"JsonSerializer types: two classes are named '{Quote.__module__}.Quote'; "
        "pass types={name: class, ...} to name them apart"
    )


def test_existing_types_keep_their_bytes() -> None:
    value: dict[str, Any] = {
        "at": (1, 2),
        "ids": {3},
        "when": AT,
        "price": Decimal("1.5"),
        "raw": b"\x00",
    }
    expected = (
        b'{"at":{"$tuple":[1,2]},"ids":{"$set":[3]},'
        b'"when":{"$datetime":"2026-12-02T14:00:00+00:00"},'
        b'"price":{"$decimal":"1.5"},"raw":{"$bytes":"AA=="}}'
    )
    assert JsonSerializer().dumps(value) == expected
    assert JsonSerializer(types=[Quote]).dumps(value) == expected
    assert JsonSerializer(types=[Quote]).loads(expected) == value


def test_a_user_dict_keyed_by_the_object_tag_stays_a_dict() -> None:
    for serializer in (JsonSerializer(), JsonSerializer(types=[Quote])):
        assert round_trip(serializer, {"$obj": ["Quote", {}]}) == {"$obj": ["Quote", {}]}


def test_the_repr_lists_the_declared_types() -> None:
    assert repr(JsonSerializer()) == "JsonSerializer()"
    assert repr(JsonSerializer(types={"q": Quote, "c": Customer})) == (
        "JsonSerializer(types=[q, c])"
    )


def test_a_pydantic_v2_model_is_dumped_for_a_round_trip() -> None:
    # A Json field validates from a JSON string: only model_dump(round_trip=True) gives it
    # one back, so a model read through the v1 API (.dict()) would fail to rebuild.
    class Payload(pydantic.BaseModel):
        raw: pydantic.Json[list[int]]

    serializer = JsonSerializer(types={"Payload": Payload})
    data = serializer.dumps(Payload.model_validate({"raw": "[1,2]"}))
    assert data == b'{"$obj":["Payload",{"raw":"[1,2]"}]}'
    assert serializer.loads(data) == Payload.model_validate({"raw": "[1,2]"})


class _ValidateOnly:
    @classmethod
    def model_validate(cls, data: object) -> object:
        return cls()


class _DumpOnly:
    def model_dump(self) -> dict[str, Any]:
        return {}


class _ParseOnly:
    @classmethod
    def parse_obj(cls, data: object) -> object:
        return cls()


class _DictOnly:
    def dict(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize("half", [_ValidateOnly, _DumpOnly, _ParseOnly, _DictOnly])
def test_a_class_with_half_of_a_pydantic_api_is_refused(half: type) -> None:
    with pytest.raises(ConfigurationError) as refused:
        JsonSerializer(types=[half])
    assert str(refused.value) == (
        f"JsonSerializer types: {half.__qualname__} is neither a dataclass nor a Pydantic model"
    )


def test_declaring_a_class_twice_is_declaring_it_once() -> None:
    serializer = JsonSerializer(types=[Quote, Quote])
    assert serializer.loads(serializer.dumps(QUOTE)) == QUOTE
