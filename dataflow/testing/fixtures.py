"""pytest fixtures for applications built on DataFlow: ``pytest_plugins = ["dataflow.testing.fixtures"]``.

Servers come from the environment (DATAFLOW_TEST_POSTGRES_URL, DATAFLOW_TEST_MYSQL_URL), or the
local default ports, or -- for pgvector -- a throwaway server in a temporary directory.  An
unreachable server skips its tests, except under CI=true where it fails them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

from .pgserver import PgServerUnavailable, TempPostgres

BACKENDS = ("sqlite", "postgresql", "mysql")


def env_url(backend: str) -> str | None:
    """The configured URL for ``backend`` ("postgresql" / "mysql"), or the local default."""
    if backend == "postgresql":
        return os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if backend == "mysql":
        return os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(msg: str):
    """Skip -- or fail under CI=true, where a missing server is a broken pipeline."""
    if in_ci():
        pytest.fail(msg + " (CI=true: a missing server is a failure)")
    pytest.skip(msg)


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def backend_url_for(backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    url = env_url(backend)
    if not reachable(url):
        unavailable(f"{backend} server not reachable at {url}")
    return url


@pytest.fixture(params=BACKENDS)
def dataflow_backend(request):
    """Parametrises a test over sqlite, postgresql and mysql."""
    return request.param


@pytest.fixture
def backend_url(dataflow_backend, tmp_path):
    return backend_url_for(dataflow_backend, tmp_path)


@pytest.fixture(scope="session")
def pgvector_server():
    """A PostgreSQL with pgvector in a temp dir for the whole session (``TempPostgres``)."""
    url = os.environ.get("DATAFLOW_TEST_PGVECTOR_URL")
    if url:
        yield url
        return
    try:
        server = TempPostgres().start()
    except PgServerUnavailable as exc:
        unavailable(f"no PostgreSQL with pgvector: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pgvector_url(pgvector_server):
    return pgvector_server


async def drop_tables(db) -> None:
    for t in db.list_tables():
        await db.execute_raw(db.dialect.drop_table_sql(t, if_exists=True))


@pytest.fixture
async def dataflow_db(backend_url):
    """A DataFlow on the backend under test; its models' tables are dropped at teardown."""
    from dataflow import DataFlow

    db = DataFlow(backend_url)
    yield db
    try:
        await drop_tables(db)
    finally:
        await db.close_async()
