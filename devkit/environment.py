"""Another execution environment as a real process: a warm L1 over a shared Redis.

The process keeps one :class:`~stratacache.TieredCache` (L1 and Redis) whose
value of ``"k"`` comes from an origin file, and answers commands on stdin:
``read`` (one read, its value), ``loop SECONDS`` (reads in a tight loop, then
when each value was last seen). Tests stop it with SIGSTOP like a frozen
Lambda environment; ``python -m devkit.feedbound`` measures with it.

Example:
    >>> with Environment(url, "ns", origin, check=0.5) as env:  # doctest: +SKIP
    ...     env.read()
    'v1'
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import TracebackType
from typing import Any

_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from stratacache import MemoryTier, RedisTier, TieredCache

    url, namespace, origin, check = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    cache = TieredCache(
        [MemoryTier(), RedisTier(url, socket_timeout=5, connect_timeout=5)],
        namespace=namespace, ttl=300, generation_check=check,
    )

    def compute():
        with open(origin) as source:
            return source.read()

    def read():
        return cache.get_or_compute("k", compute)

    for line in sys.stdin:
        command = line.split()
        if command[0] == "read":
            answer = {"value": read()}
        elif command[0] == "loop":
            last, end = {}, time.time() + float(command[1])
            while time.time() < end:
                begun = time.time()
                last[read()] = begun
            answer = {"last": last}
        elif command[0] == "stats":
            answer = {"stats": cache.stats()}
        else:
            break
        print(json.dumps(answer), flush=True)
    """
)


class Environment:
    """A warm execution environment in its own process, reading ``"k"`` on request."""

    def __init__(self, url: str, namespace: str, origin: Path, check: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, namespace, str(origin), str(check)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> dict[str, Any]:
        self.send(command)
        return self.answer()

    def send(self, command: str) -> None:
        """Send a command without waiting for its answer (:meth:`answer`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        while line.startswith('{"_aws"'):  # its metrics, published to stdout as on Lambda
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the environment exited with {self.proc.wait(10)}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def read(self) -> str:
        """One call, as an invocation would make it: the value it was served."""
        return str(self.ask("read")["value"])

    def loop(self, seconds: float) -> dict[str, float]:
        """Read for ``seconds``; when (``time.time()`` at its start) each value was last read."""
        last: dict[str, float] = self.ask(f"loop {seconds}")["last"]
        return last

    def stats(self) -> dict[str, dict[str, int]]:
        stats: dict[str, dict[str, int]] = self.ask("stats")["stats"]
        return stats

    def freeze(self) -> None:
        """SIGSTOP, as Lambda freezes an environment between invocations."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Environment:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
