"""A small local Lambda Runtime API, enough for the real runtime interface client.

It serves ``/2018-06-01/runtime/invocation/next`` (one queued event per call,
blocking while the queue is empty, as Lambda does), records what the client
posts to ``/invocation/{id}/response`` and ``/invocation/{id}/error``, and
records ``/runtime/init/error``. It notes when each event was handed out and
answered (``time.perf_counter()``), which ``devkit.coldstart`` turns into
initialisation and invocation times.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devkit.servers import Running

_PREFIX = "/2018-06-01/runtime"
_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stratacache-quote-test"


class RuntimeAPI(Running):
    """Queue events with :meth:`invoke`; read what the function answered from :meth:`result`."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.results: dict[str, tuple[str, Any]] = {}
        self.init_errors: list[Any] = []
        self.first_poll: float | None = None
        """When the function first asked for an event: its initialisation was over."""
        self.handed_out: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.probe: Callable[[], float | None] | None = None
        """Called at every request for an event (e.g. the function's CPU time so far)."""
        self.probes: list[float | None] = []
        self._done = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads results, not access logs."""

            def do_GET(self) -> None:
                if self.path != f"{_PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                if api.probe is not None:
                    api.probes.append(api.probe())
                request_id, body = api.events.get()
                api.handed_out[request_id] = time.perf_counter()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header(
                    "Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000)
                )
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", _FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                posted = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.removeprefix(_PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(payload)
                elif (
                    len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2] in ("response", "error")
                ):
                    with api._done:
                        api.answered[parts[1]] = posted
                        api.results[parts[1]] = (parts[2], payload)
                        api._done.notify_all()
                else:
                    self.send_error(404)
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``host:port`` for ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def invoke(self, event: dict[str, Any]) -> str:
        """Queue an event for the function; return its request id."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        return request_id

    def result(self, request_id: str, timeout: float = 30) -> tuple[str, Any]:
        """``("response" | "error", payload)`` of one invocation, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._done:
            while request_id not in self.results:
                left = deadline - time.monotonic()
                if left <= 0 or self.init_errors:
                    raise TimeoutError(
                        f"no result for {request_id}; init errors: {self.init_errors}"
                    )
                self._done.wait(min(left, 0.2))
            return self.results[request_id]

    def start(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
