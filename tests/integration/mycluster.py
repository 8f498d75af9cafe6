"""A private MariaDB server in a temporary directory, for fault tests (kill, deadlock on a
server we may disturb).  Started with ``--skip-grant-tables`` so root needs no setup."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from .pgcluster import free_port


def available() -> bool:
    return bool(shutil.which("mariadbd") or os.path.exists("/usr/sbin/mariadbd")) and bool(
        shutil.which("mariadb-install-db"))


class MyCluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="df_my_")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        #: more mariadbd options (replication: --log-bin, --server-id ...)
        self.args: list = []

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/test"

    def init(self) -> "MyCluster":
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return self

    def start(self, timeout: float = 30) -> None:
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.proc = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
             f"--socket={self.sock}", "--user=root", "--bind-address=127.0.0.1", "--skip-grant-tables",
             "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
             "--innodb-flush-log-at-trx-commit=2", f"--log-error={self.dir}/err.log",
             f"--pid-file={self.dir}/pid", "--innodb-lock-wait-timeout=10", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(open(f"{self.dir}/err.log").read()[-2000:])
                time.sleep(0.05)
        else:
            raise TimeoutError("private MariaDB did not start")
        r = subprocess.run(["mariadb", f"--socket={self.sock}", "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS test"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError(r.stdout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
