"""The driver contract: a pool, statement execution, transactions joined through a context
variable, and translation of the driver's errors into ``dataflow.errors``.

Each concrete driver module imports its database library lazily (inside ``open``) so that
``import dataflow`` never imports asyncpg, aiomysql or aiosqlite.  What the three share lives
here: the transaction handle (savepoints, explicit commit/rollback for workflow scopes), the
cancellation-safe cleanup helper and a small bounded pool (used where the library's own pool
does not give the guarantees we need).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import re
import time

from .. import errors as E
from .hooks import Hooks, written_tables

_ids = itertools.count()
#: "look the transaction up in the context variable" (None means: outside any transaction)
MISSING_CONN = object()
_BACKGROUND: set = set()  # strong refs to cleanup tasks that outlive a cancelled caller

#: ``SET ...`` / ``USE`` / locks / temp tables change the session: such a connection is reset
#: before another borrower gets it.
_SESSION_SQL = re.compile(r"^\s*(SET\b|USE\b|LOCK\b|CREATE\s+TEMP|.*\bGET_LOCK\s*\()", re.I | re.S)



#: True while raw SQL runs (``db.execute_raw``, a transaction's ``execute``/``fetch``/``fetchrow``):
#: its text may call functions that change the session where the text does not show it, so a
#: driver that skips resetting connections after plain statements (PostgreSQL) resets after it.
RAW_SQL: contextvars.ContextVar = contextvars.ContextVar("dataflow_raw_sql", default=False)


def text_test(pattern):
    """``sql -> pattern.match(sql) is not None``, remembered per text: the regex scans the whole
    text (~2-3 us for a 130-character statement, run on every statement), while the statement
    layer builds each text once per model, so a text seen before costs one dict lookup (str
    hashes are cached).  Bounded: raw SQL with inlined values must not grow it."""
    seen: dict = {}

    def test(sql: str) -> bool:
        hit = seen.get(sql)
        if hit is None:
            hit = pattern.match(sql) is not None
            if len(seen) < 4096:
                seen[sql] = hit
        return hit
    return test


#: the MySQL driver resets a connection after such SQL
touches_session = text_test(_SESSION_SQL)


async def finish(coro):
    """Run cleanup ``coro`` to completion even if the caller is cancelled meanwhile.

    The cleanup keeps running in the background; the caller still sees its CancelledError.  This
    is what makes "a cancelled task never leaks a connection" hold during rollback and release.
    """
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return await asyncio.shield(task)


#: the Conn methods that run a statement: a transaction's take turns (see ``Conn.turn``)
_STATEMENTS = ("fetch", "fetchrow", "execute", "executemany", "insert", "insert_rows", "copy_in")


class Turn(asyncio.Lock):
    """The statement lock of one transaction (shared by its savepoints).

    ``owner``: the task ending the transaction (its driver's COMMIT/ROLLBACK may run through the
    Conn's methods and must not wait for itself); ``ended``: statements still queued, or issued
    later through a stale context, fail instead of running on a connection given back.
    """

    owner = None
    ended = False
    #: the Conn this turn belongs to (a savepoint level's turn is found through ``_LEVEL``)
    conn = None


#: The innermost ``async with`` savepoint level of this context: its Turn.  While a savepoint
#: block runs it holds the enclosing level's turn, so the transaction's other statements wait
#: instead of landing inside the savepoint (or releasing it early: RELEASE of an older savepoint
#: also ends the newer ones); statements made from inside the block, including tasks it starts,
#: take turns on the savepoint's own Turn.
_LEVEL: contextvars.ContextVar = contextvars.ContextVar("dataflow_savepoint_level", default=None)


def _turn_of(conn):
    lvl = _LEVEL.get()
    return lvl if lvl is not None and lvl.conn is conn else conn.turn


def _taking_turns(fn):
    @functools.wraps(fn)
    async def statement(self, *args, **kw):
        turn = self.turn
        if turn is None:
            return await fn(self, *args, **kw)
        turn = _turn_of(self)
        if turn.owner is not None and turn.owner is asyncio.current_task():
            return await fn(self, *args, **kw)
        async with turn:  # uncontended: no suspension, a few attribute tests
            if turn.ended:
                raise E.ValidationError("this transaction has already ended (committed or rolled back); "
                                        "run the statement in a new db.transaction() or outside one")
            return await fn(self, *args, **kw)
    return statement


class Conn:
    """One connection in use (inside a transaction, or borrowed for several statements).

    ``params`` is a tuple here (the internal API); ``Transaction`` offers ``*params``.
    A transaction's Conn has a ``turn`` (``Turn``): its statements never overlap on the
    connection -- nodes and gathered tasks of one transaction take turns (PostgreSQL and MySQL
    drivers fail on overlapping use of one connection).  Subclasses implement the statement
    methods plainly; ``__init_subclass__`` wraps each of them to take the turn.
    """

    sp_counter = 0
    dirty = False
    #: tables written in this transaction (set on the first write; None: nothing written)
    written = None
    #: the transaction's statement lock; None outside a transaction (no cost then)
    turn: Turn | None = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name in _STATEMENTS:
            fn = cls.__dict__.get(name)
            if fn is not None:
                setattr(cls, name, _taking_turns(fn))

    async def fetch(self, sql: str, params=()) -> list: ...
    async def fetchrow(self, sql: str, params=()): ...
    async def execute(self, sql: str, params=()) -> int: ...
    async def executemany(self, sql: str, rows) -> None: ...
    async def insert(self, sql: str, params=()): ...


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise E.ValidationError(f"savepoint name {name!r} must be an identifier (letters, digits, _)")
    return name


class Transaction:
    """A transaction (outermost) or a savepoint (nested), on the driver's context variable.

    ``async with`` form::

        async with db.transaction() as tx:       # BEGIN; COMMIT on success, ROLLBACK on error
            await tx.execute("UPDATE t SET n = n + 1 WHERE id = $1", 5)
            async with db.transaction():         # SAVEPOINT; an error inside undoes only it
                ...

    Explicit form (workflow scopes): ``await tx.begin()``, ``await tx.commit()`` /
    ``await tx.rollback()``; ``tx.joined()`` is a context manager that makes this task's
    statements run in the transaction.  Statements from any code in the task (express calls,
    nodes, bulk loads, ``db.execute_raw``) join it through the driver's context variable.
    """

    def __init__(self, driver, isolation_level: str | None = None, yield_conn: bool = False):
        self.driver = driver
        self._yield_conn = yield_conn
        self.isolation_level = isolation_level
        self.conn: Conn | None = None
        self.savepoint_name: str | None = None
        self.state = "new"  # active | committed | rolled_back
        self._token = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def nested(self) -> bool:
        return self.savepoint_name is not None

    async def begin(self) -> "Transaction":
        if self.state != "new":
            raise E.ValidationError("this transaction was already started; open a new db.transaction()")
        outer = self.driver._tx.get()
        if outer is not None:
            # nested: a savepoint of the enclosing transaction, whose isolation level applies
            outer.sp_counter += 1
            name = f"df_sp_{outer.sp_counter}"
            await outer.execute(self.driver.dialect.savepoint_sql(name))
            self.conn, self.savepoint_name = outer, name
        else:
            self.conn = await self.driver._begin(self.isolation_level)
            turn = self.conn.turn = Turn()
            turn.conn = self.conn
        self.state = "active"
        return self

    async def commit(self) -> None:
        """Commit (or release the savepoint).  Connection lost during COMMIT: OutcomeUnknownError."""
        self._need_active("commit")
        self.state = "committed"
        if self.savepoint_name is not None:
            try:
                await self.conn.execute(self.driver.dialect.release_sql(self.savepoint_name))
            except BaseException:
                self.state = "rolled_back"
                raise
            return
        turn = self.conn.turn
        if self.driver.inline_commit and turn is not None and not turn.locked():
            # No statement in flight, so the turn is taken without a wait: COMMIT in this task.
            # The driver's _commit returns the connection even if this task is cancelled
            # meanwhile, so the cleanup task below (~30 us of CPU per commit) is not needed.
            await self._end(self.driver._commit)
        else:
            await finish(self._end(self.driver._commit))
        if self.conn.written:
            await self.driver.hooks.fire_after_commit(self.conn.written)

    async def rollback(self) -> None:
        """Roll back (or roll back to the savepoint and release it).  Idempotent once finished."""
        if self.state != "active":
            return
        self.state = "rolled_back"
        if self.savepoint_name is not None:
            name = self.savepoint_name
            await finish(self._sp_rollback(name))
            return
        await finish(self._end(self.driver._rollback))

    async def _end(self, how) -> None:
        """COMMIT/ROLLBACK once no statement of the transaction is in flight; later ones fail."""
        conn = self.conn
        turn = conn.turn
        if turn is None:
            await how(conn)
            return
        await turn.acquire()
        turn.owner = asyncio.current_task()
        try:
            await how(conn)
        finally:
            turn.ended = True
            turn.owner = None
            turn.release()

    async def _sp_rollback(self, name):
        d = self.driver.dialect
        await self.conn.execute(d.rollback_to_sql(name))
        await self.conn.execute(d.release_sql(name))

    def _need_active(self, what: str) -> None:
        if self.state != "active":
            raise E.ValidationError(f"cannot {what}: the transaction is {self.state.replace('_', ' ')}")

    # -- joining -------------------------------------------------------------------------------
    def joined(self):
        """Context manager: statements of this task run in this transaction while inside."""
        return _Joined(self)

    async def __aenter__(self) -> "Transaction":
        outer = self.driver._tx.get()
        if outer is not None and outer.turn is not None and self.state == "new":
            # a savepoint block: hold the enclosing level's turn until it ends (see _LEVEL)
            parent = _turn_of(outer)
            await parent.acquire()
            child = Turn()
            child.conn = outer
            self._level = (parent, child, _LEVEL.set(child))
            try:
                await self.begin()
            except BaseException:
                self._leave()
                raise
        else:
            await self.begin()
        self._token = self.driver._tx.set(self.conn)
        return self.conn if self._yield_conn else self

    async def __aexit__(self, et, ev, tb) -> bool:
        token, self._token = self._token, None
        try:
            self.driver._tx.reset(token)
        except ValueError:  # exited in another context: nothing to restore
            pass
        try:
            if et is None:
                if self.state == "active":
                    await self.commit()
            else:
                await self.rollback()
        finally:
            self._leave()
        return False

    _level = None

    def _leave(self) -> None:
        """End a savepoint block's level: its late statements fail, the enclosing level resumes."""
        level, self._level = self._level, None
        if level is None:
            return
        parent, child, token = level
        child.ended = True
        try:
            _LEVEL.reset(token)
        except ValueError:  # exited in another context
            pass
        parent.release()

    # -- named savepoints (TransactionSavepointNode and friends) --------------------------------
    async def savepoint(self, name: str) -> None:
        self._need_active("create a savepoint")
        await self.conn.execute(self.driver.dialect.savepoint_sql(_check_name(name)))

    async def rollback_to(self, name: str) -> None:
        self._need_active("roll back to a savepoint")
        await self.conn.execute(self.driver.dialect.rollback_to_sql(_check_name(name)))

    async def release(self, name: str) -> None:
        self._need_active("release a savepoint")
        await self.conn.execute(self.driver.dialect.release_sql(_check_name(name)))

    # -- raw SQL ---------------------------------------------------------------------------------
    async def _raw(self, how: str, sql: str, params):
        """A raw statement on this transaction's connection (``RAW_SQL`` set while it runs)."""
        d = self.driver
        d.check_raw(sql)
        fn = getattr(self.conn, how)
        token = RAW_SQL.set(True)
        try:
            if not d.observed:  # no hook: no timing, and the written tables need not be read off the text
                return await fn(sql, params)
            return await d._observed(fn, sql, params, written_tables(sql), self.conn)
        finally:
            RAW_SQL.reset(token)

    async def execute(self, sql: str, *params) -> int:
        """Run a statement with bind parameters in this transaction; returns the row count."""
        self._need_active("execute")
        return await self._raw("execute", sql, params)

    async def fetch(self, sql: str, *params) -> list:
        self._need_active("fetch")
        return await self._raw("fetch", sql, params)

    async def fetchrow(self, sql: str, *params):
        self._need_active("fetch")
        return await self._raw("fetchrow", sql, params)

    async def fetchval(self, sql: str, *params):
        row = await self.fetchrow(sql, *params)
        return None if row is None else row[0]

    def __repr__(self) -> str:
        kind = f"savepoint {self.savepoint_name}" if self.savepoint_name else "transaction"
        return f"<{kind} {self.state} on {self.driver.dialect_name}>"


class _Joined:
    __slots__ = ("tx", "token")

    def __init__(self, tx):
        self.tx = tx

    def __enter__(self):
        self.token = self.tx.driver._tx.set(self.tx.conn)
        return self.tx

    def __exit__(self, *exc):
        self.tx.driver._tx.reset(self.token)
        return False


async def run_in_transaction(driver, fn, *, retries: int = 3, isolation_level=None,
                             backoff: float = 0.02):
    """``await fn(tx)`` in a transaction; on a ``retryable`` conflict retry the whole thing.

    Only errors whose ``retryable`` attribute is True are retried and only ``TransactionConflictError``
    (deadlock, serialization failure) -- a lost connection is not, since the body may have had
    effects outside the database.  Inside an enclosing transaction there is nothing to retry
    (the conflict aborted the outer one too), so the error propagates.
    """
    if not isinstance(retries, int) or retries < 0:
        raise E.ValidationError(f"retries must be an int >= 0, not {retries!r}")
    attempt = 0
    while True:
        try:
            async with Transaction(driver, isolation_level) as tx:
                return await fn(tx)
        except E.TransactionConflictError as exc:
            if driver._tx.get() is not None or attempt >= retries or not exc.retryable:
                if attempt:
                    exc.add_note(f"gave up after {attempt + 1} attempts")
                raise
            attempt += 1
            # jittered exponential backoff so the two sides of a deadlock do not collide again
            import random
            await asyncio.sleep(min(backoff * (2 ** attempt), 1.0) * (0.5 + random.random()))


class Driver:
    """Base for the three SQL drivers.

    The statement methods (``fetch``, ``fetchrow``, ``execute``, ``insert``, ``executemany``)
    are defined here once: they run the driver's ``_fetch`` ... in this task's transaction or
    on a pooled connection, and, only while hooks are registered, time the statement for
    ``on_statement`` and record ``writes`` (the tables a write statement changes) for
    ``after_commit``.  Subclasses implement the underscored forms plus ``_begin``/``_commit``/
    ``_rollback``.
    """

    dialect_name = "base"
    #: the pool has one connection (SQLite): work a transaction needs must run on its connection
    single_connection = False
    #: ``_commit`` gives the connection back even when the committing task is cancelled during
    #: it, so an uncontended COMMIT may run in the caller's task (no cleanup task; see commit)
    inline_commit = False

    def __init__(self, config):
        from ..dialects import dialect_for

        self.config = config
        self.url = config.url
        #: transaction-control text (BEGIN, SAVEPOINT ...) comes from the dialect
        self.dialect = dialect_for(config.url.dialect)
        # Per-instance context variable: the transaction connection (Conn) this task is inside.
        self._tx: contextvars.ContextVar = contextvars.ContextVar(f"dataflow_tx_{next(_ids)}", default=None)
        self.closed = False
        self.hooks = Hooks()
        #: True while any hook is registered (one attribute test per statement otherwise)
        self.observed = False

    #: set by the engine when raw SQL must be vetted (tenant_isolation="rls": a raw statement on a
    #: tenant table needs a bound tenant); ``fn(sql)`` raises to refuse
    raw_guard = None

    def check_raw(self, sql: str) -> None:
        if self.raw_guard is not None:
            self.raw_guard(sql)

    def add_hook(self, kind: str, fn):
        """Register ``fn`` as an ``on_statement`` or ``after_commit`` hook; returns a callable
        that removes it again."""
        lst = getattr(self.hooks, kind, None) if kind in Hooks.__slots__ else None
        if lst is None:
            raise E.ValidationError(f"unknown hook {kind!r}; use 'on_statement' or 'after_commit'")
        lst.append(fn)
        self.observed = True

        def remove():
            if fn in lst:
                lst.remove(fn)
            self.observed = bool(self.hooks.on_statement or self.hooks.after_commit)
        return remove

    # -- pool sizing (server drivers implement ``_size()``) ----------------------------------------
    _sized = False
    pool_size: int | None = None

    async def _size(self) -> int:
        raise NotImplementedError

    async def _ensure_size(self) -> int:
        if not self._sized:
            self.pool_size = await self._size()
            self._sized = True
        return self.pool_size

    def _size_now(self) -> int:
        """The pool budget for ``pool_stats`` before any pool exists: asked of the server once
        (as the first pool would), so the figure never changes after the first connection."""
        if not self._sized:
            from .._loop import run_sync

            try:
                run_sync(self._ensure_size())
            except Exception:  # noqa: BLE001 - server unreachable: report the configured figure
                pass
        return self.pool_size or self.config.pool_size or 10

    def current(self):
        """The Conn of the transaction this task is inside, or None."""
        return self._tx.get()

    def transaction(self, isolation: str | None = None, yield_conn: bool = True) -> Transaction:
        """``async with drv.transaction() as conn:`` a transaction (a savepoint when already inside
        one); ``conn`` is the internal Conn (params as a tuple).  ``db.transaction()`` passes
        ``yield_conn=False`` to hand users the Transaction itself (``*params``)."""
        return Transaction(self, isolation, yield_conn)

    # -- statements ------------------------------------------------------------------------------
    async def fetch(self, sql: str, params=(), writes=None) -> list:
        if self.observed:
            return await self._observed(self._fetch, sql, params, writes)
        return await self._fetch(sql, params)

    async def fetchrow(self, sql: str, params=(), writes=None):
        if self.observed:
            return await self._observed(self._fetchrow, sql, params, writes)
        return await self._fetchrow(sql, params)

    async def execute(self, sql: str, params=(), writes=None) -> int:
        if self.observed:
            return await self._observed(self._execute, sql, params, writes)
        return await self._execute(sql, params)

    async def insert(self, sql: str, params=(), writes=None):
        """Run an INSERT; return the new row's id (RETURNING or lastrowid)."""
        if self.observed:
            return await self._observed(self._insert, sql, params, writes)
        return await self._insert(sql, params)

    async def executemany(self, sql: str, rows, writes=None) -> None:
        if self.observed:
            return await self._observed(self._executemany, sql, rows, writes)
        return await self._executemany(sql, rows)

    async def insert_rows(self, sql: str, rows, start: int = 0, on_release=None, writes=None) -> int:
        """The bulk INSERT path's writer: the one-row INSERT ``sql`` for every row, in this
        task's transaction; returns the rows written (the affected-rows count where the driver
        reports one: an upsert's updated rows count ``dialect.affected_per_update`` each).  This generic form is one executemany
        (``on_release`` is called at once: nothing holds the GIL for us); a failure carries
        ``row_index = None``.  SQLite overrides it with the native writer."""
        conn = self._tx.get()
        if conn is None:
            raise E.ValidationError("insert_rows runs inside a transaction: use `async with driver.transaction():`")
        if on_release is not None:
            on_release()
        rows = list(rows)
        try:
            n = await conn.executemany(sql, rows)
        except E.DataFlowError as exc:
            exc.row_index = None
            raise
        if writes:
            await self.wrote(writes, conn)
        # the driver's affected-rows count where it gives one (MySQL), else every row
        return len(rows) if n is None else n

    async def _observed(self, fn, sql, params, writes, conn=MISSING_CONN):
        """Run ``fn(sql, params)`` for the hooks: time it, then record or announce ``writes``."""
        hooks = self.hooks
        if conn is MISSING_CONN:
            conn = self._tx.get()
        t0 = time.perf_counter()
        try:
            out = await fn(sql, params)
        except BaseException:
            if hooks.on_statement:
                self._statement_done(sql, time.perf_counter() - t0, False)
            raise
        if hooks.on_statement:
            self._statement_done(sql, time.perf_counter() - t0, True)
        if writes and hooks.after_commit:
            await self.wrote(writes, conn)
        return out

    def _statement_done(self, sql, seconds, ok) -> None:
        for fn in list(self.hooks.on_statement):
            try:
                fn(sql, seconds, ok)
            except Exception:  # noqa: BLE001 - an observer never breaks a statement
                pass

    async def wrote(self, tables, conn=MISSING_CONN) -> None:
        """``tables`` were written: inside a transaction remember them for its COMMIT, else the
        write is committed already and ``after_commit`` runs now."""
        if conn is MISSING_CONN:
            conn = self._tx.get()
        if conn is not None:
            if conn.written is None:
                conn.written = set(tables)
            else:
                conn.written.update(tables)
            return
        await self.hooks.fire_after_commit(tables)

    async def _fetch(self, sql, params) -> list: ...
    async def _fetchrow(self, sql, params): ...
    async def _execute(self, sql, params) -> int: ...
    async def _insert(self, sql, params): ...
    async def _executemany(self, sql, rows) -> None: ...
    async def _begin(self, isolation) -> Conn: ...
    async def _commit(self, conn) -> None: ...
    async def _rollback(self, conn) -> None: ...
