"""aiomysql behind the driver contract: strict SQL mode and UTC on every connection, one pool
per event loop, errors translated here only."""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref

from .. import errors as E
from .base import Conn, Driver

INIT_SQL = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'")
_CONN_ERRNOS = {2002, 2003, 2006, 2013, 2055, 1927, 1040, 1053}
_CONFLICT_ERRNOS = {1213, 1205}


def translate(exc: BaseException) -> BaseException:
    import pymysql

    if isinstance(exc, E.DataFlowError):
        return exc
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    msg = exc.args[1] if len(exc.args) > 1 else str(exc)
    if isinstance(exc, pymysql.err.IntegrityError):
        if code == 1062:
            # MySQL quotes the duplicate value; keep only the key name (values stay out of messages).
            key = re.search(r"for key '([^']*)'", str(msg))
            where = f" (key {key.group(1)})" if key else ""
            return E.UniqueViolationError(f"unique constraint violated{where}", exc)
        return E.IntegrityError(f"constraint violated: {msg}", exc)
    if code in _CONFLICT_ERRNOS:
        return E.TransactionConflictError(f"transaction conflict, retry the transaction: {msg}", exc)
    if code in _CONN_ERRNOS or isinstance(exc, (OSError, pymysql.err.InterfaceError)):
        return E.DatabaseConnectionError(f"MySQL connection failed: {msg}", exc)
    if isinstance(exc, asyncio.TimeoutError):
        return E.DatabaseConnectionError("timed out waiting for a MySQL connection; raise pool_size or pool_timeout", exc)
    return E.QueryError(f"MySQL rejected the statement: {msg}", exc)


class _MyConn(Conn):
    __slots__ = ("con",)

    def __init__(self, con):
        self.con = con

    async def fetch(self, sql, params=()):
        try:
            async with self.con.cursor() as cur:
                await cur.execute(sql, params or None)
                return await cur.fetchall()
        except Exception as exc:
            raise translate(exc) from exc

    async def fetchrow(self, sql, params=()):
        try:
            async with self.con.cursor() as cur:
                await cur.execute(sql, params or None)
                return await cur.fetchone()
        except Exception as exc:
            raise translate(exc) from exc

    async def execute(self, sql, params=()):
        try:
            async with self.con.cursor() as cur:
                return await cur.execute(sql, params or None)
        except Exception as exc:
            raise translate(exc) from exc

    async def executemany(self, sql, rows):
        try:
            async with self.con.cursor() as cur:
                await cur.executemany(sql, rows)
        except Exception as exc:
            raise translate(exc) from exc

    async def insert(self, sql, params=()):
        try:
            async with self.con.cursor() as cur:
                await cur.execute(sql, params or None)
                return cur.lastrowid
        except Exception as exc:
            raise translate(exc) from exc


