"""A primary and a streaming replica, each a private server in a temporary directory, for the
read-replica tests and benchmark: PostgreSQL (``pg_basebackup -R`` of a private primary) and
MariaDB (two ``mariadbd`` with GTID replication).  ``set_delay`` holds the replica's apply back
(``recovery_min_apply_delay`` / ``MASTER_DELAY``); ``kill``/``restart`` stop and start it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from . import mycluster, pgcluster


def available() -> tuple[bool, bool]:
    """(PostgreSQL binaries, MariaDB binaries) present."""
    return (pgcluster.available() and os.path.exists(os.path.join(pgcluster.BIN, "pg_basebackup")),
            mycluster.available())


class PgReplica(pgcluster.PgCluster):
    """A hot standby of ``primary``, made by pg_basebackup -R."""

    def __init__(self, primary: pgcluster.PgCluster):
        super().__init__(max_connections=primary.max_connections)
        self.primary = primary

    def init(self) -> "PgReplica":
        self._run(os.path.join(pgcluster.BIN, "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                  "-U", "postgres", "-D", self.data, "-R", "-X", "stream", "--no-sync", "-c", "fast",
                  timeout=120)
        return self

    def set_delay(self, ms: int) -> None:
        self._run(os.path.join(pgcluster.BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-Atc", f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(ms)}ms'")
        self._run(os.path.join(pgcluster.BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-Atc", "SELECT pg_reload_conf()")

    def kill(self) -> None:
        self.stop("immediate")

    def restart(self) -> None:
        self.start()


class PgPair:
    def __init__(self):
        self.primary = pgcluster.PgCluster(max_connections=200).init()
        self.replica = None
        try:
            self.primary.start()
            self.replica = PgReplica(self.primary).init()
            self.replica.start()
        except BaseException:
            self.destroy()
            raise

    def set_delay(self, ms: int) -> None:
        self.replica.set_delay(ms)

    def kill(self) -> None:
        self.replica.kill()

    def restart(self) -> None:
        self.replica.restart()

    def destroy(self) -> None:
        if self.replica is not None:
            self.replica.destroy()
        self.primary.destroy()


def _sql(cluster: mycluster.MyCluster, sql: str, names: bool = False) -> str:
    r = subprocess.run(["mariadb", f"--socket={cluster.sock}", "-uroot", *([] if names else ["-N"]), "-e", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    if r.returncode:
        raise RuntimeError(r.stdout)
    return r.stdout.strip()


class MyPair:
    """Two mariadbd, the second replicating the first with GTIDs (slave_pos)."""

    def __init__(self):
        self.primary = mycluster.MyCluster()
        self.replica = mycluster.MyCluster()
        try:
            self.primary.args = ["--log-bin=binlog", "--server-id=1", "--binlog-format=ROW"]
            self.replica.args = ["--server-id=2", "--relay-log=relay"]
            self.primary.init()
            self.replica.init()
            self.primary.start()
            self.replica.start()
            _sql(self.replica, f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, "
                               f"MASTER_USER='root', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE")
            self.wait_replicating()
        except BaseException:
            self.destroy()
            raise

    def wait_replicating(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = _sql(self.replica, "SHOW SLAVE STATUS\\G", names=True)
            if "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status:
                return
            time.sleep(0.05)
        raise TimeoutError("MariaDB replica did not start replicating:\n" + status[-1500:])

    def set_delay(self, seconds: int) -> None:
        _sql(self.replica, f"STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={int(seconds)}; START SLAVE")

    def kill(self) -> None:
        proc = self.replica.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.replica.proc = None

    def restart(self) -> None:
        self.replica.start()
        # the replica thread restarts by itself only with --skip-slave-start off (the default)
        self.wait_replicating()

    def destroy(self) -> None:
        self.replica.destroy()
        self.primary.destroy()
