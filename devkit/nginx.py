"""nginx's proxy cache on a free loopback port: a real shared HTTP cache for tests.

The configuration is generated into a temporary directory (cache, temporary
files, pid and error log all there); nginx runs in the foreground and is
stopped by PID. ``make test`` installs Debian's ``nginx-light`` when no nginx
is on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devkit.servers import LOOPBACK, Running, free_port, start_process, stop_process

CONFIG = """\
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=shared:1m inactive=10m use_temp_path=off;
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass {upstream};
            proxy_cache shared;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """Path of nginx: PATH first, then Debian's /usr/sbin (not on every user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            "no nginx on this machine: `apt-get install nginx-light` (`make test` does it)"
        )
    return found


class NginxCache(Running):
    """nginx proxying to ``upstream`` through its proxy cache, honouring ``Cache-Control``
    and ``Vary`` as it does out of the box (its ``X-Cache-Status`` header tells HIT from MISS).

    Example:
        >>> with NginxCache("http://127.0.0.1:8080") as nginx:  # doctest: +SKIP
        ...     nginx.url
        'http://127.0.0.1:40123'
    """

    def __init__(self, upstream: str, port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.binary = nginx_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="stratacache-nginx-")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> NginxCache:
        folder = Path(self._dir.name)
        # Run as root (CI), the workers would drop to nobody, who cannot enter a 0700 tmp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        config = folder / "nginx.conf"
        config.write_text(
            CONFIG.format(
                dir=folder, user=user, host=LOOPBACK, port=self.port, upstream=self.upstream
            )
        )
        args = [self.binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        try:
            self.proc = start_process(args, self.port, timeout=30)
        except RuntimeError as exc:
            log = folder / "error.log"
            detail = log.read_text() if log.exists() else "(no error log)"
            raise RuntimeError(f"nginx did not start: {exc}\n{detail}") from None
        return self

    def close(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)  # SIGTERM to the master: it stops its worker and exits
        self._dir.cleanup()
