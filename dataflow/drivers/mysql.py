"""aiomysql behind the driver contract: strict SQL mode and UTC on every connection, one pool
per event loop, errors translated here only.

The pool is ours (``pool.Pool``), not aiomysql's: a connection whose query was cancelled is in
an unknown protocol state, so it is discarded and its server thread killed (the server would
otherwise keep running the query and holding its locks); a connection that ran session-changing
SQL is reset with COM_RESET_CONNECTION before the next borrower.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from .. import errors as E
from .base import Conn, Driver, finish, touches_session
from .mysql_text import DECODERS, interpolate
from .pool import Pool
from .loops import LoopPools, close_dead_transport

INIT_SQL = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'")
_CONN_ERRNOS = {2002, 2003, 2006, 2013, 2055, 1927, 1040, 1053, 4031}
_CONFLICT_ERRNOS = {1213, 1205}
_COM_RESET_CONNECTION = 0x1F
def _code(exc) -> int | None:
    return exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else None


def _not_sent(exc) -> bool:
    """aiomysql refuses before writing when the connection is already closed."""
    import pymysql

    return isinstance(exc, pymysql.err.InterfaceError) or _code(exc) == 2006


def translate(exc: BaseException, unknown: bool = False) -> BaseException:
    import pymysql

    if isinstance(exc, E.DataFlowError):
        return exc
    code = _code(exc)
    msg = exc.args[1] if len(exc.args) > 1 else (str(exc) or type(exc).__name__)
    if isinstance(exc, pymysql.err.IntegrityError):
        if code == 1062:
            # MySQL quotes the duplicate value; keep only the key name (values stay out of messages).
            key = re.search(r"for key '([^']*)'", str(msg))
            where = f" (key {key.group(1)})" if key else ""
            return E.UniqueViolationError(f"unique constraint violated{where}", exc)
        return E.IntegrityError(f"constraint violated: {msg}", exc)
    if code in _CONFLICT_ERRNOS:
        return E.TransactionConflictError(f"transaction conflict, retry the transaction: {msg}", exc)
    if code in _CONN_ERRNOS or isinstance(exc, (OSError, pymysql.err.InterfaceError, EOFError)):
        if unknown and not _not_sent(exc):
            return E.OutcomeUnknownError(
                f"MySQL connection lost after the write was sent; it may or may not have been "
                f"committed -- check before retrying: {msg}", exc)
        return E.DatabaseConnectionError(f"MySQL connection failed: {msg}", exc)
    if isinstance(exc, asyncio.TimeoutError):
        return E.DatabaseConnectionError("timed out waiting for a MySQL connection; raise pool_size or pool_timeout", exc)
    return E.QueryError(f"MySQL rejected the statement: {msg}", exc)


class _MyConn(Conn):
    """A borrowed connection.  ``busy``: a statement is in flight (cancelled then = kill + discard)."""

    __slots__ = ("con", "busy", "dirty", "broken", "sp_counter", "in_tx", "pool", "written")

    def __init__(self, con):
        self.con = con
        self.written = None
        self.busy = False
        self.dirty = False
        self.broken = False
        self.sp_counter = 0
        self.in_tx = False
        self.pool = None

    async def _run(self, sql, params, how, unknown=False):
        """One statement, sent as aiomysql's cursor would send it but without the cursor (its
        object, context manager and two futures per fetchone are ~10% of a point read):
        parameters through ``mysql_text.interpolate``, the result read off the connection."""
        if not self.dirty and touches_session(sql):
            self.dirty = True
        con = self.con
        self.busy = True
        try:
            if how == 0 and not params and sql == "BEGIN":
                # aiomysql's own begin(), which reads just the OK packet
                await con.begin()
                self.busy = False
                return 0
            await con.query(interpolate(con, sql, params))
            res = con._result
            if how == 1:
                out = res.rows if res.rows is not None else []
            elif how == 2:
                out = res.rows[0] if res.rows else None
            elif how == 0:
                out = res.affected_rows
            else:
                out = res.insert_id
            while res.has_next:  # a CALL's further results: read off, as the cursor's close does
                await con.next_result()
                res = con._result
        except Exception as exc:
            self.busy = False
            err = translate(exc, unknown=unknown and not self.in_tx)
            if isinstance(err, E.DatabaseConnectionError):
                self.broken = True
            raise err from exc
        self.busy = False
        return out

    async def fetch(self, sql, params=()):
        return await self._run(sql, params, 1)

    async def fetchrow(self, sql, params=()):
        return await self._run(sql, params, 2)

    async def execute(self, sql, params=()):
        return await self._run(sql, params, 0, True)

    async def insert(self, sql, params=()):
        return await self._run(sql, params, 3, True)

    async def executemany(self, sql, rows):
        self.busy = True
        try:
            async with self.con.cursor() as cur:
                await cur.executemany(sql, rows)
                n = cur.rowcount
        except Exception as exc:
            self.busy = False
            err = translate(exc, unknown=not self.in_tx)
            if isinstance(err, E.DatabaseConnectionError):
                self.broken = True
            raise err from exc
        self.busy = False
        return n  # affected rows: 1 per inserted row, 2 per updated one (ON DUPLICATE KEY UPDATE)


class MySQLDriver(Driver):
    dialect_name = "mysql"
    #: _commit gives the connection back without a suspension when it is clean, and under
    #: ``finish`` (immune to a second cancellation) otherwise
    inline_commit = True

    def __init__(self, config):
        super().__init__(config)
        self._loops = LoopPools(_close_pool, _abandon_pool, lambda p: p.in_use + len(p._idle),
                                _shed_idle, "MySQL")
        self.pool_size: int | None = config.pool_size
        #: True once pool_size holds the size derived from the server (or given)
        self._sized = False
        #: LOAD DATA LOCAL INFILE for the bulk loader (the server must allow it too)
        self.local_infile = True

    async def _connect(self):
        import aiomysql

        u = self.url
        return await aiomysql.connect(
            host=u.host or "127.0.0.1", port=u.port or 3306, user=u.user or "root",
            password=u.password or "", db=u.database or "test", autocommit=True, charset="utf8mb4",
            init_command=INIT_SQL, connect_timeout=self.config.pool_timeout,
            local_infile=self.local_infile, conv=DECODERS)

    async def _reset(self, raw) -> None:
        """Session state back to what a fresh connection has (only after session-changing SQL)."""
        if getattr(raw, "_df_dirty", False):
            await raw._execute_command(_COM_RESET_CONNECTION, b"")
            await raw._read_ok_packet()
            await raw.query("SET NAMES utf8mb4")
            await raw.query(INIT_SQL)
            raw._df_dirty = False

    async def _size(self) -> int:
        from .. import pools

        if not pools.startup_validation():
            return self.pool_size or pools.DEFAULT_SIZE
        raw = await self._connect()
        try:
            async with raw.cursor() as cur:
                await cur.execute("SELECT @@max_connections")
                (mx,) = await cur.fetchone()
        finally:
            raw.close()
        # MySQL keeps one extra slot for SUPER/CONNECTION ADMIN beyond max_connections; we
        # reserve one more for administration.
        return pools.derive(self.config.pool_size, int(mx), 1, where="MySQL")

    async def pool(self) -> Pool:
        """This loop's pool (aiomysql connections are bound to one loop), closed when the loop
        shuts down; all loops' pools share one budget of ``pool_size`` connections."""
        return self._loops.get() or await self._loops.create(self._make_pool)

    async def _make_pool(self) -> Pool:
        try:
            size = await self._ensure_size()
        except Exception as exc:
            raise E.DatabaseConnectionError(
                f"cannot connect to MySQL at {self.url.redacted()}: {exc}", exc) from exc
        return Pool(self._connect_budgeted, lambda raw: raw._writer is not None and not raw.closed,
                    self._reset, lambda raw: raw.close(), size, self.config.pool_timeout,
                    self.config.pool_recycle, "MySQL")

    async def _connect_budgeted(self):
        await self._loops.reserve(self.pool_size, self.config.pool_timeout)
        try:
            return await self._connect_translated()
        finally:
            self._loops.connected()

    async def _connect_translated(self):
        try:
            return await self._connect()
        except Exception as exc:
            raise E.DatabaseConnectionError(
                f"cannot connect to MySQL at {self.url.redacted()}: {translate(exc)}", exc) from exc

    async def _kill(self, thread_id: int) -> None:
        """Stop a cancelled statement server-side (its connection is being discarded)."""
        try:
            raw = await asyncio.wait_for(self._connect(), 5)
        except Exception:
            return
        try:
            async with raw.cursor() as cur:
                await cur.execute(self.dialect.kill_sql(thread_id))
        except Exception:
            pass  # already gone
        finally:
            raw.close()

    async def _give_back(self, p: Pool, c: _MyConn) -> None:
        """Return a borrowed connection: rolled back if a transaction is open, reset if dirty,
        discarded (and killed server-side if a statement was in flight) when in doubt."""
        raw = c.con
        discard = c.broken or c.busy
        if c.busy and not c.broken:
            tid = raw.thread_id()
            raw.close()
            await self._kill(tid)
        elif not discard and c.in_tx:
            try:
                await raw.rollback()
            except Exception:
                discard = True
        if c.dirty:
            raw._df_dirty = True
        await p.release(raw, discard)

    async def _take(self) -> tuple[Pool, _MyConn]:
        p = self._loops.get() or await self.pool()
        raw = await p.acquire()
        return p, _MyConn(raw)

    @contextlib.asynccontextmanager
    async def _borrow(self):
        tx = self._tx.get()
        if tx is not None:
            yield tx
            return
        p, c = await self._take()
        try:
            yield c
        finally:
            await finish(self._give_back(p, c))

    async def _one(self, how: str, sql, params):
        tx = self._tx.get()
        if tx is not None:
            return await getattr(tx, how)(sql, params)
        write = how in ("execute", "insert")
        for attempt in (0, 1):
            p, c = await self._take()
            try:
                return await getattr(c, how)(sql, params)
            except E.DatabaseConnectionError as exc:
                # died while idle in the pool: retry a read, or a write that never left
                if attempt or isinstance(exc, E.OutcomeUnknownError) or (write and not _not_sent(exc.orig)):
                    raise
            finally:
                # the common case (statement done, session untouched) goes back without a
                # suspension, so without a cleanup task per statement; the rest as before
                if c.busy or c.broken or c.dirty or c.in_tx or not p.put_back(c.con):
                    await finish(self._give_back(p, c))

    async def _fetch(self, sql, params=()):
        return await self._one("fetch", sql, params)

    async def _fetchrow(self, sql, params=()):
        return await self._one("fetchrow", sql, params)

    async def _execute(self, sql, params=()):
        return await self._one("execute", sql, params)

    async def _insert(self, sql, params=()):
        return await self._one("insert", sql, params)

    async def _executemany(self, sql, rows):
        async with self.transaction():
            await self._tx.get().executemany(sql, rows)

    # -- transactions ----------------------------------------------------------------------------
    async def _begin(self, isolation) -> _MyConn:
        stmts = self.dialect.begin_sql(isolation)
        for attempt in (0, 1):
            p, c = await self._take()
            c.in_tx = True
            c.pool = p
            try:
                for s in stmts:
                    await c.execute(s)
            except BaseException as exc:
                await finish(self._give_back(p, c))
                if attempt == 0 and isinstance(exc, E.DatabaseConnectionError):
                    continue
                raise
            return c

    async def _commit(self, c: _MyConn) -> None:
        p = c.pool
        try:
            c.busy = True
            await c.con.commit()
            c.busy = False
            c.in_tx = False
        except Exception as exc:
            c.broken = True
            err = translate(exc, unknown=True)
            if not isinstance(err, E.DatabaseConnectionError):
                c.broken = False  # e.g. a deadlock reported at commit: the server rolled back
            raise err from exc
        finally:
            # committed and clean: back at once; else (cancelled mid-COMMIT: busy, or failed)
            # the full give-back, shielded, since it kills the server thread and may suspend
            if c.busy or c.broken or c.dirty or c.in_tx or not p.put_back(c.con):
                await finish(self._give_back(p, c))

    async def _rollback(self, c: _MyConn) -> None:
        await self._give_back(c.pool, c)  # rolls back (or discards) an open transaction

    @contextlib.asynccontextmanager
    async def connection(self):
        """Borrow one raw aiomysql connection (reset before reuse, since it may change the session)."""
        async with self._borrow() as c:
            c.dirty = True
            yield c.con

    async def _position_of(self, sql: str):
        """One value read outside any transaction, hooks and routing (replica probes)."""
        row = await MySQLDriver._one(self, "fetchrow", sql, ())
        return None if row is None else row[0]

    async def load_data(self, sql: str, path: str, expected: int, writes=None) -> tuple[int, tuple | None]:
        """Run ``LOAD DATA LOCAL INFILE`` (``sql``, the file name as its one parameter) on a
        dedicated connection opened with ``local_infile`` (the pool's are not), in one
        transaction: committed only when the server loaded exactly ``expected`` rows and
        raised no warning (LOAD DATA turns bad values and duplicate keys into warnings);
        otherwise rolled back.  Returns (rows loaded, first warning or None).  Cancellation or
        an error drops the connection, so nothing is committed."""
        from .mysql_infile import connection_class

        u = self.url
        con = None
        try:
            # the file is streamed by our sender (mysql_infile): aiomysql's own one sends
            # 2**24-1-byte packets, which the server joins past max_allowed_packet
            max_packet = int((await self.fetchrow("SELECT @@max_allowed_packet"))[0])
            con = connection_class(path, max_packet)(
                host=u.host or "127.0.0.1", port=u.port or 3306, user=u.user or "root",
                password=u.password or "", db=u.database or "test", autocommit=False,
                charset="utf8mb4", init_command=INIT_SQL, local_infile=True,
                connect_timeout=self.config.pool_timeout)
            await con._connect()
        except Exception as exc:
            if con is not None:
                con.close()
            raise translate(exc) from exc
        try:
            async with con.cursor() as cur:
                await cur.execute(sql, (path,))
                loaded = cur.rowcount
                await cur.execute("SHOW WARNINGS LIMIT 1")
                warn = await cur.fetchone()
            if loaded != expected or warn:
                await con.rollback()
                return loaded, warn or None
            await con.commit()
        except BaseException as exc:
            con.close()
            if isinstance(exc, Exception):
                raise translate(exc) from exc
            raise
        finally:
            if not con.closed:
                con.close()
        if writes:
            await self.hooks.fire_after_commit(writes)
        return loaded, None

    async def server_info(self) -> dict:
        row = await self.fetchrow("SELECT VERSION(), @@max_connections, @@max_allowed_packet")
        return {"version": row[0], "max_connections": row[1], "max_allowed_packet": row[2]}

    def pool_stats(self) -> dict:
        """Connections of every live loop's pool against the one budget (``max``)."""
        mx = self._size_now()
        stats = [p.stats() for p in self._loops.live()]
        active = sum(s["active"] for s in stats)
        return {"active": active, "idle": sum(s["idle"] for s in stats), "max": mx, "overflow": 0,
                "max_overflow": 0, "utilization": round(active / mx, 4),
                "discarded": sum(s["discarded"] for s in stats)}

    async def close(self):
        self.closed = True
        await self._loops.close_all()


