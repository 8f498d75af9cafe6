"""aiosqlite behind the driver contract: one connection (WAL for files), a real REGEXP,
case-sensitive LIKE, statements serialised by a lock so a transaction never interleaves
with another task's statements."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import weakref

from .. import errors as E
from .base import Conn, Driver, finish


def translate(exc: BaseException) -> BaseException:
    import sqlite3

    if isinstance(exc, E.DataFlowError):
        return exc
    msg = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if "UNIQUE" in msg or "PRIMARY KEY" in msg:
            return E.UniqueViolationError(f"unique constraint violated: {msg}", exc)
        return E.IntegrityError(f"constraint violated: {msg}", exc)
    if "user-defined function raised exception" in msg:
        return E.QueryError("a $regex failed on SQLite: the pattern is invalid, or matching one value took "
                            f"longer than {REGEX_TIMEOUT} s (catastrophic backtracking); simplify the pattern", exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg):
        return E.TransactionConflictError(f"database is locked, retry the transaction: {msg}", exc)
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.ProgrammingError)) and "closed" in msg:
        return E.DatabaseConnectionError(f"SQLite connection is closed: {msg}", exc)
    if isinstance(exc, (OSError, ValueError)) and not isinstance(exc, sqlite3.Error):
        return E.DatabaseConnectionError(f"SQLite failed: {msg}", exc)
    return E.QueryError(f"SQLite rejected the statement: {msg}", exc)


try:  # the `regex` module can stop a runaway (catastrophically backtracking) match
    import regex as _re_engine
    _TIMEOUT = {"timeout": 0.25}
except ImportError:  # pragma: no cover - regex is a core dependency
    _re_engine = re
    _TIMEOUT = {}

#: Seconds one REGEXP evaluation may take before the statement fails (with `regex` installed).
REGEX_TIMEOUT = _TIMEOUT.get("timeout")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str):
    flags = 0
    if pattern.startswith("(?i)"):
        pattern, flags = pattern[4:], _re_engine.IGNORECASE
    return _re_engine.compile(pattern, flags)



def _regexp(pattern, value):
    """SQLite's REGEXP: ``value REGEXP pattern`` calls regexp(pattern, value).

    It runs in the connection's worker thread, never on the event loop; a match running past
    REGEX_TIMEOUT raises, which fails the statement instead of stalling the connection."""
    if value is None or pattern is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return _compile(pattern).search(value, **_TIMEOUT) is not None


def _lower(value):
    return value.lower() if isinstance(value, str) else value


class _LiteConn(Conn):
    __slots__ = ("db", "lock", "sp_counter", "written")

    def __init__(self, db):
        self.db = db
        self.lock = None
        self.sp_counter = 0
        self.written = None

    async def fetch(self, sql, params=()):
        try:
            return await self.db.execute_fetchall(sql, params)
        except Exception as exc:
            raise translate(exc) from exc

    # One thread hop per statement: run execute + fetch/rowcount + close together in the
    # connection's worker thread (aiosqlite's cursor API costs a hop for each step).
    async def fetchrow(self, sql, params=()):
        try:
            return await self.db._execute(_one_row, self.db._conn, sql, params)
        except Exception as exc:
            raise translate(exc) from exc

    async def execute(self, sql, params=()):
        try:
            return await self.db._execute(_rowcount, self.db._conn, sql, params)
        except Exception as exc:
            raise translate(exc) from exc

    async def executemany(self, sql, rows):
        try:
            await self.db._execute(_many, self.db._conn, sql, rows)
        except Exception as exc:
            raise translate(exc) from exc

    async def insert(self, sql, params=()):
        try:
            return await self.db._execute(_insert, self.db._conn, sql, params)
        except Exception as exc:
            raise translate(exc) from exc

    async def insert_rows(self, sql, rows, start=0, on_release=None) -> int:
        """Run a one-row INSERT for every row (driver values) in one worker-thread hop; return
        the changes.  The compiled path releases the GIL while SQLite writes (``on_release`` is
        called from the worker thread when it does), so the event loop can prepare the next
        batch meanwhile.  A failure carries ``row_index`` (``start + i``)."""
        try:
            return await self.db._execute(_bulk().insert_rows, self.db._conn, sql, rows, start, on_release)
        except Exception as exc:
            if isinstance(exc, (TypeError, ValueError, OverflowError)) and not _is_sqlite_error(exc):
                err = E.ValidationError(f"cannot write the value: {exc}")
            else:
                err = translate(exc)
            err.row_index = getattr(exc, "row_index", None)
            raise err from exc


async def _undo_begin(task, conn, lk):
    try:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()          # retrieved: a failed BEGIN is reported by the caller's error
        if conn.db.in_transaction:
            await conn.execute("ROLLBACK")
    finally:
        lk.release()


def _bulk():
    from dataflow import _native
    return _native.load("sqlitebulk")


def _is_sqlite_error(exc) -> bool:
    import sqlite3
    return isinstance(exc, sqlite3.Error)


def _one_row(conn, sql, params):
    cur = conn.execute(sql, params)
    try:
        return cur.fetchone()
    finally:
        cur.close()


def _rowcount(conn, sql, params):
    cur = conn.execute(sql, params)
    try:
        return cur.rowcount
    finally:
        cur.close()


def _many(conn, sql, rows):
    conn.executemany(sql, rows).close()


def _insert(conn, sql, params):
    cur = conn.execute(sql, params)
    try:
        if "RETURNING" in sql:
            row = cur.fetchone()
            return row[0] if row else None
        return cur.lastrowid
    finally:
        cur.close()


class SQLiteDriver(Driver):
    dialect_name = "sqlite"
    single_connection = True

    def __init__(self, config):
        super().__init__(config)
        self._db = None
        self._conn: _LiteConn | None = None
        self._open_lock: asyncio.Lock | None = None
        self._locks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lk = self._locks.get(loop)
        if lk is None:
            lk = self._locks[loop] = asyncio.Lock()
        return lk

    async def open(self) -> _LiteConn:
        if self._conn is not None:
            return self._conn
        import aiosqlite

        async with self._lock():
            if self._conn is not None:
                return self._conn
            path = self.url.path
            try:
                pending = aiosqlite.connect(path, isolation_level=None)
                # A DataFlow nobody closed must not keep the interpreter alive at exit:
                # aiosqlite's worker thread is non-daemon by default.
                worker = getattr(pending, "_thread", pending)
                try:
                    worker.daemon = True
                except (AttributeError, RuntimeError):
                    pass
                db = await pending
                await db.create_function("regexp", 2, _regexp, deterministic=True)
                # SQLite's LOWER() folds ASCII only; $ilike needs Unicode case folding.
                await db.create_function("df_lower", 1, _lower, deterministic=True)
                for sql in self.dialect.connect_sql(path, self.config.pool_timeout):
                    await db.execute(sql)
            except Exception as exc:
                raise E.DatabaseConnectionError(f"cannot open SQLite database {path!r}: {exc}", exc) from exc
            self._db = db
            self._conn = _LiteConn(db)
        return self._conn

    async def _locked(self) -> asyncio.Lock:
        """Take the statement lock, waiting at most pool_timeout (the pool of one connection)."""
        lk = self._lock()
        try:
            async with asyncio.timeout(self.config.pool_timeout):
                await lk.acquire()
        except TimeoutError:
            raise E.DatabaseConnectionError(
                f"timed out after {self.config.pool_timeout}s waiting for the SQLite connection "
                f"(another task holds it, e.g. a long transaction); raise pool_timeout") from None
        return lk

    @contextlib.asynccontextmanager
    async def _borrow(self):
        tx = self._tx.get()
        if tx is not None:
            yield tx
            return
        conn = self._conn or await self.open()
        lk = await self._locked()
        try:
            yield conn
        finally:
            lk.release()

    async def _fetch(self, sql, params=()):
        async with self._borrow() as c:
            return await c.fetch(sql, params)

    async def _fetchrow(self, sql, params=()):
        async with self._borrow() as c:
            return await c.fetchrow(sql, params)

    async def _execute(self, sql, params=()):
        async with self._borrow() as c:
            return await c.execute(sql, params)

    async def _executemany(self, sql, rows):
        async with self.transaction():
            await self._tx.get().executemany(sql, rows)

    async def insert_rows(self, sql: str, rows, start: int = 0, on_release=None, writes=None) -> int:
        """The bulk writer (``_native.sqlitebulk``): one prepared INSERT stepped for every row in
        one worker-thread hop, inside this task's transaction; returns the changes.  See
        ``_LiteConn.insert_rows`` (GIL released while SQLite writes; ``row_index`` on failure)."""
        conn = self._tx.get()
        if conn is None:
            raise E.ValidationError("insert_rows runs inside a transaction: use `async with driver.transaction():`")
        n = await conn.insert_rows(sql, rows, start, on_release)
        if writes:
            await self.wrote(writes, conn)
        return n

    async def _insert(self, sql, params=()):
        async with self._borrow() as c:
            return await c.insert(sql, params)

    # -- transactions ----------------------------------------------------------------------------
    async def _begin(self, isolation) -> "_LiteConn":
        (begin,) = self.dialect.begin_sql(isolation)
        conn = self._conn or await self.open()
        lk = await self._locked()
        task = asyncio.ensure_future(conn.execute(begin))
        try:
            await asyncio.shield(task)
        except BaseException:
            # A cancelled caller does not stop the worker thread: BEGIN may still run after this
            # point.  Wait for it and undo it before the connection is free again, or the next
            # BEGIN fails ("cannot start a transaction within a transaction").
            await finish(_undo_begin(task, conn, lk))
            raise
        tx = _LiteConn(conn.db)
        tx.lock = lk
        return tx

    async def _commit(self, conn) -> None:
        try:
            await conn.execute("COMMIT")
        except E.DatabaseError:
            if conn.db.in_transaction:  # e.g. SQLITE_BUSY: still open, undo it
                try:
                    await conn.execute("ROLLBACK")
                except E.DatabaseError:
                    pass
            raise
        finally:
            conn.lock.release()

    async def _rollback(self, conn) -> None:
        try:
            if conn.db.in_transaction:
                await conn.execute("ROLLBACK")
        except E.DatabaseError:
            pass
        finally:
            conn.lock.release()

    @contextlib.asynccontextmanager
    async def connection(self):
        async with self._borrow() as c:
            yield c.db

    async def server_info(self) -> dict:
        row = await self.fetchrow("SELECT sqlite_version()")
        return {"version": row[0], "max_connections": 1}

    def pool_stats(self) -> dict:
        active = 1 if any(lk.locked() for lk in self._locks.values()) else 0
        opened = 1 if self._conn is not None else 0
        return {"active": active, "idle": opened - active, "max": 1, "overflow": 0, "max_overflow": 0,
                "utilization": float(active)}

    async def close(self):
        self.closed = True
        if self._db is not None:
            db, self._db, self._conn = self._db, None, None
            await db.close()
