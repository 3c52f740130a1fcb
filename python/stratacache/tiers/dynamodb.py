"""L3: a DynamoDB table with native TTL, the durable tier.

``boto3`` is imported when the first client is built, never by ``import
stratacache``. boto3's own settings apply (``AWS_REGION``,
``AWS_ENDPOINT_URL_DYNAMODB``, credentials), so the same code runs against
AWS, a local endpoint or moto.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias

from stratacache.breaker import CircuitBreaker, make_breaker
from stratacache.config import (
    ENV_DYNAMODB_TIMEOUT,
    ENV_KEY_PREFIX,
    ENV_TABLE_KEY_ATTRIBUTE,
    ENV_TABLE_NAME,
    MAX_TTL,
    check_positive_int,
    check_ttl,
    env_str,
    resolve_max_value_bytes,
    resolve_region,
    resolve_timeout,
)
from stratacache.errors import ConfigurationError, PartialReadError, SetupError, StratacacheError
from stratacache.keys import MAX_KEY_LENGTH
from stratacache.tiers.base import (
    ANY,
    FOREIGN,
    MISS,
    VERSION_OFFSET,
    VERSION_SIZE,
    Capabilities,
    Foreign,
    Missing,
)
from stratacache.tiers.collector import quiet_build
from stratacache.tiers.hints import explain_failures

DynamoDBClient: TypeAlias = Any
"""A boto3 ``dynamodb`` client (typed as ``Any`` so boto3 stays optional)."""

_CAPABILITIES = Capabilities(versioned=True, counter=True)
VERSION_ATTRIBUTE: Final = "ver"
TRANSACTION_LIMIT: Final = 100
TRANSACTION_BYTES: Final = 4_000_000
"""A ``TransactWriteItems`` carries at most 4 MB of items (decimal, under DynamoDB's 4 MiB)."""
BATCH_GET_LIMIT: Final = 100
BATCH_WRITE_LIMIT: Final = 25
"""Items per ``BatchWriteItem``; 25 items of at most 400 KB keep it under its 16 MB too."""
DEFAULT_TIMEOUT: Final = 0.5
ITEM_LIMIT: Final = 400_000
"""DynamoDB's largest item (400 KB), attribute names and values together; taken as decimal
kilobytes, a little under what DynamoDB accepts, so an item at the limit is never refused."""
PING_KEY: Final = "#stratacache-ping"
"""What :meth:`DynamoDBTier.ping` reads: no entry key starts with ``#``."""
_NUMBER_SIZE: Final = 21  # the most a DynamoDB number attribute can take
_BATCH_ATTEMPTS: Final = 4  # unprocessed items are retried for 20+40+80 ms, then given up
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def _counter(item: Mapping[str, Any] | None) -> int:
    try:
        return int(item["counter"]["N"]) if item and "counter" in item else 0
    except (KeyError, TypeError, ValueError):
        return 0  # not a counter of ours: start again (bump_counter's floor keeps it rising)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it, or a little more: names plus values.

    A Number is taken at its largest (21 bytes); other types this tier writes are
    their bytes.

    Example:
        >>> item_size({"pk": {"S": "key"}, "v": {"B": b"12345"}})
        11
    """
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, data),) = value.items()
        if kind == "N":
            size += _NUMBER_SIZE
        elif kind == "S":
            size += len(data.encode())
        elif kind == "B":
            size += len(data)
        else:  # not written by this tier: counted as its text, generously
            size += len(repr(data).encode())
    return size


def _sized_chunks(
    entries: Sequence[Any], sizes: Sequence[int], count: int, limit: int
) -> Iterator[Sequence[Any]]:
    """``entries`` in order, at most ``count`` and ``limit`` bytes (by ``sizes``) to a chunk."""
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start == count or total + size > limit):
            yield entries[start:index]
            start, total = index, 0
        total += size
    if start < len(entries):
        yield entries[start:]


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code an exception carries, or ``None``.

    boto3's client raises ``ClientError`` subclasses made at run time
    (``client.exceptions.ConditionalCheckFailedException``); DAX's
    ``AmazonDaxClient`` raises ``DaxServiceError`` and has no ``exceptions``
    attribute. Both carry ``response["Error"]["Code"]``, the one shape every
    boto3-compatible client shares.

    Example:
        >>> from botocore.exceptions import ClientError
        >>> error_code(ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem"))
        'ThrottlingException'
    """
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, Mapping) else None
    code = error.get("Code") if isinstance(error, Mapping) else None
    return code if isinstance(code, str) else None


