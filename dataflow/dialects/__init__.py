"""One class per SQL dialect; ``dialect_for(name)`` returns a shared instance."""

from .base import Dialect
from .mysql import MySQLDialect
from .postgresql import PostgreSQLDialect
from .sqlite import SQLiteDialect

_DIALECTS = {"postgresql": PostgreSQLDialect(), "mysql": MySQLDialect(), "sqlite": SQLiteDialect()}


def dialect_for(name: str) -> Dialect:
    return _DIALECTS[name]


__all__ = ["Dialect", "MySQLDialect", "PostgreSQLDialect", "SQLiteDialect", "dialect_for"]
