"""asyncpg behind the driver contract: one pool per event loop, errors translated here only."""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from .. import errors as E
from .base import Conn, Driver

_CONN_CODES_PREFIX = ("08", "57P")  # connection exceptions, admin shutdown / crash


def translate(exc: BaseException) -> BaseException:
    """asyncpg / OS exception -> dataflow.errors exception (with .orig)."""
    import asyncpg

    if isinstance(exc, E.DataFlowError):
        return exc
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.UniqueViolationError):
        return E.UniqueViolationError(f"unique constraint violated: {msg}", exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return E.IntegrityError(f"constraint violated: {msg}", exc)
    if isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
        return E.TransactionConflictError(f"transaction conflict, retry the transaction: {msg}", exc)
    if isinstance(exc, (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError,
                        asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)) or (
            isinstance(exc, asyncpg.PostgresError) and str(getattr(exc, "sqlstate", "")).startswith(_CONN_CODES_PREFIX)):
        return E.DatabaseConnectionError(f"PostgreSQL connection failed: {msg}", exc)
    if isinstance(exc, asyncio.TimeoutError):
        return E.DatabaseConnectionError("timed out waiting for a PostgreSQL connection; raise pool_size or pool_timeout", exc)
    return E.QueryError(f"PostgreSQL rejected the statement: {msg}", exc)


class _PgConn(Conn):
    __slots__ = ("con",)

    def __init__(self, con):
        self.con = con

    async def fetch(self, sql, params=()):
        try:
            return await self.con.fetch(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def fetchrow(self, sql, params=()):
        try:
            return await self.con.fetchrow(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def execute(self, sql, params=()):
        try:
            status = await self.con.execute(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc
        return _rowcount(status)

    async def executemany(self, sql, rows):
        try:
            await self.con.executemany(sql, rows)
        except Exception as exc:
            raise translate(exc) from exc

    async def insert(self, sql, params=()):
        try:
            return await self.con.fetchval(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc


def _rowcount(status: str) -> int:
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class PostgreSQLDriver(Driver):
    dialect_name = "postgresql"

    def __init__(self, config):
        super().__init__(config)
        self._pools: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._lock: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def _connect_kwargs(self) -> dict:
        u = self.url
        kw = {"host": u.host, "port": u.port or 5432, "user": u.user or "postgres",
              "database": u.database or "postgres"}
        if u.password:
            kw["password"] = u.password
        return kw

    async def pool(self):
        """This loop's pool, created on first use (asyncpg pools are bound to one loop)."""
        loop = asyncio.get_running_loop()
        p = self._pools.get(loop)
        if p is not None:
            return p
        lock = self._lock.setdefault(loop, asyncio.Lock())
        async with lock:
            p = self._pools.get(loop)
            if p is None:
                import asyncpg

                size = self.config.pool_size or 10
                try:
                    p = await asyncpg.create_pool(**self._connect_kwargs(), min_size=1, max_size=size,
                                                  max_inactive_connection_lifetime=self.config.pool_recycle,
                                                  timeout=self.config.pool_timeout, command_timeout=None)
                except Exception as exc:
                    raise E.DatabaseConnectionError(
                        f"cannot connect to PostgreSQL at {self.url.redacted()}: {exc}", exc) from exc
                self._pools[loop] = p
        return p

    async def fetch(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.fetch(sql, params)
        p = self._pools.get(asyncio.get_running_loop()) or await self.pool()
        try:
            return await p.fetch(sql, *params, timeout=None)
        except Exception as exc:
            raise translate(exc) from exc

    async def fetchrow(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.fetchrow(sql, params)
        p = self._pools.get(asyncio.get_running_loop()) or await self.pool()
        try:
            return await p.fetchrow(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def execute(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.execute(sql, params)
        p = self._pools.get(asyncio.get_running_loop()) or await self.pool()
        try:
            return _rowcount(await p.execute(sql, *params))
        except Exception as exc:
            raise translate(exc) from exc

    async def executemany(self, sql, rows):
        async with self.transaction() as c:
            await c.executemany(sql, rows)

    async def insert(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.insert(sql, params)
        p = self._pools.get(asyncio.get_running_loop()) or await self.pool()
        try:
            return await p.fetchval(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    @contextlib.asynccontextmanager
    async def transaction(self, isolation: str | None = None):
        """Run the block in a transaction (a savepoint when already inside one)."""
        outer = self._tx.get()
        if outer is not None:
            tr = outer.con.transaction()
            try:
                await tr.start()
            except Exception as exc:
                raise translate(exc) from exc
            try:
                yield outer
            except BaseException:
                await tr.rollback()
                raise
            else:
                await tr.commit()
            return
        p = await self.pool()
        try:
            con = await p.acquire(timeout=self.config.pool_timeout)
        except Exception as exc:
            raise translate(exc) from exc
        conn = _PgConn(con)
        token = self._tx.set(conn)
        try:
            tr = con.transaction(isolation=isolation)
            await tr.start()
            try:
                yield conn
            except BaseException:
                await tr.rollback()
                raise
            else:
                try:
                    await tr.commit()
                except Exception as exc:
                    raise translate(exc) from exc
        finally:
            self._tx.reset(token)
            await p.release(con)

    @contextlib.asynccontextmanager
    async def connection(self):
        """Borrow one raw asyncpg connection (COPY, multi-statement work)."""
        tx = self._tx.get()
        if tx is not None:
            yield tx.con
            return
        p = await self.pool()
        async with p.acquire(timeout=self.config.pool_timeout) as con:
            yield con

    async def server_info(self) -> dict:
        row = await self.fetchrow("SELECT current_setting('server_version_num')::int, current_setting('max_connections')::int")
        return {"version": row[0], "max_connections": row[1]}

    def pool_stats(self) -> dict:
        pools = list(self._pools.values())
        mx = self.config.pool_size or 10
        if not pools:
            return {"active": 0, "idle": 0, "max": mx, "overflow": 0, "max_overflow": 0, "utilization": 0.0}
        size = sum(p.get_size() for p in pools)
        idle = sum(p.get_idle_size() for p in pools)
        active = size - idle
        return {"active": active, "idle": idle, "max": mx * len(pools), "overflow": 0, "max_overflow": 0,
                "utilization": round(active / (mx * len(pools)), 4)}

    async def close(self):
        self.closed = True
        loop = asyncio.get_running_loop()
        for lp, p in list(self._pools.items()):
            if lp is loop:
                await p.close()
            elif not lp.is_closed():
                lp.call_soon_threadsafe(p.terminate)
            # a pool whose loop is closed has lost its connections already
        self._pools.clear()