class MySQLDriver(Driver):
    dialect_name = "mysql"

    def __init__(self, config):
        super().__init__(config)
        self._pools: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._lock: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    async def pool(self):
        loop = asyncio.get_running_loop()
        p = self._pools.get(loop)
        if p is not None:
            return p
        lock = self._lock.setdefault(loop, asyncio.Lock())
        async with lock:
            p = self._pools.get(loop)
            if p is None:
                import aiomysql

                u = self.url
                try:
                    p = await aiomysql.create_pool(
                        host=u.host or "127.0.0.1", port=u.port or 3306, user=u.user or "root",
                        password=u.password or "", db=u.database or "test", minsize=1,
                        maxsize=self.config.pool_size or 10, autocommit=True, charset="utf8mb4",
                        init_command=INIT_SQL, pool_recycle=int(self.config.pool_recycle),
                        connect_timeout=self.config.pool_timeout)
                except Exception as exc:
                    raise E.DatabaseConnectionError(
                        f"cannot connect to MySQL at {self.url.redacted()}: {exc}", exc) from exc
                self._pools[loop] = p
        return p

    @contextlib.asynccontextmanager
    async def _borrow(self):
        tx = self._tx.get()
        if tx is not None:
            yield tx
            return
        p = await self.pool()
        try:
            con = await asyncio.wait_for(p.acquire(), self.config.pool_timeout)
        except Exception as exc:
            raise translate(exc) from exc
        broken = False
        try:
            yield _MyConn(con)
        except E.DatabaseConnectionError:
            broken = True
            raise
        finally:
            if broken:
                con.close()
            p.release(con)

    async def fetch(self, sql, params=()):
        async with self._borrow() as c:
            return await c.fetch(sql, params)

    async def fetchrow(self, sql, params=()):
        async with self._borrow() as c:
            return await c.fetchrow(sql, params)

    async def execute(self, sql, params=()):
        async with self._borrow() as c:
            return await c.execute(sql, params)

    async def executemany(self, sql, rows):
        async with self.transaction() as c:
            await c.executemany(sql, rows)

    async def insert(self, sql, params=()):
        async with self._borrow() as c:
            return await c.insert(sql, params)

    @contextlib.asynccontextmanager
    async def transaction(self, isolation: str | None = None):
        outer = self._tx.get()
        if outer is not None:
            name = f"sp_{id(outer)}_{getattr(outer, 'depth', 0) + 1}"
            outer.depth = getattr(outer, "depth", 0) + 1
            await outer.execute(f"SAVEPOINT {name}")
            try:
                yield outer
            except BaseException:
                await outer.execute(f"ROLLBACK TO SAVEPOINT {name}")
                raise
            else:
                await outer.execute(f"RELEASE SAVEPOINT {name}")
            finally:
                outer.depth -= 1
            return
        p = await self.pool()
        try:
            con = await asyncio.wait_for(p.acquire(), self.config.pool_timeout)
        except Exception as exc:
            raise translate(exc) from exc
        conn = _MyConn(con)
        token = self._tx.set(conn)
        ok = False
        try:
            if isolation:
                await conn.execute(f"SET TRANSACTION ISOLATION LEVEL {_isolation(isolation)}")
            await conn.execute("START TRANSACTION")
            try:
                yield conn
            except BaseException:
                try:
                    await con.rollback()
                except Exception:
                    con.close()
                raise
            else:
                try:
                    await con.commit()
                except Exception as exc:
                    con.close()
                    raise translate(exc) from exc
            ok = True
        finally:
            self._tx.reset(token)
            if not ok and not con.closed:
                pass
            p.release(con)

    @contextlib.asynccontextmanager
    async def connection(self):
        async with self._borrow() as c:
            yield c.con

    async def server_info(self) -> dict:
        row = await self.fetchrow("SELECT VERSION(), @@max_connections, @@max_allowed_packet")
        return {"version": row[0], "max_connections": row[1], "max_allowed_packet": row[2]}

    def pool_stats(self) -> dict:
        pools = list(self._pools.values())
        mx = self.config.pool_size or 10
        if not pools:
            return {"active": 0, "idle": 0, "max": mx, "overflow": 0, "max_overflow": 0, "utilization": 0.0}
        size = sum(p.size for p in pools)
        idle = sum(p.freesize for p in pools)
        active = size - idle
        return {"active": active, "idle": idle, "max": mx * len(pools), "overflow": 0, "max_overflow": 0,
                "utilization": round(active / (mx * len(pools)), 4)}

    async def close(self):
        self.closed = True
        loop = asyncio.get_running_loop()
        for lp, p in list(self._pools.items()):
            if lp is loop:
                p.close()
                await p.wait_closed()
            elif not lp.is_closed():
                lp.call_soon_threadsafe(p.terminate)
            else:
                for con in list(getattr(p, "_free", ())) + list(getattr(p, "_used", ())):
                    _drop(con)
        self._pools.clear()


def _drop(con) -> None:
    """Forget a connection whose loop is gone without touching the closed loop."""
    try:
        con._writer = None
        con._reader = None
    except Exception:
        pass


def _isolation(level: str) -> str:
    levels = {"read_uncommitted": "READ UNCOMMITTED", "read_committed": "READ COMMITTED",
              "repeatable_read": "REPEATABLE READ", "serializable": "SERIALIZABLE"}
    key = level.lower().replace(" ", "_")
    if key not in levels:
        raise E.ValidationError(f"unknown isolation level {level!r}; use one of {', '.join(levels)}")
    return levels[key]
