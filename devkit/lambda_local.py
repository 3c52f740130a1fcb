"""Run a function as Lambda's Python runtime does, without Docker: layers, paths, read-only.

A Lambda Python environment is an interpreter running ``awslambdaric`` against
the Runtime API, with ``sys.path`` = the function's code (``/var/task``), the
layers (``/opt/python``), then what the managed runtime provides (boto3 and
its dependencies). Layers and code are on a read-only file system, so Python
finds bytecode there or compiles in memory, every cold start.

:class:`LambdaEnvironment` reproduces that with the real runtime interface
client, ``devkit.runtime_api.RuntimeAPI``, a built layer and a folder holding
only the runtime's packages, linked from this interpreter's site-packages.
Used by the end-to-end tests and ``python -m devkit.coldstart``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit.runtime_api import RuntimeAPI
from devkit.servers import Running

ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = ROOT / "layer"
RUNTIMES = ("3.10", "3.11", "3.12", "3.13")
ARCHS = ("x86_64", "arm64")

# What a Lambda Python runtime has without any layer (boto3 and its dependencies) ...
RUNTIME_PROVIDED = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"]
# ... and what AWS's Powertools layer adds.
POWERTOOLS_LAYER = ["aws_lambda_powertools", "typing_extensions.py"]


def site_packages() -> Path:
    """This interpreter's site-packages, where the runtime's packages are linked from."""
    return Path(sysconfig.get_paths()["purelib"])


def runtime_client() -> list[str]:
    """The runtime interface client and what it needs, its native HTTP client included."""
    native = [p.name for p in site_packages().glob("runtime_client.*.so")]
    return ["awslambdaric", "simplejson", "snapshot_restore_py.py", *native]


def runtime_dir(folder: Path, names: Iterable[str]) -> Path:
    """``folder`` with only ``names`` from this interpreter's site-packages, linked in."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = site_packages() / name
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: `make venv` installs it")
        (folder / name).symlink_to(source)
    return folder


def layer_interpreter(version: str) -> str | None:
    """The interpreter the layer build uses for python``version`` (``layer/find-python.sh``)."""
    found = subprocess.run(
        ["sh", str(LAYER_SOURCE / "find-python.sh"), version],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return found or None


def build_layer(version: str, arch: str, artifacts: Path) -> Path:
    """Build the layer for one runtime and architecture with the target ``sam build`` runs.

    Returns the layer's ``python/`` folder, what Lambda mounts as ``/opt/python``.
    """
    target = "build-StratacacheLayerPython" + version.replace(".", "")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(LAYER_SOURCE), target,
         f"ARCH={arch}", f"ARTIFACTS_DIR={artifacts}"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{target} ARCH={arch} failed:\n{result.stdout}{result.stderr}")
    return artifacts / "python"


_MOUNT_READ_ONLY = (
    'while [ "$1" != -- ]; do '
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 97; shift; '
    'done; shift; exec "$@"'
)


def read_only_argv(paths: Sequence[Path], argv: Sequence[str]) -> list[str]:
    """``argv`` run with ``paths`` read-only, as Lambda mounts ``/var/task`` and ``/opt``.

    As root (where permission bits stop nothing) each path is bind-mounted read-only
    onto itself in a private mount namespace of that process alone; otherwise the
    paths lose their write permission.
    """
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("mount"):
        return ["unshare", "--mount", "sh", "-c", _MOUNT_READ_ONLY, "sh",
                *map(str, paths), "--", *argv]  # fmt: skip
    for path in paths:
        for found in [path, *path.rglob("*")]:
            if not found.is_symlink():
                found.chmod(found.stat().st_mode & ~0o222)
    return list(argv)


RUN_CLIENT = """
import sys
sys.path[:0] = {path!r}
sys.argv = ["awslambdaric", {handler!r}]
from awslambdaric.__main__ import main
main(sys.argv)
"""


class LambdaEnvironment(Running):
    """One execution environment: ``awslambdaric`` in a fresh interpreter, fed by ``api``.

    ``path`` is the function's ``sys.path`` in Lambda's order (task root, layers,
    runtime); the task root and the layers are made read-only for the process, and
    ``PYTHONDONTWRITEBYTECODE=1`` keeps Python from trying. Everything the process
    prints goes to ``log``.

    Example:
        >>> with RuntimeAPI() as api, LambdaEnvironment(api, [task, layer, runtime],
        ...                                            read_only=[task, layer], log=log):
        ...     api.result(api.invoke({}))  # doctest: +SKIP
    """

    def __init__(
        self,
        api: RuntimeAPI,
        path: Sequence[Path],
        *,
        read_only: Sequence[Path],
        log: Path,
        env: Mapping[str, str] | None = None,
        handler: str = "handler.handler",
        python: str = sys.executable,
    ) -> None:
        self.api = api
        self.path = [str(p) for p in path]
        self.read_only = list(read_only)
        self.log = log
        self.handler = handler
        self.python = python
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_FUNCTION_NAME": "stratacache-quote-test",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": self.path[0],
            **(env or {}),
            "AWS_LAMBDA_RUNTIME_API": api.address,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> LambdaEnvironment:
        code = RUN_CLIENT.format(path=self.path, handler=self.handler)
        # -S -s: no site-packages of this interpreter; not -I, which would also ignore
        # PYTHONDONTWRITEBYTECODE. The environment is this class's, nothing inherited.
        argv = read_only_argv(self.read_only, [self.python, "-S", "-s", "-c", code])
        with self.log.open("ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                argv, cwd=self.path[0], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def invoke(self, events: Iterable[dict[str, Any]], timeout: float = 60) -> list[Any]:
        """Send ``events`` one after the other; return each response payload.

        An error response or an initialisation error raises, with the log attached.
        """
        payloads = []
        for event in events:
            request_id = self.api.invoke(event)
            try:
                kind, payload = self.api.result(request_id, timeout)
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}\n{self.output()}") from None
            if kind != "response":
                raise RuntimeError(f"invocation failed: {payload}\n{self.output()}")
            payloads.append(payload)
        return payloads

    def cpu_ms(self) -> float | None:
        """CPU time the function's main thread has used so far (Linux), or None."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/schedstat") as stat:
                return int(stat.read().split()[0]) / 1e6
        except (OSError, ValueError, IndexError):
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        """Stop the process by PID: it waits for its next event forever otherwise."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
