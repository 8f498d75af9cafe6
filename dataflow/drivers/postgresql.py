"""asyncpg behind the driver contract: one pool per event loop, errors translated here only.

asyncpg's pool resets a returned connection (ROLLBACK if needed, then RESET ALL, unlock
advisory locks, UNLISTEN: one more round trip) and waits for a server-side cancel of a cancelled
query; we add the acquire timeout on every path, the "outcome unknown" rule, one retry for reads
on a connection that died while idle, and skip the reset round trip when the connection ran only
plain statements (``_session_kept``): the rollback and listener cleanup still happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import re
import weakref

from .. import errors as E
from .base import RAW_SQL, Conn, Driver, finish, text_test
from .loops import LoopPools, close_dead_transport
from .waits import WaitWatch

_COPY_LINE = re.compile(r"\bCOPY [^,]+, line (\d+)")
_CONN_CODES_PREFIX = ("08", "57P")  # connection exceptions, admin shutdown / crash
def _is_conn_error(exc: BaseException) -> bool:
    import asyncpg

    if isinstance(exc, asyncpg.InternalClientError):
        return True  # protocol state broken (seen right after a server restart): drop the connection
    if isinstance(exc, asyncpg.InterfaceError):
        # DataError (a bad argument) and "another operation is in progress" are InterfaceErrors too
        return not isinstance(exc, asyncpg.DataError) and "closed" in str(exc)
    return isinstance(exc, (asyncpg.ConnectionDoesNotExistError, OSError,
                            asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                            ConnectionError, EOFError)) or (
        isinstance(exc, asyncpg.PostgresError) and str(getattr(exc, "sqlstate", "")).startswith(_CONN_CODES_PREFIX))


def _not_sent(exc: BaseException) -> bool:
    """The statement never reached the server (the connection was already known closed)."""
    import asyncpg

    return type(exc) is asyncpg.InterfaceError and "connection is closed" in str(exc)


def _server_said(exc: BaseException) -> bool:
    """The server answered (e.g. terminated the backend while it ran the statement)."""
    import asyncpg

    return isinstance(exc, asyncpg.PostgresError)


def _drop(con) -> None:
    """Close a connection known to be broken so the pool reconnects instead of reusing it."""
    try:
        if not con.is_closed():
            con.terminate()
    except Exception:
        pass


async def _release(p, con) -> None:
    """Return ``con`` to the pool; a connection that fails to go back is dropped, never raised."""
    try:
        await p.release(con)
    except Exception:
        _drop(con)


def translate(exc: BaseException, unknown: bool = False) -> BaseException:
    """asyncpg / OS exception -> dataflow.errors exception (with .orig).

    ``unknown``: the statement may have committed (autocommit write or COMMIT) -- a connection
    failure then becomes OutcomeUnknownError instead of a retryable DatabaseConnectionError.
    """
    if isinstance(exc, E.DataFlowError):
        return exc
    err = _translate(exc, unknown)
    if isinstance(err, E.DatabaseError):
        err.sqlstate = getattr(exc, "sqlstate", None)
    return err


def _translate(exc: BaseException, unknown: bool) -> BaseException:
    import asyncpg

    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.UniqueViolationError):
        return E.UniqueViolationError(f"unique constraint violated: {msg}", exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return E.IntegrityError(f"constraint violated: {msg}", exc)
    if isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
        return E.TransactionConflictError(f"transaction conflict, retry the transaction: {msg}", exc)
    if _is_conn_error(exc):
        if unknown and not _not_sent(exc):
            return E.OutcomeUnknownError(
                f"PostgreSQL connection lost after the write was sent; it may or may not have been "
                f"committed -- check before retrying: {msg}", exc)
        return E.DatabaseConnectionError(f"PostgreSQL connection failed: {msg}", exc)
    if isinstance(exc, asyncio.TimeoutError):
        return E.DatabaseConnectionError("timed out waiting for a PostgreSQL connection; raise pool_size or pool_timeout", exc)
    return E.QueryError(f"PostgreSQL rejected the statement: {msg}", exc)


class _PgConn(Conn):
    """The connection of one transaction (statements inside it are never "outcome unknown")."""

    __slots__ = ("con", "pool", "sp_counter", "written", "kept")

    def __init__(self, con, pool=None):
        self.con = con
        self.pool = pool
        self.sp_counter = 0
        self.written = None
        #: every statement so far left the session as it was (no reset needed at the end)
        self.kept = True

    def _note(self, sql) -> None:
        if self.kept and not _session_kept(sql):
            self.kept = False

    async def fetch(self, sql, params=()):
        self._note(sql)
        try:
            return await self.con.fetch(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def fetchrow(self, sql, params=()):
        self._note(sql)
        try:
            return await self.con.fetchrow(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def execute(self, sql, params=()):
        self._note(sql)
        try:
            status = await self.con.execute(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc
        return _rowcount(status)

    async def executemany(self, sql, rows):
        self._note(sql)
        try:
            await self.con.executemany(sql, rows)
        except Exception as exc:
            raise translate(exc) from exc

    async def insert(self, sql, params=()):
        self._note(sql)
        try:
            return await self.con.fetchval(sql, *params)
        except Exception as exc:
            raise translate(exc) from exc

    async def copy_in(self, table, columns, source):
        """COPY BINARY from ``source`` (errors untranslated: the driver's ``copy_in`` reads the
        row the server names off the original error)."""
        await self.con.copy_to_table(table, source=source, columns=list(columns), format="binary")


# ``timestamp`` (without time zone) columns, e.g. in tables another project created: DataFlow's
# datetimes are aware, and asyncpg refuses an aware value for a naive column ("can't subtract
# offset-naive and offset-aware datetimes").  Such a column holds UTC here: an aware value is
# bound as its UTC wall time, a naive one as given; reads come back as aware UTC datetimes, like
# timestamptz ones.  (timestamptz columns keep asyncpg's own codec.)  Tuple format: microseconds
# since 2000-01-01, as the server counts.
_PG_EPOCH = _dt.datetime(2000, 1, 1)
_PG_EPOCH_UTC = _PG_EPOCH.replace(tzinfo=_dt.timezone.utc)
_PG_INFINITY = (2 ** 63 - 1, -(2 ** 63))


def _naive_utc(value):
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"expected a datetime for a timestamp column, got {type(value).__name__}")
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    d = value.replace(tzinfo=None) - _PG_EPOCH
    return ((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds,)


def _from_micros(t):
    us = t[0]
    if us == _PG_INFINITY[0]:
        return _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
    if us == _PG_INFINITY[1]:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    return _PG_EPOCH_UTC + _dt.timedelta(microseconds=us)


def _rowcount(status: str) -> int:
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


# A statement that leaves the session as it found it, once its transaction is over: reads,
# writes and transaction control, naming none of the functions that keep state in the session
# (set_config, advisory locks, dblink connections), and holding one statement only (the simple
# query protocol runs ``SELECT 1; SET ...`` as two).  SET, LISTEN, DECLARE, PREPARE, CREATE TEMP,
# DO, CALL and anything else do not match, nor does raw SQL (``RAW_SQL``: a function it calls
# may change the session where its text does not show it).  After only such statements a pooled
# connection goes back without asyncpg's reset query, one round trip fewer per statement.
_PLAIN_SQL = re.compile(
    r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES|TABLE|BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK"
    r"|SAVEPOINT|RELEASE)\b(?!.*(set_config|advisory|dblink|;\s*\S))", re.I | re.S)
_plain = text_test(_PLAIN_SQL)


def _session_kept(sql: str) -> bool:
    """Whether ``sql`` (not raw) leaves the session as it was; see ``_PLAIN_SQL``."""
    return not RAW_SQL.get() and _plain(sql)


class PostgreSQLDriver(Driver):
    dialect_name = "postgresql"
    #: _commit releases in its finally; asyncpg's release runs shielded (its own task)
    inline_commit = True

    def __init__(self, config):
        super().__init__(config)
        self._loops = LoopPools(_close_pool, _abandon_pool, lambda p: p.get_size(), _shed_idle, "PostgreSQL")
        #: pool -> its WaitWatch: a wait for a connection bounded by pool_timeout (waits.py)
        self._watches: dict = {}
        #: connections being given back that ran only plain statements: no reset query for them
        self._kept: weakref.WeakSet = weakref.WeakSet()
        #: False: reset every connection (a model's table has a trigger, which may change the
        #: session where no statement shows it; see ``check_session_triggers``)
        self.keep_sessions = True
        #: ``async f(connection)`` run on every new pooled connection, in order (e.g. codecs
        #: such as pgvector's); add to it, then ``await pool.expire_connections()`` to renew.
        self.connection_setup: list = []
        #: tenant_isolation="rls": () -> (bound tenant or None, all_tenants), read at every BEGIN
        self.tenant_settings = None
        self.pool_size: int | None = config.pool_size
        #: True once pool_size holds the size derived from the server (or given)
        self._sized = False

    def _connect_kwargs(self) -> dict:
        u = self.url
        kw = {"host": u.host, "port": u.port or 5432, "user": u.user or "postgres",
              "database": u.database or "postgres"}
        if u.password:
            kw["password"] = u.password
        return kw

    async def _size(self) -> int:
        from .. import pools

        if self.pool_size is not None and not pools.startup_validation():
            return self.pool_size
        if not pools.startup_validation():
            return pools.DEFAULT_SIZE
        import asyncpg

        con = await asyncpg.connect(**self._connect_kwargs(), timeout=self.config.pool_timeout)
        try:
            mx, res = await con.fetchrow(
                "SELECT current_setting('max_connections')::int, "
                "current_setting('superuser_reserved_connections')::int")
        finally:
            await con.close()
        return pools.derive(self.config.pool_size, mx, res, where="PostgreSQL")

    async def pool(self):
        """This loop's pool, created on first use (asyncpg pools are bound to one loop) and
        closed when the loop shuts down; all loops' pools share one budget of ``pool_size``."""
        return self._loops.get() or await self._loops.create(self._make_pool)

    async def _make_pool(self):
        import asyncpg

        try:
            await self._ensure_size()
            # min_size=0: a connection is opened only when one is needed, so closing idle ones
            # for another loop's sake is not undone by asyncpg's min-size upkeep
            p = await asyncpg.create_pool(**self._connect_kwargs(), min_size=0, max_size=self.pool_size,
                                          max_inactive_connection_lifetime=self.config.pool_recycle,
                                          timeout=self.config.pool_timeout, command_timeout=None,
                                          init=self._setup_connection, connect=self._budgeted_connect,
                                          reset=self._reset)
            try:
                await p.release(await p.acquire(timeout=self.config.pool_timeout))
            except BaseException:
                p.terminate()
                raise
        except E.DataFlowError:
            raise
        except Exception as exc:
            raise E.DatabaseConnectionError(
                f"cannot connect to PostgreSQL at {self.url.redacted()}: {exc}", exc) from exc
        return p

    async def _budgeted_connect(self, *args, **kwargs):
        """asyncpg's connect, once a slot of the budget shared by every loop's pool is free."""
        import asyncpg

        await self._loops.reserve(self.pool_size, self.config.pool_timeout)
        try:
            return await asyncpg.connect(*args, **kwargs)
        finally:
            self._loops.connected()

    async def _reset(self, con) -> None:
        """asyncpg's pool calls this on release, after its own ``Connection._reset`` rolled back
        an open transaction and dropped listeners; the session reset query (RESET ALL, unlock
        advisory locks, UNLISTEN, CLOSE ALL) runs unless the connection was marked as having
        run only plain statements (``_session_kept``)."""
        if con in self._kept:
            self._kept.discard(con)
            return
        query = con.get_reset_query()
        if query:
            await con.execute(query)

    async def check_session_triggers(self, tables) -> list:
        """Called when the DataFlow initializes: a trigger on one of ``tables`` runs inside
        DataFlow's plain INSERT/UPDATE/DELETE and may change the session (set_config, advisory
        locks) where no statement text shows it, so with any such trigger every connection is
        reset again, as asyncpg does.  Returns the (table, trigger) pairs found."""
        rows = await self.fetch(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relname = ANY($1::text[]) AND pg_table_is_visible(c.oid) "
            "ORDER BY 1, 2", (sorted(tables),))
        found = [(r[0], r[1]) for r in rows]
        self.keep_sessions = not found
        if found:
            import logging
            logging.getLogger("dataflow").info(
                "PostgreSQL: trigger(s) %s on model tables: every connection is reset after use",
                ", ".join(f"{t}.{g}" for t, g in found))
        return found

    def _give_back_kept(self, proxy) -> None:
        """Mark a borrowed connection (a pool proxy) as not needing the reset query."""
        raw = getattr(proxy, "_con", None)  # the proxy's connection (the object release resets)
        if raw is not None:
            self._kept.add(raw)

    async def _setup_connection(self, con) -> None:
        await con.set_type_codec("timestamp", schema="pg_catalog", encoder=_naive_utc, decoder=_from_micros,
                                 format="tuple")
        for hook in list(self.connection_setup):
            await hook(con)

    async def _acquire(self, p):
        try:
            # Not asyncpg's acquire(timeout=): it also arms that timeout on the reset at release
            # (no bound there, as with statements: command_timeout=None).  A free connection
            # needs no wait, so no timer at all; a wait is bounded here.  (~4 us CPU per
            # statement at 32 tasks, measured against the raw pool.)
            if p._queue.qsize():
                return await p.acquire()
            watch = self._watches.get(p)
            if watch is None:
                watch = self._new_watch(p)
            return await watch.wait(p.acquire())
        except asyncio.TimeoutError as exc:
            raise E.DatabaseConnectionError(
                f"timed out after {self.config.pool_timeout}s waiting for a PostgreSQL connection "
                f"(all {self.pool_size} in use); raise pool_size or pool_timeout", exc) from None
        except Exception as exc:
            raise translate(exc) from exc

    def _new_watch(self, p) -> WaitWatch:
        """The wait bound of pool ``p`` (one per pool: pools are per event loop); watches of
        closed pools are dropped as new ones come."""
        if len(self._watches) >= 8:
            for old in [q for q in self._watches if q._closed or q._closing]:
                self._watches.pop(old).close()
        watch = self._watches[p] = WaitWatch(self.config.pool_timeout)
        return watch

    async def _pooled(self, method: str, sql: str, params, write: bool):
        """One statement on a pooled connection outside any transaction (autocommit)."""
        p = self._loops.get() or await self.pool()
        kept = self.keep_sessions and _session_kept(sql)
        for attempt in (0, 1):
            con = await self._acquire(p)
            if kept:
                self._give_back_kept(con)
            try:
                return await getattr(con, method)(sql, *params)
            except Exception as exc:
                # A connection that died while idle in the pool: a read may simply run again,
                # a write only if it provably never left (otherwise it might run twice).
                # (only a connection found dead -- never a statement the server answered or killed)
                if _is_conn_error(exc):
                    _drop(con)
                    if attempt == 0 and (_not_sent(exc) or (not write and not _server_said(exc))):
                        continue
                raise translate(exc, unknown=write) from exc
            finally:
                await _release(p, con)

    async def _fetch(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.fetch(sql, params)
        if self.tenant_settings is not None:
            return await self._in_transaction("fetch", sql, params)
        return await self._pooled("fetch", sql, params, False)

    async def _fetchrow(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.fetchrow(sql, params)
        if self.tenant_settings is not None:
            return await self._in_transaction("fetchrow", sql, params)
        return await self._pooled("fetchrow", sql, params, False)

    async def _execute(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.execute(sql, params)
        if self.tenant_settings is not None:
            return await self._in_transaction("execute", sql, params)
        return _rowcount(await self._pooled("execute", sql, params, True))

    async def _executemany(self, sql, rows):
        async with self.transaction():
            await self._tx.get().executemany(sql, rows)

    async def _insert(self, sql, params=()):
        tx = self._tx.get()
        if tx is not None:
            return await tx.insert(sql, params)
        if self.tenant_settings is not None:
            return await self._in_transaction("insert", sql, params)
        return await self._pooled("fetchval", sql, params, True)

    async def _in_transaction(self, how, sql, params):
        """tenant_isolation="rls": a statement outside a transaction still runs in one, so the
        tenant settings (transaction-local by design) are in force for it."""
        async with self.transaction() as conn:
            return await getattr(conn, how)(sql, params)

    # -- transactions ----------------------------------------------------------------------------
    async def _begin(self, isolation) -> _PgConn:
        (begin,) = self.dialect.begin_sql(isolation)
        p = self._loops.get() or await self.pool()
        for attempt in (0, 1):
            con = await self._acquire(p)
            try:
                await con.execute(begin)
                if self.tenant_settings is not None:
                    # tenant_isolation="rls": the policies read these, for this transaction only
                    tenant, everyone = self.tenant_settings()
                    await con.execute(self.dialect.tenant_settings_sql, tenant or "", "on" if everyone else "off")
            except BaseException as exc:
                if isinstance(exc, Exception) and _is_conn_error(exc):
                    _drop(con)
                await finish(_release(p, con))
                if attempt == 0 and isinstance(exc, Exception) and _is_conn_error(exc) and not _server_said(exc):
                    continue  # died while idle: nothing was done yet, take another one
                if isinstance(exc, Exception):
                    raise translate(exc) from exc
                raise
            c = _PgConn(con, p)
            c.kept = self.keep_sessions
            return c

    async def _commit(self, conn: _PgConn) -> None:
        try:
            status = await conn.con.execute("COMMIT")
        except Exception as exc:
            if _is_conn_error(exc):
                _drop(conn.con)
            raise translate(exc, unknown=True) from exc
        finally:
            if conn.kept:
                self._give_back_kept(conn.con)
            await _release(conn.pool, conn.con)
        if status == "ROLLBACK":
            raise E.QueryError("the transaction was rolled back, not committed: a statement inside it "
                               "failed earlier (after an error, roll back or use a nested db.transaction())")

    async def _rollback(self, conn: _PgConn) -> None:
        try:
            if not conn.con.is_closed():
                await conn.con.execute("ROLLBACK")
        except Exception:
            pass  # the pool's reset rolls back or drops the connection
        finally:
            if conn.kept:
                self._give_back_kept(conn.con)
            await _release(conn.pool, conn.con)

    @contextlib.asynccontextmanager
    async def connection(self):
        """Borrow one raw asyncpg connection (set-up work such as registering codecs)."""
        tx = self._tx.get()
        if tx is not None:
            tx.kept = False  # whatever it runs: the session is reset when the transaction ends
            yield tx.con
            return
        p = self._loops.get() or await self.pool()
        con = await self._acquire(p)
        try:
            yield con
        finally:
            await _release(p, con)

    async def _position_of(self, sql: str):
        """One value read outside any transaction, hooks and routing (replica probes)."""
        async with PostgreSQLDriver.connection(self) as con:
            return await con.fetchval(sql)

    async def copy_in(self, table: str, columns, source, writes=None) -> None:
        """``COPY table (columns) FROM STDIN (FORMAT binary)`` fed by ``source``, an async
        iterator of byte chunks, inside this task's transaction (required: a failed COPY must
        leave nothing).  A server error is translated, with ``copy_row`` set to the 0-based
        row the server names (None when it names none); an error raised by ``source`` itself
        passes through unchanged."""
        conn = self._tx.get()
        if conn is None:
            raise E.ValidationError("copy_in runs inside a transaction: use `async with driver.transaction():`")
        try:
            await conn.copy_in(table, columns, source)
        except E.DataFlowError:
            raise
        except Exception as exc:
            err = translate(exc)
            if not isinstance(err, E.DatabaseError):
                raise
            m = _COPY_LINE.search(getattr(exc, "context", None) or "") or _COPY_LINE.search(str(exc))
            err.copy_row = int(m.group(1)) - 1 if m else None
            raise err from exc
        if writes:
            await self.wrote(writes, conn)

    async def server_info(self) -> dict:
        row = await self.fetchrow("SELECT current_setting('server_version_num')::int, current_setting('max_connections')::int")
        return {"version": row[0], "max_connections": row[1]}

    def pool_stats(self) -> dict:
        """Connections of every live loop's pool against the one budget (``max``)."""
        mx = self._size_now()
        pools = self._loops.live()
        # a holder is in use when it is not in the pool's queue
        active = sum(p._maxsize - p._queue.qsize() for p in pools)
        size = sum(p.get_size() for p in pools)
        return {"active": active, "idle": max(size - active, 0), "max": mx, "overflow": 0,
                "max_overflow": 0, "utilization": round(active / mx, 4)}

    async def close(self):
        self.closed = True
        for watch in self._watches.values():
            watch.close()
        self._watches.clear()
        await self._loops.close_all()


async def _close_pool(p) -> None:
    try:
        await asyncio.wait_for(p.close(), 5)
    except (asyncio.TimeoutError, Exception):
        p.terminate()


def _abandon_pool(p) -> None:
    """Close the connections of a pool whose loop is closed (no round trip is possible)."""
    for holder in p._holders:
        con = holder._con
        if con is not None:
            close_dead_transport(getattr(con, "_transport", None))


def _shed_idle(p) -> None:
    """Close ``p``'s idle connections (in its loop) so another loop can open one."""
    for holder in p._holders:
        con = holder._con
        if con is not None and holder._in_use is None and not con.is_closed():
            con.terminate()
