"""Real databases for integration tests: SQLite (always), PostgreSQL and MariaDB/MySQL.

URLs come from DATAFLOW_TEST_POSTGRES_URL / DATAFLOW_TEST_MYSQL_URL, else the local servers on
their default ports.  An unreachable server skips its tests -- unless CI=true, where it fails.
Each test gets a fresh DataFlow with uniquely named tables, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from dataflow import DataFlow

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


from dataflow.testing.fixtures import reachable as _reachable  # noqa: E402 - one copy of the check


def _backend_url(name: str, tmp_path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    url = PG_URL if name == "postgresql" else MY_URL
    if not _reachable(url):
        msg = f"{name} server not reachable at {url}"
        if IN_CI:
            pytest.fail(msg + " (CI=true: a missing server is a failure)")
        pytest.skip(msg)
    return url


BACKENDS = ["sqlite", "postgresql", "mysql"]

#: a real MongoDB server for the document store's tests; without it they run on the stand-in only
MONGO_URL = os.environ.get("DATAFLOW_TEST_MONGODB_URL")


def mongodb_url(name: str) -> tuple[str, dict]:
    """(URL, DataFlow keywords) of the document store under test: ``mongodb-standin`` is the
    in-process stand-in (always), ``mongodb`` the server of DATAFLOW_TEST_MONGODB_URL (skipped
    without it, even in CI: no MongoDB server is part of the standard setup)."""
    if name == "mongodb-standin":
        return f"mongodb://standin/dataflow_test_{uuid.uuid4().hex[:8]}", {"testing": True}
    if not MONGO_URL:
        pytest.skip("DATAFLOW_TEST_MONGODB_URL is not set: the document store ran on the stand-in only")
    return MONGO_URL, {}


async def drop_all(db) -> None:
    """Drop the tables (collections) of ``db``'s models and close it."""
    try:
        if db.documents:
            for store in db._tables.values():
                await store.drop()
        else:
            for t in db.list_tables():
                await db.execute_raw(db.dialect.drop_table_sql(t, if_exists=True))
    finally:
        await db.close_async()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def url(backend, tmp_path):
    if backend.startswith("mongodb"):
        return mongodb_url(backend)[0]
    return _backend_url(backend, tmp_path)


class Tables:
    """Unique table names per test, dropped at teardown."""

    def __init__(self):
        self.suffix = uuid.uuid4().hex[:8]
        self.names: list[str] = []

    def __call__(self, base: str) -> str:
        name = f"t_{base}_{self.suffix}"
        self.names.append(name)
        return name


@pytest.fixture
def tables():
    return Tables()


@pytest.fixture
def db_kwargs():
    """Extra DataFlow(...) arguments for ``db``; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture
async def db(url, tables, db_kwargs):
    """A DataFlow on the backend under test; tables created through `tables(...)` are dropped."""
    kw = dict(db_kwargs)
    if url.startswith("mongodb://standin/"):
        kw["testing"] = True        # the in-process stand-in (mongodb_url)
    d = DataFlow(url, **kw)
    yield d
    await drop_all(d)


def make_db(url: str, **kw) -> DataFlow:
    return DataFlow(url, **kw)


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)
