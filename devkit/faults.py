"""Fault injection on real processes: Redis Cluster, a TCP/TLS proxy that can cut connections,
a port that accepts and never answers, and DynamoDB errors injected at the botocore layer.

Used by the fault-injection tests and ``python -m devkit.faultbench``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devkit.servers import LOOPBACK, RedisServer, Running, free_port, redis_server_binary


def redis_cli_binary() -> str:
    """The CLI that ships next to the server binary (valkey-cli or redis-cli)."""
    server = Path(redis_server_binary())
    for name in ("valkey-cli", "redis-cli"):
        sibling = server.with_name(name)
        if sibling.exists():
            return str(sibling)
    for name in ("valkey-cli", "redis-cli"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"no valkey-cli or redis-cli next to {server} or on PATH")


@contextlib.contextmanager
def paused(server: RedisServer) -> Iterator[None]:
    """SIGSTOP the server for the block: it keeps its sockets but answers nothing."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def kill_hard(server: RedisServer) -> None:
    """SIGKILL the server (no shutdown, connections reset) and reap it; ``start()`` revives it."""
    assert server.proc is not None
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(timeout=5)
    server.stop()


# ---------------------------------------------------------------- Redis Cluster


class RedisClusterServers(Running):
    """A Redis Cluster of ``masters`` primaries on loopback, no replicas, built with the CLI.

    Example:
        >>> with RedisClusterServers(3) as cluster:  # doctest: +SKIP
        ...     cluster.url
        'redis://127.0.0.1:40123/0'
    """

    def __init__(self, masters: int = 3) -> None:
        self.masters = masters
        self.servers: list[RedisServer] = self._nodes()

    def _nodes(self) -> list[RedisServer]:
        nodes = []
        for _ in range(self.masters):
            port = free_port()
            # The bus would default to port + 10000: past 65535 for a high free port.
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
            nodes.append(RedisServer(port, *args))
        return nodes

    @property
    def url(self) -> str:
        """The URL of one node; the client discovers the others."""
        return self.servers[0].url

    def start(self) -> RedisClusterServers:
        for attempt in range(3):  # six ports picked free can be taken before a node binds
            try:
                for server in self.servers:
                    server.start()
                break
            except RuntimeError:
                self.close()
                if attempt == 2:
                    raise
                self.servers = self._nodes()
        try:
            nodes = [f"{LOOPBACK}:{server.port}" for server in self.servers]
            command = [
                redis_cli_binary(), "--cluster", "create", *nodes,
                "--cluster-replicas", "0", "--cluster-yes",
            ]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True, timeout=30)
            self._wait_until_ok(timeout=20)
        except BaseException:
            self.close()
            raise
        return self

    def _wait_until_ok(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for server in self.servers:
                with redis.Redis(port=server.port, host=LOOPBACK) as client:
                    info = client.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    states.append("cluster_state:ok" in text)
            if all(states):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok within {timeout}s")

    def close(self) -> None:
        for server in self.servers:
            server.close()


# ---------------------------------------------------------------- proxies


class Proxy(Running):
    """A TCP proxy on loopback to ``target_port``, optionally terminating TLS.

    ``sever_next()`` makes the proxy close the next connection that sends a
    request, without forwarding it: what a client sees when its connection died
    while idle (a NAT or load balancer forgot it during a Lambda freeze) and the
    death only shows once a command is sent.

    ``hold_next()`` makes the proxy hold the next request until ``release()``:
    one slow command, in flight on the network, while other connections carry on.

    Example:
        >>> with Proxy(6379) as proxy:  # doctest: +SKIP
        ...     proxy.url
        'redis://127.0.0.1:40125/0'
    """

    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None) -> None:
        self.target_port = target_port
        self.tls = tls
        self.port = free_port()
        self.accepted = 0
        self.severed = 0
        self.held = 0
        self._sever = threading.Event()
        self._hold = threading.Event()
        self._released = threading.Event()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        host = "localhost" if self.tls is not None else LOOPBACK  # the certificate's name
        return f"{scheme}://{host}:{self.port}/0"

    def sever_next(self) -> None:
        self._sever.set()

    def hold_next(self) -> None:
        self._released.clear()
        self._hold.set()

    def release(self) -> None:
        self._released.set()

    def start(self) -> Proxy:
        listener = socket.create_server((LOOPBACK, self.port))
        listener.settimeout(0.1)
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(5)
                client = self.tls.wrap_socket(client, server_side=True)
            upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        client.settimeout(None)
        upstream.settimeout(None)
        try:
            self._pump(client, upstream)
        except OSError:
            pass  # a side closed, or stop() closed the sockets under us
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        while not self._stop.is_set():
            pending = client.pending() if isinstance(client, ssl.SSLSocket) else 0
            if pending:
                readable: list[socket.socket] = [client]
            else:
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client and self._sever.is_set():
                    self._sever.clear()
                    self.severed += 1
                    return  # drop the request and the connection
                if sock is client and self._hold.is_set():
                    self._hold.clear()
                    self.held += 1
                    self._released.wait()  # this connection's request waits; others flow
                (upstream if sock is client else client).sendall(data)

    def stop(self) -> None:
        self._stop.set()
        self._released.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def close(self) -> None:
        self.stop()


class BlackHole(Running):
    """A loopback port that accepts connections and never answers: a hung server."""

    def __init__(self) -> None:
        self.port = free_port()
        self._listener = socket.create_server((LOOPBACK, self.port), backlog=128)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def close(self) -> None:
        self._listener.close()


def self_signed_certificate(
    directory: str, host: str = "localhost", addresses: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Write a self-signed certificate for ``host`` (and IP ``addresses``) and its key.

    Returns the (cert, key) paths.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "server.crt")
    key_path = os.path.join(directory, "server.key")
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def tls_server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


# ---------------------------------------------------------------- DynamoDB


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class DynamoDBFaults:
    """Answer a boto3 DynamoDB client's requests with errors, at botocore's ``before-send``.

    No request reaches the endpoint while a fault is set. ``error`` is the
    DynamoDB error code, e.g. ``ProvisionedThroughputExceededException``
    (HTTP 400) or ``InternalServerError`` (HTTP 500).

    Example:
        >>> faults = DynamoDBFaults(client)  # doctest: +SKIP
        >>> faults.fail(500, "InternalServerError")  # doctest: +SKIP
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.status: int | None = None
        self.error = ""
        self.injected = 0
        client.meta.events.register("before-send.dynamodb.*", self._before_send)

    def fail(self, status: int, error: str) -> None:
        self.status, self.error = status, error

    def heal(self) -> None:
        self.status = None

    def _before_send(self, request: Any, **_: Any) -> Any:
        if self.status is None:
            return None
        from botocore.awsrequest import AWSResponse

        self.injected += 1
        body = json.dumps(
            {
                "__type": f"com.amazonaws.dynamodb.v20120810#{self.error}",
                "message": f"injected {self.error}",
            }
        ).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return AWSResponse(request.url, self.status, headers, _Body(body))

    def close(self) -> None:
        self.client.meta.events.unregister("before-send.dynamodb.*", self._before_send)
