"""A private PostgreSQL server in a temporary directory, for fault tests (restart, terminate).

The shared test server is never touched: this one has its own data directory, port and socket
directory, runs as the ``postgres`` OS user when we are root, and is removed by ``destroy()``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("DATAFLOW_PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return os.path.exists(os.path.join(BIN, "initdb")) and os.path.exists(os.path.join(BIN, "pg_ctl"))


class PgCluster:
    def __init__(self, max_connections: int = 100):
        self.dir = tempfile.mkdtemp(prefix="df_pg_")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.makedirs(self.sock)
        self.port = free_port()
        self.max_connections = max_connections
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, check=True, timeout=60):
        return subprocess.run([*self._as, *args], check=check, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def init(self) -> "PgCluster":
        self._run(os.path.join(BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        return self

    def start(self, wait: bool = True) -> None:
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c max_connections={self.max_connections} -c full_page_writes=off")
        self._run(os.path.join(BIN, "pg_ctl"), "-D", self.data, "-o", opts, "-l",
                  os.path.join(self.dir, "log"), "-w" if wait else "-W", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(os.path.join(BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def wait_accepting(self, timeout: float = 30) -> float:
        """Block until a real connection works; returns time.monotonic() of that moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._run(os.path.join(BIN, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-t", "1", check=False)
            if r.returncode == 0:
                return time.monotonic()
            time.sleep(0.02)
        raise TimeoutError("private PostgreSQL did not come back")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
