"""How :class:`~stratacache.tiers.redis.RedisTier` talks to a Redis Cluster: one pipeline per node.

redis-py's ``RedisCluster`` sends a script once per hash slot (a round trip
each), and when the cluster is down it sleeps 0.25 s, rebuilds its view of the
cluster and tries again, so one cache call can cost several timeouts. Here a
batch becomes one pipeline per node that owns some of its keys (scripts stay
within one key, so within one slot), sent once; a node's answer of ``MOVED``
or ``ASK`` (a slot that changed hands) is followed once, and any other failure
is the call's answer at once, with no sleep. After a connection failure the
cluster's layout is read again (at most once a second) before the next call.

Imported by the tier when it builds a cluster client, never by ``import stratacache``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

Command = tuple[Any, ...]
"""A Redis command as its arguments, the name first: ``("GET", name)``."""

_REFRESH_INTERVAL = 1.0  # seconds between two reads of the cluster's layout after failures
# Commands whose only key is their first argument, routed straight to its node.
_ONE_KEY = frozenset({"GET", "SET", "PTTL", "INCR", "DEL", "UNLINK"})


class ClusterRoutes:
    """Send commands to the primary that owns each key's slot, one pipeline per node.

    Nodes are asked one after the other; once one has made the call wait a timeout,
    the nodes not yet asked are not (their commands answer with that timeout), and
    nodes that failed lately are asked last.

    ``cluster`` is a ``redis.cluster.RedisCluster``; its view of the slots and its
    per-node clients are used, its own retry loop is not.

    Example (needs a cluster; ``tests/integration/test_cluster_batches.py`` runs it)::

        routes = ClusterRoutes(RedisCluster.from_url("redis://node:6379"))
        routes.run([("a", ("GET", "a")), ("b", ("GET", "b"))])  # [b'1', None]
    """

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self._loaded: set[tuple[str, str]] = set()  # (node, script sha) known to be loaded
        self._shas: dict[str, str] = {}
        self._stale: str | None = None  # the node whose failure calls for a new layout
        self._refreshed = 0.0
        self._suspects: set[str] = set()  # nodes whose last answer was a failure: asked last
        self._lock = threading.Lock()

    def run(self, commands: Sequence[tuple[str | bytes, Command]]) -> list[Any]:
        """Answer each ``(key, command)``, aligned; a failed command's answer is its exception.

        ``EVAL`` commands go as ``EVALSHA``, their script loaded in the same pipeline
        the first time a node sees it.
        """
        self._refresh_if_stale()
        from redis.exceptions import AskError, MovedError, NoScriptError

        answers: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        asking: dict[int, Any] = {}  # command index -> the node an ASK sent it to
        waited: Exception | None = None  # a node's timeout: the call waits for no other
        for attempt in range(2):
            groups: dict[str, tuple[Any, list[int]]] = {}
            for index in pending:
                try:
                    node = asking.get(index) or self.cluster.get_node_from_key(commands[index][0])
                except Exception as exc:  # a slot no node covers
                    answers[index] = exc
                    continue
                groups.setdefault(node.name, (node, []))[1].append(index)
            again: list[int] = []
            # Nodes that failed lately go last: if one of them makes the call wait, the
            # others have answered already.
            ordered = sorted(groups.values(), key=lambda group: group[0].name in self._suspects)
            for node, indexes in ordered:
                if waited is not None:
                    for index in indexes:
                        answers[index] = waited
                    continue
                # A command sent again goes as EVAL: its node may have lost the script.
                sent = [(commands[i][1], i in asking, attempt > 0) for i in indexes]
                got_all, waited = self._send(node, sent)
                for index, got in zip(indexes, got_all, strict=True):
                    answers[index] = got
                    if attempt:
                        continue
                    if isinstance(got, MovedError):
                        self._moved(got)
                        again.append(index)
                    elif isinstance(got, AskError):
                        asking[index] = self.cluster.get_node(got.host, got.port)
                        again.append(index)
                    elif isinstance(got, NoScriptError):  # flushed or restarted meanwhile
                        again.append(index)
            if not again:
                break
            pending = again
        return answers

    def _send(
        self, node: Any, commands: Sequence[tuple[Command, bool, bool]]
    ) -> tuple[list[Any], Exception | None]:
        """One round trip to ``node``: each command, after ``ASKING`` if asked, as
        ``EVALSHA`` unless told to ``EVAL``; a closed connection is replaced once.

        Returns the answers, and the error when the node made us wait (a timeout).
        """
        from redis.exceptions import ConnectionError, RedisError

        client = self.cluster.get_redis_connection(node)
        for attempt in range(2):
            try:
                answers = self._once(client, node.name, commands)
            except ConnectionError as exc:
                if attempt == 0:
                    continue  # a connection the server closed while the environment slept
                self._stale = node.name
                self._suspects.add(node.name)
                return [exc] * len(commands), None
            except (RedisError, OSError) as exc:  # a timeout: never waited for twice
                self._stale = node.name
                self._suspects.add(node.name)
                return [exc] * len(commands), exc
            self._suspects.discard(node.name)
            return answers, None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self, client: Any, node: str, commands: Sequence[tuple[Command, bool, bool]]
    ) -> list[Any]:
        from redis.exceptions import ResponseError

        if len(commands) == 1 and commands[0][0][0] != "EVAL" and not commands[0][1]:
            try:  # one plain command (an L2 hit's GET): no pipeline to build
                return [client.execute_command(*commands[0][0])]
            except ResponseError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        positions: list[int] = []
        loading: set[tuple[str, str]] = set()
        for command, asking, as_eval in commands:
            if asking:
                pipe.execute_command("ASKING")
            sent = command
            if command[0] == "EVAL" and not as_eval:
                script = (node, self._sha(command[1]))
                if script not in self._loaded and script not in loading:
                    pipe.execute_command("SCRIPT", "LOAD", command[1])
                    loading.add(script)
                sent = ("EVALSHA", script[1], *command[2:])
            positions.append(len(pipe.command_stack))
            pipe.execute_command(*sent)
        try:
            answers = pipe.execute(raise_on_error=False)
        finally:
            pipe.reset()
        self._loaded.update(loading)
        return [answers[position] for position in positions]

    def _moved(self, moved: Any) -> None:
        """Learn a slot's new owner from ``MOVED`` (the whole layout with an older redis-py)."""
        manager = self.cluster.nodes_manager
        move_slot = getattr(manager, "move_slot", None)
        if move_slot is not None:
            move_slot(moved)
        else:
            manager.initialize()

    def _sha(self, script: str) -> str:
        sha = self._shas.get(script)
        if sha is None:
            digest = hashlib.sha1(script.encode(), usedforsecurity=False)
            sha = self._shas[script] = digest.hexdigest()
        return sha

    def _refresh_if_stale(self) -> None:
        failed = self._stale
        if failed is None:
            return
        with self._lock:
            now = time.monotonic()
            if self._stale is None or now - self._refreshed < _REFRESH_INTERVAL:
                return
            self._stale, self._refreshed = None, now
        manager = self.cluster.nodes_manager
        try:
            try:
                manager.initialize(last_failed_node_name=failed)  # ask the others first
            except TypeError:  # a redis-py without that argument
                manager.initialize()
        except Exception:
            self._stale = failed  # still unreadable: the commands will say so themselves