def cancellation_reasons(exc: BaseException) -> list[Mapping[str, Any]]:
    """Why each item of a cancelled transaction failed, wherever the client puts it.

    boto3 keeps them in ``exc.response["CancellationReasons"]``; DAX's client in
    ``exc.cancellation_reasons``. Each reason comes back as a mapping with a ``Code``,
    whether the client gave a mapping, an object with a ``code``, or a
    ``(code, message, item)`` sequence.

    Example:
        >>> from botocore.exceptions import ClientError
        >>> error = ClientError({"Error": {"Code": "TransactionCanceledException"},
        ...     "CancellationReasons": [{"Code": "None"}]}, "TransactWriteItems")
        >>> cancellation_reasons(error)
        [{'Code': 'None'}]
    """
    response = getattr(exc, "response", None)
    reasons = response.get("CancellationReasons") if isinstance(response, Mapping) else None
    if not reasons:
        reasons = getattr(exc, "cancellation_reasons", None)
    if not reasons or isinstance(reasons, (str, bytes, Mapping)):
        return []
    return [_reason(reason) for reason in reasons]


def _reason(reason: Any) -> Mapping[str, Any]:
    if isinstance(reason, Mapping):
        code = reason.get("Code", reason.get("code"))
    elif isinstance(reason, (list, tuple)):
        code = reason[0] if reason else None
    else:
        code = getattr(reason, "code", None) or getattr(reason, "Code", None)
    return {"Code": code if isinstance(code, str) else "None"}


def _table_name(given: str | None) -> str:
    """The table's name, from the argument or ``STRATACACHE_TABLE_NAME``, checked."""
    table = given if given is not None else env_str(ENV_TABLE_NAME)
    if not table:
        raise ConfigurationError(f"DynamoDBTier needs table_name=... or {ENV_TABLE_NAME}")
    if not _TABLE_NAME.match(table):
        setting = "table_name" if given is not None else ENV_TABLE_NAME
        raise ConfigurationError(
            f"{setting} must be 3-255 characters of letters, digits, '_', '-', '.', got {table!r}"
        )
    return table


