"""One module per database driver; ``driver_for(config)`` picks it (importing it lazily)."""

from __future__ import annotations


def driver_for(config):
    from ..config import check_driver

    dialect = config.url.dialect
    if dialect == "mongodb":   # the engine sends document URLs to dataflow.documents, never here
        raise AssertionError("mongodb:// is served by dataflow.documents.client.DocumentDriver")
    check_driver(dialect)
    if config.read_urls:
        from .replicas import driver_with_replicas
        return driver_with_replicas(config)
    if dialect == "postgresql":
        from .postgresql import PostgreSQLDriver
        return PostgreSQLDriver(config)
    if dialect == "mysql":
        from .mysql import MySQLDriver
        return MySQLDriver(config)
    if dialect == "sqlite":
        from .sqlite import SQLiteDriver
        return SQLiteDriver(config)
    raise AssertionError(f"no driver for {dialect}")  # parse_url admits no other dialect