async def _close_pool(p: Pool) -> None:
    p.close()


def _abandon_pool(p: Pool) -> None:
    """Close the idle connections of a pool whose loop is closed without that loop."""
    p.closed = True
    while p._idle:
        raw = p._idle.pop()[0]
        writer, raw._writer, raw._reader = raw._writer, None, None
        if writer is not None:
            close_dead_transport(writer.transport)


def _shed_idle(p: Pool) -> None:
    """Close ``p``'s idle connections (in its loop) so another loop can open one."""
    while p._idle:
        p._drop(p._idle.pop()[0])


class ReadOnlyMySQLDriver(MySQLDriver):
    """A read replica's driver: its sessions are READ ONLY, so a statement taken for a read that
    writes after all fails there (and runs on the primary) instead of changing the replica
    (MariaDB's ``read_only`` does not stop a user with privileges such as root)."""

    async def _connect(self):
        raw = await super()._connect()
        try:
            await raw.query("SET SESSION TRANSACTION READ ONLY")
        except BaseException:
            raw.close()
            raise
        return raw

    async def _reset(self, raw) -> None:
        dirty = getattr(raw, "_df_dirty", False)
        await super()._reset(raw)
        if dirty:
            await raw.query("SET SESSION TRANSACTION READ ONLY")


def read_only_driver(config) -> ReadOnlyMySQLDriver:
    return ReadOnlyMySQLDriver(config)