class DynamoDBTier:
    """A DynamoDB tier: one item per entry, ``{pk: key, v: envelope, ttl: epoch seconds}``.

    Items past their ``ttl`` are misses even before DynamoDB's lazy deletion removes them.

    Args:
        table_name: the table (default ``STRATACACHE_TABLE_NAME``).
        client: a ready boto3 DynamoDB client; reused as it is.
        ttl: this tier's own lifetime in seconds; wins over the cache's TTL.
        key_attribute: the partition key attribute, a String (default
            ``STRATACACHE_TABLE_KEY_ATTRIBUTE`` or ``pk``).
        key_prefix: put before every key so cache items stay apart from other
            items of a shared table (default ``STRATACACHE_KEY_PREFIX`` or none).
        sort_key: ``(attribute, constant)`` for a table with a String sort key.
        ttl_attribute, value_attribute: attribute names (``ttl``, ``v``).
        consistent_read: strongly consistent reads (twice the read cost).
        connect_timeout, read_timeout, max_attempts: botocore settings of the client
            built here (timeouts: ``STRATACACHE_DYNAMODB_TIMEOUT`` or 0.5 s each);
            short and without retries by default, so one
            cache call waits at most ``connect_timeout + read_timeout``; a
            throttled or failed call is a miss, and the circuit breaker stops
            calling a table that keeps failing.
        max_value_bytes: larger envelopes are not stored here (counted as an
            error, logged); at most what fits DynamoDB's 400 KB item limit.
        breaker: ``True`` for a circuit breaker with the environment's settings,
            ``False`` for none, or a :class:`~stratacache.breaker.CircuitBreaker`.
        name: the metric dimension value.
        clock: wall clock in epoch seconds; inject a fake one in tests.

    Example:
        >>> tier = DynamoDBTier("my-cache-table", ttl=86400)  # connects on first use
    """

    stores_bytes = True
    capabilities = _CAPABILITIES

    def __init__(
        self,
        table_name: str | None = None,
        *,
        client: DynamoDBClient | None = None,
        ttl: float | None = None,
        key_attribute: str | None = None,
        key_prefix: str | None = None,
        sort_key: tuple[str, str] | None = None,
        ttl_attribute: str = "ttl",
        value_attribute: str = "v",
        consistent_read: bool = False,
        region_name: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int = 1,
        max_value_bytes: int | None = None,
        breaker: CircuitBreaker | bool = True,
        name: str = "L3",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = _table_name(table_name)
        self.key_attribute = key_attribute or env_str(ENV_TABLE_KEY_ATTRIBUTE) or "pk"
        key_setting = "key_attribute" if key_attribute else ENV_TABLE_KEY_ATTRIBUTE
        attributes = {
            key_setting: self.key_attribute,
            "ttl_attribute": ttl_attribute,
            "value_attribute": value_attribute,
            "version attribute": VERSION_ATTRIBUTE,
        }
        if sort_key is not None:
            attributes["sort_key"] = sort_key[0]
        for setting, attribute in attributes.items():
            if not _ATTRIBUTE_NAME.match(attribute):
                raise ConfigurationError(f"{setting} is not a valid attribute name: {attribute!r}")
        if len(set(attributes.values())) != len(attributes):
            raise ConfigurationError(f"attribute names must differ, got {attributes}")
        self.name = name
        self.ttl = check_ttl(ttl)
        self.key_prefix = key_prefix if key_prefix is not None else env_str(ENV_KEY_PREFIX) or ""
        self.sort_key = sort_key
        self.ttl_attribute = ttl_attribute
        self.value_attribute = value_attribute
        self.consistent_read = consistent_read
        self.region_name = region_name
        self.connect_timeout = resolve_timeout(
            connect_timeout, "connect_timeout", ENV_DYNAMODB_TIMEOUT, DEFAULT_TIMEOUT
        )
        self.read_timeout = resolve_timeout(
            read_timeout, "read_timeout", ENV_DYNAMODB_TIMEOUT, DEFAULT_TIMEOUT
        )
        self.max_attempts = check_positive_int(max_attempts, "max_attempts")
        self.clock = clock
        self.breaker = make_breaker(breaker, name)
        # Room left in an item for the envelope once the longest key and the other
        # attributes are counted, so a value under the limit is never refused by DynamoDB.
        overhead = (
            sum(len(attribute.encode()) for attribute in attributes.values())
            + len(self.key_prefix.encode())
            + MAX_KEY_LENGTH
            + _NUMBER_SIZE
            + (len(sort_key[1].encode()) if sort_key is not None else 0)
        )
        room = ITEM_LIMIT - overhead
        limit = resolve_max_value_bytes(max_value_bytes)
        self.max_value_bytes = room if limit is None else min(limit, room)
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._no_region: SetupError | None = None

    def __repr__(self) -> str:
        return f"DynamoDBTier(name={self.name!r}, table={self.table_name!r}, ttl={self.ttl})"

    @property
    def client(self) -> DynamoDBClient:
        """The boto3 client, built on first use and kept for the environment's life."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    with quiet_build():  # imports and model loading: no collections
                        self._client = self._connect()
                client = self._client
        return client

    def _connect(self) -> DynamoDBClient:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoRegionError

        if self._no_region is not None:  # found once; the environment will not grow a region
            raise self._no_region.with_traceback(None)
        config = Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
        )
        # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda and the
        # newer SDKs name, and what botocore's own error message asks for.
        region = resolve_region(self.region_name)
        try:
            return boto3.client("dynamodb", region_name=region, config=config)
        except NoRegionError:
            self._no_region = SetupError(
                f"DynamoDB table {self.table_name!r}: no AWS region is set. Set AWS_REGION "
                "(or AWS_DEFAULT_REGION) to the table's region, or pass region_name=...; "
                "Lambda sets both, so this happens outside Lambda only"
            )
            raise self._no_region from None

    # ------------------------------------------------------------ items

    def _key(self, key: str) -> dict[str, Any]:
        item: dict[str, Any] = {self.key_attribute: {"S": self.key_prefix + key}}
        if self.sort_key is not None:
            item[self.sort_key[0]] = {"S": self.sort_key[1]}
        return item

    def _item(self, key: str, value: object, ttl: float | None) -> dict[str, Any]:
        item = self._key(key)
        item[self.value_attribute] = {"B": value}
        if isinstance(value, bytes):
            item[VERSION_ATTRIBUTE] = {"B": value[VERSION_OFFSET : VERSION_OFFSET + VERSION_SIZE]}
        if ttl is not None:
            # Clamped like Redis's PX: a lifetime read back from a stored entry may
            # not have gone through the MAX_TTL check of a setting.
            item[self.ttl_attribute] = {"N": str(math.ceil(self.clock() + min(ttl, MAX_TTL)))}
        return item

    def _expired(self, item: Mapping[str, Any]) -> bool:
        """Past its ``ttl``; DynamoDB's TTL ignores a ``ttl`` that is not a Number, and so do we."""
        expiry = item.get(self.ttl_attribute)
        return isinstance(expiry, Mapping) and float(expiry.get("N", "inf")) <= self.clock()

    def _live(self, item: Mapping[str, Any] | None) -> bool:
        return item is not None and self.value_attribute in item and not self._expired(item)

    def _raw(self, item: Mapping[str, Any] | None) -> object | Missing:
        """What an item holds: our bytes, ``MISS`` (absent or past its ttl) or ``Foreign``.

        A live item without our value (another application's, in a shared table) is
        ``Foreign`` too: it is a counted miss, and the next write replaces it.
        """
        if not item or self._expired(item):
            return MISS
        stored = item.get(self.value_attribute)
        version = item.get(VERSION_ATTRIBUTE, {}).get("B")
        if not isinstance(stored, Mapping) or not isinstance(stored.get("B"), bytes):
            return Foreign(f"an item whose {self.value_attribute!r} is not Binary", version)
        value: bytes = stored["B"]
        if version != value[VERSION_OFFSET : VERSION_OFFSET + VERSION_SIZE]:
            return Foreign(f"an item whose {VERSION_ATTRIBUTE!r} does not match its value", version)
        return value

    def _unprefix(self, stored: str) -> str:
        return stored[len(self.key_prefix) :]

    # ------------------------------------------------------------ protocol

    def get(self, key: str) -> object | Missing:
        return self._raw(
            self.client.get_item(
                TableName=self.table_name, Key=self._key(key), ConsistentRead=self.consistent_read
            ).get("Item")
        )

    def get_many(self, keys: Sequence[str]) -> list[object | Missing]:
        """``BatchGetItem`` in chunks of 100, unprocessed keys retried.

        When keys are still unread after the retries, or a later chunk fails, the items
        that did arrive are not thrown away: :class:`~stratacache.errors.PartialReadError`
        carries them (``found``, aligned with ``keys``) and the number of distinct keys
        left unread (``failed``).
        """
        found: dict[str, object] = {}
        unique = list(dict.fromkeys(keys))
        unread: set[str] = set()

        def collect(response: Mapping[str, Any]) -> None:
            for item in response.get("Responses", {}).get(self.table_name, []):
                raw = self._raw(item)
                if raw is not MISS:
                    found[self._unprefix(item[self.key_attribute]["S"])] = raw

        for number, chunk in enumerate(_chunks(unique, BATCH_GET_LIMIT)):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [self._key(key) for key in chunk],
                    "ConsistentRead": self.consistent_read,
                }
            }
            try:
                left = self._batch(self.client.batch_get_item, request, "UnprocessedKeys", collect)
            except Exception as exc:
                if number == 0 and not found:
                    raise  # nothing arrived: an ordinary tier failure
                rest = unique[number * BATCH_GET_LIMIT :]
                unread.update(key for key in rest if key not in found)
                raise self._partial(keys, found, unread, type(exc).__name__) from exc
            for stored_key in left.get(self.table_name, {}).get("Keys", []):
                unread.add(self._unprefix(stored_key[self.key_attribute]["S"]))
        if unread:
            raise self._partial(keys, found, unread, "keys left unprocessed after retries")
        return [found.get(key, MISS) for key in keys]

    def _partial(
        self, keys: Sequence[str], found: Mapping[str, object], unread: set[str], why: str
    ) -> PartialReadError:
        return PartialReadError(
            f"DynamoDB batch read of {self.table_name!r} answered {len(set(keys)) - len(unread)} "
            f"of {len(set(keys))} keys ({why})",
            [found.get(key, MISS) for key in keys],
            len(unread),
        )

    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.client.put_item(TableName=self.table_name, Item=self._item(key, value, ttl))

    def set_many(self, items: Mapping[str, object], ttl: float | None) -> None:
        requests = [{"PutRequest": {"Item": self._item(k, v, ttl)}} for k, v in items.items()]
        self._write(requests)

    def delete(self, key: str) -> bool:
        response = self.client.delete_item(
            TableName=self.table_name, Key=self._key(key), ReturnValues="ALL_OLD"
        )
        return self._live(response.get("Attributes"))

    def delete_many(self, keys: Iterable[str]) -> int:
        unique = list(dict.fromkeys(keys))
        self._write([{"DeleteRequest": {"Key": self._key(key)}} for key in unique])
        return len(unique)

    def remaining_ttl(self, key: str) -> float | None | Missing:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(key), ConsistentRead=self.consistent_read
        ).get("Item")
        if item is None or not self._live(item):
            return MISS
        expiry = item.get(self.ttl_attribute)
        return None if expiry is None else float(expiry["N"]) - self.clock()

    def clear(self, prefix: str = "") -> int:
        """Delete this tier's items under ``prefix``. Scans the table: for maintenance only."""
        # Paged by LastEvaluatedKey rather than get_paginator("scan"), which DAX and other
        # boto3-shaped clients do not have.
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "ProjectionExpression": "#k",
            "FilterExpression": "begins_with(#k, :p)",
            "ExpressionAttributeNames": {"#k": self.key_attribute},
            "ExpressionAttributeValues": {":p": {"S": self.key_prefix + prefix}},
        }
        keys: list[str] = []
        while True:
            page = self.client.scan(**request)
            keys += [
                self._unprefix(item[self.key_attribute]["S"]) for item in page.get("Items", [])
            ]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
            request["ExclusiveStartKey"] = start
        return self.delete_many(keys)

    def ping(self) -> bool:
        """Build the client and open a connection now: one ``GetItem`` of a key no entry uses.

        ``GetItem`` is a call the tier makes anyway (no extra IAM permission) and goes to
        the same endpoint as every later one; it costs one read request unit.

        Example (needs the table; the integration tests run it)::

            DynamoDBTier("my-cache-table").ping()  # True
        """
        self.get(PING_KEY)
        return True

    def close(self) -> None:
        """Drop the client built here (a passed-in client is left to its owner)."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------ leases and generations
    # Capability ``counter``: a counter that makes a whole namespace unreachable at once.

    def read_counter(self, key: str) -> int:
        """The counter's value, 0 when it was never bumped."""
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(key), ConsistentRead=True
        ).get("Item")
        return _counter(item)

    def bump_counter(self, key: str, floor: int = 0) -> int:
        """Add one atomically (``UpdateItem ADD``), to at least ``floor``; return the new value."""
        response = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(key),
            UpdateExpression="ADD #c :one",
            ExpressionAttributeNames={"#c": "counter"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        value = int(response["Attributes"]["counter"]["N"])
        if value >= floor:
            return value
        try:  # the counter was lost (a restored table): never let it go back
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="SET #c = :floor",
                ConditionExpression="#c < :floor",
                ExpressionAttributeNames={"#c": "counter"},
                ExpressionAttributeValues={":floor": {"N": str(floor)}},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self.read_counter(key)
        return floor

    def get_with_counter(self, key: str, counter: str) -> tuple[object | Missing, int | None]:
        """The entry and the counter in one ``BatchGetItem``, strongly consistent (as
        :meth:`read_counter`: a generation read through DAX's item cache could go back)."""
        wanted = {self.key_prefix + key: key, self.key_prefix + counter: counter}
        request = {
            self.table_name: {
                "Keys": [self._key(key), self._key(counter)],
                "ConsistentRead": True,
            }
        }
        found: dict[str, Mapping[str, Any]] = {}

        def collect(response: Mapping[str, Any]) -> None:
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[wanted[item[self.key_attribute]["S"]]] = item

        if self._batch(self.client.batch_get_item, request, "UnprocessedKeys", collect):
            raise PartialReadError("DynamoDB left the entry or its generation unread", [MISS], 1)
        item = found.get(counter)
        return self._raw(found.get(key)), None if item is None else _counter(item)

    # ------------------------------------------------------------ conditional writes

    def _put(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> dict[str, Any]:
        """A ``Put`` of ``blob`` that only happens while the item is still ``expect``."""
        item = self._key(key)
        item[self.value_attribute] = {"B": blob}
        item[VERSION_ATTRIBUTE] = {"B": blob[VERSION_OFFSET : VERSION_OFFSET + VERSION_SIZE]}
        if keep is not None:
            item[self.ttl_attribute] = {"N": str(math.ceil(self.clock() + keep))}
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if expect == ANY:
            return put
        if expect is None:  # nothing there, or only an item past its ttl
            put["ConditionExpression"] = "attribute_not_exists(#k) OR #t < :now"
            put["ExpressionAttributeNames"] = {"#k": self.key_attribute, "#t": self.ttl_attribute}
            put["ExpressionAttributeValues"] = {":now": {"N": str(int(self.clock()))}}
        elif expect == FOREIGN:  # no version of ours: none at all, or not Binary
            put["ConditionExpression"] = (
                "attribute_not_exists(#ver) OR NOT attribute_type(#ver, :b)"
            )
            put["ExpressionAttributeNames"] = {"#ver": VERSION_ATTRIBUTE}
            put["ExpressionAttributeValues"] = {":b": {"S": "B"}}
        else:
            put["ConditionExpression"] = "#ver = :ver"
            put["ExpressionAttributeNames"] = {"#ver": VERSION_ATTRIBUTE}
            put["ExpressionAttributeValues"] = {":ver": {"B": expect}}
        return put

    def swap(
        self, key: str, blob: bytes, keep: float | None, expect: bytes | None
    ) -> tuple[bool, object | Missing]:
        """Conditional ``PutItem``: whether it was written, and the item it replaced or found."""
        try:
            response = self.client.put_item(
                **self._put(key, blob, keep, expect),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False, self._raw(getattr(exc, "response", {}).get("Item"))
        return True, self._raw(response.get("Attributes"))

    def swap_many(
        self, items: Mapping[str, tuple[bytes, bytes | None, float | None]]
    ) -> list[bool]:
        """Conditional puts in ``TransactWriteItems`` of at most 100 items and 4 MB; those
        whose condition failed are left out and the rest of their transaction written again."""
        done: dict[str, bool] = {}
        keys = list(items)
        puts = {k: {"Put": self._put(k, items[k][0], items[k][2], items[k][1])} for k in keys}
        sizes = [item_size(puts[k]["Put"]["Item"]) for k in keys]
        for chunk in _sized_chunks(keys, sizes, TRANSACTION_LIMIT, TRANSACTION_BYTES):
            pending = list(chunk)
            while pending:
                try:
                    self.client.transact_write_items(TransactItems=[puts[k] for k in pending])
                except Exception as exc:
                    reasons = cancellation_reasons(exc)
                    if error_code(exc) != "TransactionCanceledException" or not reasons:
                        raise
                    failed = {
                        key
                        for key, reason in zip(pending, reasons, strict=False)
                        if reason.get("Code") == "ConditionalCheckFailed"
                    }
                    if not failed:
                        raise
                    done.update(dict.fromkeys(failed, False))
                    pending = [key for key in pending if key not in failed]
                    continue
                done.update(dict.fromkeys(pending, True))
                pending = []
        return [done.get(key, False) for key in keys]

    def delete_if(self, key: str, expect: bytes) -> bool:
        """Conditional ``DeleteItem``: only while the item is still version ``expect``."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=self._key(key),
                ConditionExpression="#ver = :ver",
                ExpressionAttributeNames={"#ver": VERSION_ATTRIBUTE},
                ExpressionAttributeValues={":ver": {"B": expect}},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # ------------------------------------------------------------ batches

    def _write(self, requests: list[dict[str, Any]]) -> None:
        """``BatchWriteItem`` in chunks of 25; every chunk is tried even if one leaves items.

        Items DynamoDB still leaves unprocessed after the retries are counted and reported
        in one error at the end, so one throttled chunk does not stop the others.
        """
        left_over = 0
        for chunk in _chunks(requests, BATCH_WRITE_LIMIT):
            request = {self.table_name: list(chunk)}
            left = self._batch(self.client.batch_write_item, request, "UnprocessedItems")
            left_over += len(left.get(self.table_name, []))
        if left_over:
            raise StratacacheError(
                f"DynamoDB left {left_over} of {len(requests)} batch writes to "
                f"{self.table_name!r} unprocessed after {_BATCH_ATTEMPTS} attempts"
            )

    def _batch(
        self,
        call: Callable[..., Any],
        request: dict[str, Any],
        unprocessed: str,
        collect: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Call a batch API, retrying what DynamoDB left unprocessed with backoff.

        Each response goes to ``collect``; returns what is still unprocessed after
        the last attempt (empty when everything went through).
        """
        delay = 0.02
        for attempt in range(1, _BATCH_ATTEMPTS + 1):
            response: dict[str, Any] = call(RequestItems=request)
            if collect is not None:
                collect(response)
            request = response.get(unprocessed) or {}
            if not request or attempt == _BATCH_ATTEMPTS:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return request


# ---------------------------------------------------------------- errors that say what to fix

_KEY_SCHEMA_MISMATCH = re.compile(
    r"key element does not match the schema|Missing the key|Type mismatch for key"
    r"|^Validation Exception$"  # what moto answers for a key of the wrong shape
)


def _explain(tier: DynamoDBTier, exc: Exception) -> SetupError | None:
    """A :class:`SetupError` for a missing table or a table keyed otherwise, else ``None``.

    The message is the same whichever call failed (DynamoDB words it differently per
    operation), so that it is logged once; DynamoDB's own error is its cause.
    """
    code = error_code(exc)
    if code == "ResourceNotFoundException":
        region = getattr(getattr(tier._client, "meta", None), "region_name", None)
        where = f" in region {region}" if region else ""
        return SetupError(
            f"DynamoDB table {tier.table_name!r} was not found{where}: set "
            f"{ENV_TABLE_NAME} to the cache table's name, or create it with a String "
            f"partition key {tier.key_attribute!r} (template.yaml's CacheTable)"
        )
    response = getattr(exc, "response", None)
    message = str(response.get("Error", {}).get("Message", "")) if response else ""
    if code == "ValidationException" and _KEY_SCHEMA_MISMATCH.search(message):
        if tier.sort_key is None:
            expected = f"a String partition key {tier.key_attribute!r} and no sort key"
        else:
            expected = (
                f"a String partition key {tier.key_attribute!r} and a String sort key "
                f"{tier.sort_key[0]!r}"
            )
        return SetupError(
            f"DynamoDB table {tier.table_name!r} does not have the key schema stratacache "
            f"uses (ValidationException): it expects {expected}. Use a table made for the "
            "cache, or "
            f"set {ENV_TABLE_KEY_ATTRIBUTE} (key_attribute=) to the table's String partition "
            "key and pass sort_key=(attribute, value) for a table with a String sort key"
        )
    return None


explain_failures(
    DynamoDBTier,
    (
        "get",
        "get_many",
        "set",
        "set_many",
        "delete",
        "delete_many",
        "remaining_ttl",
        "clear",
        "read_counter",
        "bump_counter",
        "get_with_counter",
        "swap",
        "swap_many",
        "delete_if",
    ),
    _explain,
)