def one_slot_key(args: Sequence[Any]) -> str | bytes | None:
    """The key of a command that touches one key (or a script on one key), else ``None``."""
    name = args[0].upper() if isinstance(args[0], str) else None
    key: str | bytes | None = None
    if name in _ONE_KEY and len(args) >= 2 and (name not in ("DEL", "UNLINK") or len(args) == 2):
        key = args[1]
    elif name in ("EVAL", "EVALSHA") and len(args) >= 4 and str(args[2]) == "1":
        key = args[3]
    return key


def answer(routes: ClusterRoutes, key: str | bytes, command: Command) -> Any:
    """One command on its key's node: its answer, or its error raised."""
    (result,) = routes.run([(key, command)])
    if isinstance(result, Exception):
        raise result
    return result


def cluster_class() -> Any:
    """``RedisCluster`` whose commands on one key go through :class:`ClusterRoutes`.

    Other commands (``SCAN``, ``PING``, ``FLUSHALL`` on chosen nodes) stay redis-py's,
    retried once after a connection error only: never after a timeout, nor after
    ``CLUSTERDOWN``, which redis-py answers with a 0.25 s sleep.
    """
    from redis.cluster import RedisCluster
    from redis.exceptions import ConnectionError

    class _Cluster(RedisCluster):
        ERRORS_ALLOW_RETRY = (ConnectionError,)  # type: ignore[assignment]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.routes = ClusterRoutes(self)

        def execute_command(self, *args: Any, **options: Any) -> Any:
            options.pop("keys", None)  # only for redis-py's client-side cache
            key = None if options else one_slot_key(args)
            if key is None:
                return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
            return answer(self.routes, key, args)

    return _Cluster


def routes_for(client: Any) -> ClusterRoutes:
    """The routes of a client built here, or new ones over a ``RedisCluster`` passed in."""
    routes = getattr(client, "routes", None)
    return routes if isinstance(routes, ClusterRoutes) else ClusterRoutes(client)
