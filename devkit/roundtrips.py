"""Round trips counted in the calling process: what a cache operation costs the network.

Counting is behaviour, not timing: tests assert these counts and ``make bench``
prints them beside the timings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

HANDSHAKE = frozenset({"HELLO", "AUTH", "CLIENT", "SELECT", "PING", "READONLY"})


def _command_names(packed: object) -> list[str]:
    """The command names in bytes redis-py sends (RESP arrays of bulk strings)."""
    data = packed if isinstance(packed, bytes) else b"".join(packed)  # type: ignore[arg-type]
    names: list[str] = []
    at = 0
    while at < len(data) and data[at : at + 1] == b"*":
        end = data.index(b"\r\n", at)
        count = int(data[at + 1 : end])
        at = end + 2
        for index in range(count):
            end = data.index(b"\r\n", at)
            size = int(data[at + 1 : end])
            if index == 0:
                names.append(data[end + 2 : end + 2 + size].decode().upper())
            at = end + 2 + size + 2
    return names


@contextlib.contextmanager
def redis_round_trips(handshakes: bool = False) -> Iterator[list[list[str]]]:
    """Every round trip redis-py makes in this process meanwhile, as the commands it carried.

    A pipeline or a script is one round trip; connection handshakes are left out
    unless ``handshakes`` (then nothing sent to a server is missed).
    """
    from redis.connection import AbstractConnection

    trips: list[list[str]] = []
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        names = _command_names(command)
        if names and (handshakes or names[0] not in HANDSHAKE):
            trips.append(names)
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    with mock.patch.object(AbstractConnection, "send_packed_command", counting):
        yield trips


@contextlib.contextmanager
def redis_round_trips_by_node() -> Iterator[dict[str, int]]:
    """Round trips redis-py makes in this process meanwhile, per server (``host:port``).

    As :func:`redis_round_trips`, connection handshakes left out: what a cluster's
    batch costs each node.
    """
    from redis.connection import AbstractConnection

    counts: dict[str, int] = {}
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        names = _command_names(command)
        if names and names[0] not in HANDSHAKE:
            where = f"{getattr(self, 'host', '?')}:{getattr(self, 'port', '?')}"
            counts[where] = counts.get(where, 0) + 1
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    with mock.patch.object(AbstractConnection, "send_packed_command", counting):
        yield counts


def dynamodb_calls(client: Any) -> list[str]:
    """The operations ``client`` calls from now on, in order (retries of one call count once)."""
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls
