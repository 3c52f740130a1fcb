"""Invalidate cache entries from a DynamoDB Streams event source.

When the data behind a cached function changes in a DynamoDB table, the
table's stream tells a Lambda function which items changed. This module turns
that into invalidations: you map a changed item to the cached calls it feeds,
and the handler deletes those entries from every tier. A record whose
invalidation fails is reported in ``batchItemFailures`` so Lambda retries it
(``FunctionResponseTypes: [ReportBatchItemFailures]`` on the event source)
instead of the entry staying stale until its TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
"""``(cached_function, args)``: the cached call ``cached_function(*args)`` to invalidate."""


def _plain(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    from boto3.dynamodb.types import TypeDeserializer  # the Lambda runtime has boto3

    deserialize = TypeDeserializer().deserialize
    return {name: deserialize(value) for name, value in image.items()}


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
    ``(cached_function, args)`` pairs. Records are handled in stream order; at
    the first one that fails (in ``affected`` or in a tier), the handler stops
    and reports it, so Lambda retries from that record on.

    Example:
        >>> @cached_tiered(ttl=300)  # doctest: +SKIP
        ... def product(product_id: str) -> dict: ...
        >>> handler = streams_invalidator(  # doctest: +SKIP
        ...     lambda change: [(product, (change.image["id"],))]
        ... )
    """

    def handler(event: Mapping[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
        for record in event.get("Records", []):
            sequence = record.get("dynamodb", {}).get("SequenceNumber", "")
            try:
                change = change_of(record)
                for function, args in affected(change):
                    function.cache.delete(function.cache_key(*args), strict=True)
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
