"""The serializers' bytes, pinned exactly: what one version writes, the next must read, so a
change of form must be deliberate. Written for the mutants of serialization.py that the
other tests let live."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import pickle
import uuid
from decimal import Decimal

import pytest

from stratacache import ConfigurationError, SerializationError
from stratacache.serialization import JsonSerializer, PickleSerializer

KEY = b"0123456789abcdef"


@dataclasses.dataclass
class Marker:
    """A declared class: a serializer with types encodes everything else as one without."""

    note: str


def serializer_of(declared: bool) -> JsonSerializer:
    # Built inside each test, never at import: mutmut sees only the encoders a test builds.
    return JsonSerializer(types=[Marker]) if declared else JsonSerializer()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"a": [1, 2.5, None, True], "é": "ü"}, '{"a":[1,2.5,null,true],"é":"ü"}'),
        ((1, "a"), '{"$tuple":[1,"a"]}'),
        ({3, 1, 2}, '{"$set":[1,2,3]}'),
        ({"b", 1}, '{"$set":["b",1]}'),  # ordered by their JSON text
        (frozenset({(2,), (1,)}), '{"$frozenset":[{"$tuple":[1]},{"$tuple":[2]}]}'),
        (b"\x00\xff", '{"$bytes":"AP8="}'),
        (dt.datetime(2024, 1, 2, 3, 4, 5), '{"$datetime":"2024-01-02T03:04:05"}'),
        (dt.datetime(2024, 11, 3, 1, 30, fold=1), '{"$datetime":["2024-11-03T01:30:00",1]}'),
        (dt.date(2024, 1, 2), '{"$date":"2024-01-02"}'),
        (dt.time(1, 2, fold=1), '{"$time":["01:02:00",1]}'),
        (dt.timedelta(days=1, seconds=2, microseconds=3), '{"$timedelta":[1,2,3]}'),
        (Decimal("1.10"), '{"$decimal":"1.10"}'),
        (uuid.UUID(int=1), '{"$uuid":"00000000-0000-0000-0000-000000000001"}'),
        (float("inf"), '{"$float":"inf"}'),
        ({1: "a"}, '{"$dict":[[1,"a"]]}'),
        ({"$set": 1}, '{"$dict":[["$set",1]]}'),  # a user's key that looks like a tag
        ({"$set": 1, "b": 2}, '{"$set":1,"b":2}'),  # two keys: never read as a tag
    ],
)
@pytest.mark.parametrize("declared", [False, True], ids=["no-types", "with-types"])
def test_the_json_form_of_each_kind_of_value(value: object, stored: str, declared: bool) -> None:
    serializer = serializer_of(declared)
    assert serializer.dumps(value) == stored.encode()
    assert serializer.loads(stored.encode()) == value


@pytest.mark.parametrize("declared", [False, True], ids=["no-types", "with-types"])
def test_json_refusals_say_what_and_why(declared: bool) -> None:
    serializer = serializer_of(declared)
    with pytest.raises(SerializationError) as raised:
        serializer.dumps([complex(1, 2)])
    assert str(raised.value) == (
        "cannot serialize a value of type complex with the JSON serializer; declare it with "
        "JsonSerializer(types=[complex]) if it is a dataclass or a Pydantic model, convert it "
        "to JSON types, or choose serializer=PickleSerializer(signing_key=...)"
    )
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializationError, match=r"^value is nested too deeply to serialize$"):
        serializer.dumps(deep)
    with pytest.raises(SerializationError, match=r"^stored JSON is not a document \(at 0\)$"):
        serializer.loads(b"")
    with pytest.raises(SerializationError, match=r"^stored JSON has extra data at 1$"):
        serializer.loads(b"1 ")
    with pytest.raises(SerializationError, match=r"^stored JSON does not parse: "):
        serializer.loads(b"\xff")


def test_a_lone_surrogate_reads_back_whether_escaped_or_encoded() -> None:
    # JSON text may hold a lone surrogate (json.loads of an event body gives them); loads
    # reads its UTF-8 bytes like json.loads does, so both spellings are the same str.
    serializer = JsonSerializer()
    assert serializer.loads(b'["\\ud800"]') == ["\ud800"]
    assert serializer.loads(b'["\xed\xa0\x80"]') == ["\ud800"]


def test_a_pickle_is_its_hmac_sha256_then_the_pickle() -> None:
    serializer = PickleSerializer(signing_key=KEY)
    data = serializer.dumps(complex(1, 2))
    payload = pickle.dumps(complex(1, 2), protocol=pickle.HIGHEST_PROTOCOL)
    assert data == hmac.new(KEY, payload, hashlib.sha256).digest() + payload
    assert serializer.loads(data) == complex(1, 2)


def test_pickle_refusals_say_what_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    serializer = PickleSerializer(signing_key=KEY.decode())  # a str key is its UTF-8
    assert serializer.signing_key == KEY
    assert repr(serializer) == "PickleSerializer(signing_key=***)"
    with pytest.raises(SerializationError, match=r"^cannot pickle function: "):
        serializer.dumps(lambda: None)
    with pytest.raises(SerializationError, match=r"^pickle payload signature does not match"):
        serializer.loads(b"short")
    with pytest.raises(ConfigurationError) as missing:
        PickleSerializer()
    assert str(missing.value) == (
        "PickleSerializer needs signing_key (or STRATACACHE_SIGNING_KEY): unsigned pickle "
        "would let whoever can write the cache run code"
    )
    with pytest.raises(ConfigurationError, match=r"^signing_key must be at least 16 bytes"):
        PickleSerializer(signing_key=KEY[:15])
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", KEY.decode()[:5])
    with pytest.raises(ConfigurationError) as short:
        PickleSerializer()
    assert str(short.value) == "STRATACACHE_SIGNING_KEY must be at least 16 bytes long, got 5"
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", KEY.decode())
    assert PickleSerializer().signing_key == KEY
