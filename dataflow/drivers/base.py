"""The driver contract: a pool, statement execution, transactions joined through a context
variable, and translation of the driver's errors into ``dataflow.errors``.

Each concrete driver module imports its database library lazily (inside ``open``) so that
``import dataflow`` never imports asyncpg, aiomysql or aiosqlite.
"""

from __future__ import annotations

import contextvars
import itertools

_ids = itertools.count()


class Conn:
    """One connection in use (inside a transaction, or borrowed for several statements)."""

    async def fetch(self, sql: str, params=()) -> list: ...
    async def fetchrow(self, sql: str, params=()): ...
    async def execute(self, sql: str, params=()) -> int: ...
    async def executemany(self, sql: str, rows) -> None: ...
    async def insert(self, sql: str, params=()): ...


class Driver:
    """Base for the three SQL drivers.  Subclasses implement ``_open``/``_acquire``/... ."""

    dialect_name = "base"

    def __init__(self, config):
        self.config = config
        self.url = config.url
        # Per-instance context variable: the transaction (Conn) this task is inside, if any.
        self._tx: contextvars.ContextVar = contextvars.ContextVar(f"dataflow_tx_{next(_ids)}", default=None)
        self.closed = False

    def current(self):
        """The Conn of the transaction this task is inside, or None."""
        return self._tx.get()
