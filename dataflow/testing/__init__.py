"""Fixtures and helpers shipped for users' own tests (and used by DataFlow's).

Enable the fixtures with ``pytest_plugins = ["dataflow.testing.fixtures"]`` in a conftest.py:
``dataflow_db`` (a DataFlow on the backend under test, its tables dropped afterwards),
``backend_url`` (SQLite always; PostgreSQL / MySQL from DATAFLOW_TEST_POSTGRES_URL /
DATAFLOW_TEST_MYSQL_URL or the local default ports), and ``pgvector_url`` (a PostgreSQL with
pgvector started in a temporary directory, via :class:`TempPostgres`).
"""

from .pgserver import PgServerUnavailable, TempPostgres

__all__ = ["PgServerUnavailable", "TempPostgres"]
