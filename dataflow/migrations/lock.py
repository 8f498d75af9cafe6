"""One migrator at a time, across processes and hosts.

PostgreSQL: a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``, polled until
``migration_lock_timeout``) on the connection that runs the DDL, with a short ``lock_timeout``
for the DDL itself.  MySQL/MariaDB: ``GET_LOCK`` on a pinned connection.  SQLite:
``BEGIN IMMEDIATE`` with the busy timeout raised to ``migration_lock_timeout``.  Each lock
belongs to a session or transaction, so a killed holder's lock goes with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import TransactionConflictError


class LockWaitTimeout(TransactionConflictError):
    """Another migrator held the lock for longer than ``migration_lock_timeout``."""


def _timeout_error(db, timeout) -> LockWaitTimeout:
    return LockWaitTimeout(f"another process held the DataFlow migration lock on {db.config.url.redacted()} "
                           f"for more than migration_lock_timeout={timeout}s")


@contextlib.asynccontextmanager
async def migration_lock(db, timeout: float):
    """Hold the migration lock for the block; the block's statements run inside it."""
    mode = db.dialect.migration_lock_mode
    if mode == "immediate":
        async with _sqlite_lock(db, timeout):
            yield
    elif mode == "get_lock":
        async with _mysql_lock(db, timeout):
            yield
    else:
        async with _pg_lock(db, timeout):
            yield


@contextlib.asynccontextmanager
async def _pg_lock(db, timeout):
    d, drv = db.dialect, db.driver
    loop = asyncio.get_running_loop()
    async with drv.transaction() as conn:
        deadline = loop.time() + timeout
        delay = 0.02
        while True:
            row = await conn.fetchrow(d.migration_try_lock_sql, (d.advisory_key,))
            if row[0]:
                break
            if loop.time() >= deadline:
                raise _timeout_error(db, timeout)
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 0.25)
        await conn.execute(d.ddl_lock_timeout_sql())
        yield  # released at COMMIT/ROLLBACK, or when the session dies


@contextlib.asynccontextmanager
async def _mysql_lock(db, timeout):
    name = f"dataflow_migrate:{db.config.url.database or ''}"[:64]
    d = db.dialect
    # the transaction only pins one connection: DDL commits implicitly on MySQL
    async with db.driver.transaction() as conn:
        row = await conn.fetchrow(d.migration_get_lock_sql, (name, max(0, int(round(timeout)))))
        if not row or row[0] != 1:
            raise _timeout_error(db, timeout)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await conn.fetchrow(d.migration_release_lock_sql, (name,))


@contextlib.asynccontextmanager
async def _sqlite_lock(db, timeout):
    drv, d = db.driver, db.dialect
    await drv.execute(d.busy_timeout_sql(timeout))
    entered = False
    try:
        async with drv.transaction("immediate"):
            entered = True
            await drv.execute(d.busy_timeout_sql(db.config.pool_timeout))
            yield
    except TransactionConflictError as exc:
        if entered:
            raise
        raise _timeout_error(db, timeout) from exc
    finally:
        if not entered:
            with contextlib.suppress(Exception):
                await drv.execute(d.busy_timeout_sql(db.config.pool_timeout))
