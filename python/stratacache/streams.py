"""Invalidate cache entries from a DynamoDB Streams event source.

When the data behind a cached function changes in a DynamoDB table, the
table's stream tells a Lambda function which items changed. This module turns
that into invalidations: you map a changed item to the cached calls it feeds,
and the handler deletes those entries from every tier. A record whose
invalidation fails is reported in ``batchItemFailures`` so Lambda retries it
(``FunctionResponseTypes: [ReportBatchItemFailures]`` on the event source)
instead of the entry staying stale until its TTL.

Attribute values arrive as Lambda delivers them and become plain Python values:
Binary (``B``, ``BS``) comes base64-encoded and is handed over as ``bytes``,
inside maps and lists too; numbers (``N``, ``NS``) become ``Decimal``, which
keys differently from ``int``: convert them as the cached function is called.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

logger = logging.getLogger("stratacache")


@dataclass(frozen=True)
class Change:
    """One stream record: what happened to which item, as plain Python values."""

    event_name: str  # INSERT, MODIFY or REMOVE
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    sequence_number: str

    @property
    def image(self) -> dict[str, Any]:
        """The item after the change, or before it for a REMOVE."""
        return self.new_image or self.old_image or self.keys


Target = tuple[Any, tuple[Any, ...]]
"""``(cached_function, args)``: the cached call ``cached_function(*args)`` to invalidate.

For a ``@cached_many`` function the args are those of a call, ids included:
``(prices, ([sku],))`` drops the entry of each id in it.
"""

# As boto3 and Powertools read DynamoDB numbers: 38 digits, no silent rounding.
_NUMBERS = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _binary(value: str | bytes) -> bytes:
    """A ``B`` value: base64 text in a Lambda event, already bytes from a boto3 client."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a Binary value that is not base64: {value[:40]!r}") from exc


def _number(value: str) -> Decimal:
    return _NUMBERS.create_decimal(Decimal(value))


def attribute_value(value: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value (``{"S": "x"}``) as a plain Python value.

    Example:
        >>> attribute_value({"M": {"id": {"B": "AAE="}, "n": {"N": "5"}, "l": {"L": []}}})
        {'id': b'\\x00\\x01', 'n': Decimal('5'), 'l': []}
    """
    ((kind, raw),) = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "B":
        return _binary(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_number(n) for n in raw}
    if kind == "BS":
        return {_binary(b) for b in raw}
    if kind == "L":
        return [attribute_value(item) for item in raw]
    if kind == "M":
        return {name: attribute_value(item) for name, item in raw.items()}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def _plain(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {name: attribute_value(value) for name, value in image.items()}


def change_of(record: Mapping[str, Any]) -> Change:
    """The :class:`Change` in one DynamoDB Streams record."""
    body = record["dynamodb"]
    return Change(
        event_name=record["eventName"],
        keys=_plain(body.get("Keys")) or {},
        new_image=_plain(body.get("NewImage")),
        old_image=_plain(body.get("OldImage")),
        sequence_number=body["SequenceNumber"],
    )


def streams_invalidator(
    affected: Callable[[Change], Iterable[Target]],
) -> Callable[[Mapping[str, Any], object], dict[str, list[dict[str, str]]]]:
    """A Lambda handler that invalidates what each changed item feeds.

    ``affected(change)`` returns the cached calls to drop, as
    ``(cached_function, args)`` pairs; a ``@cached_many`` function's args name
    the ids whose entries to drop. Records are handled in stream order; at
    the first one that fails (in ``affected`` or in a tier), the handler stops
    and reports it, so Lambda retries from that record on.

    Example (the stream's Lambda handler; ``tests/integration/test_streams.py`` runs it)::

        @cached_tiered(ttl=300)
        def product(product_id: str) -> dict: ...

        handler = streams_invalidator(lambda change: [(product, (change.image["id"],))])
    """

    def handler(event: Mapping[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
        for record in event.get("Records", []):
            sequence = record.get("dynamodb", {}).get("SequenceNumber", "")
            try:
                change = change_of(record)
                for function, args in affected(change):
                    for key in _keys(function, args):
                        function.cache.delete(key, strict=True)
            except Exception as exc:
                logger.warning(
                    "stratacache could not invalidate for stream record %s: %s: %s",
                    sequence,
                    type(exc).__name__,
                    exc,
                )
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
        return {"batchItemFailures": []}

    return handler


def _keys(function: Any, args: tuple[Any, ...]) -> list[str]:
    """The cache keys of a target: one for a cached call, one per id for ``@cached_many``."""
    if hasattr(function, "cache_keys"):  # @cached_many: {id: key}
        return list(function.cache_keys(*args).values())
    return [function.cache_key(*args)]
