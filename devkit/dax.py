"""The real ``amazondax.AmazonDaxClient`` with its cluster's nodes served by the moto server.

A DAX node speaks a binary CBOR protocol (port 8111) that moto does not; what
``amazon-dax-client`` offers as a seam is ``Cluster(client_factory=...)``, the
factory of per-node clients (``DaxClient`` over a socket ``TubePool``). Only that
factory is replaced here: a node forwards each DynamoDB operation, with the
parameters ``AmazonDaxClient`` built and validated, over HTTP to moto, and turns
moto's errors into the ``DaxServiceError`` a DAX node's error codes produce.
Everything above the node runs as shipped: ``AmazonDaxClient`` (its method
surface, without ``exceptions`` and with ``get_paginator`` raising
``NotImplementedError``; its request validation, retry handler and events), the
cluster's endpoint discovery, router and health checks.

What this cannot show is DAX's item cache: reads here are as consistent as
DynamoDB's own, where a real cluster may serve an eventually consistent read from
its cache.

Example:
    >>> with moto_dax_client(moto.endpoint) as dax:  # doctest: +SKIP
    ...     dax.put_item(TableName="t", Item={"pk": {"S": "k"}})
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

OPERATIONS = (
    "get_item",
    "put_item",
    "delete_item",
    "update_item",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "scan",
    "query",
)


def _dax_codes() -> dict[str, list[int]]:
    """DynamoDB error code -> the DAX error-code path that a DAX node sends for it."""
    from amazondax.DaxError import ERROR_MAP

    codes: dict[str, list[int]] = {}

    def walk(table: dict[int, Any], path: list[int]) -> None:
        for number, entry in table.items():
            if isinstance(entry, dict):
                walk(entry, [*path, number])
            else:
                name = entry[0] if isinstance(entry, tuple) else entry
                codes.setdefault(name, [*path, number])

    walk(ERROR_MAP, [4])  # 4: a DynamoDB error, as DaxError._pick_error_code expects
    return codes


class MotoNode:
    """One "DAX node": the per-node client interface, answered by moto over HTTP."""

    def __init__(
        self,
        scheme: str,
        hostname: str,
        sockaddr: tuple[str, int],
        ip_version: int,
        on_operation_success: Callable[[], None] | None = None,
        on_operation_failure: Callable[[], None] | None = None,
    ) -> None:
        import botocore.session
        from botocore.config import Config

        self.address, self.port = sockaddr[0], int(sockaddr[1])
        self.ip_version = ip_version
        self.on_operation_success = on_operation_success or (lambda: None)
        self.on_operation_failure = on_operation_failure or (lambda: None)
        self._codes = _dax_codes()
        self._http = botocore.session.get_session().create_client(
            "dynamodb",
            endpoint_url=f"http://{self.address}:{self.port}",
            config=Config(retries={"total_max_attempts": 1}),
        )
        for operation in OPERATIONS:
            setattr(self, operation, functools.partial(self._forward, operation))

    def endpoints(self) -> list[dict[str, Any]]:
        """The cluster's one node, a leader, at the moto server's address."""
        from amazondax.Constants import Role

        return [
            {
                "node": 1,
                "address": self.address,
                "port": self.port,
                "role": Role.LEADER,
                "az": "local",
                "leader_session_id": 1,
                "ip_version": self.ip_version,
            }
        ]

    def _forward(self, operation: str, **params: Any) -> dict[str, Any]:
        from amazondax.DaxError import DaxServiceError
        from botocore.exceptions import ClientError

        try:
            response: dict[str, Any] = getattr(self._http, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            code = error.get("Code", "")
            # A DAX node sends error-code paths, not names; the client maps them back. A
            # cancelled transaction's reasons travel beside them, and the client keeps them
            # in exc.cancellation_reasons, not in exc.response as boto3 does.
            raise DaxServiceError(
                exc.operation_name,
                error.get("Message", ""),
                self._codes.get(code, [3, 37, 54]),  # unknown: an internal server error
                meta.get("RequestId"),
                None,
                meta.get("HTTPStatusCode"),
                exc.response.get("CancellationReasons"),
            ) from None
        response.pop("ResponseMetadata", None)
        return response

    def close(self) -> None:
        self._http.close()


@contextmanager
def moto_dax_client(endpoint: str, region: str = "us-east-1") -> Iterator[Any]:
    """An ``AmazonDaxClient`` whose discovery endpoint and nodes are the moto server.

    ``endpoint`` is moto's ``http://host:port``; the client is given
    ``dax://host:port``, resolves it as it would a cluster's discovery endpoint,
    and reaches the node it finds there through :class:`MotoNode`.
    """
    from urllib.parse import urlsplit

    from amazondax import AmazonDaxClient

    # The package exports the class under its module's name, so import the module.
    module = importlib.import_module("amazondax.AmazonDaxClient")
    cluster = module.Cluster
    setattr(module, "Cluster", functools.partial(cluster, client_factory=_factory))  # noqa: B010
    parts = urlsplit(endpoint)
    try:
        client = AmazonDaxClient(
            endpoint_url=f"dax://{parts.hostname}:{parts.port}",
            region_name=region,
            ip_discovery="ipv4",
        )
    finally:
        # Only this construction sees the replaced factory.
        setattr(module, "Cluster", cluster)  # noqa: B010
    try:
        yield client
    finally:
        client.close()


def _factory(
    scheme: str, hostname: str, sockaddr: tuple[str, int], ip_version: int, **callbacks: Any
) -> MotoNode:
    return MotoNode(scheme, hostname, sockaddr, ip_version, **callbacks)


__all__ = ["MotoNode", "moto_dax_client"]
