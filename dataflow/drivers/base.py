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
import collections
import contextvars
import itertools
import re
import time

from .. import errors as E

_ids = itertools.count()
_BACKGROUND: set = set()  # strong refs to cleanup tasks that outlive a cancelled caller

#: ``SET ...`` / ``USE`` / locks / temp tables change the session: such a connection is reset
#: before another borrower gets it.
_SESSION_SQL = re.compile(r"^\s*(SET\b|USE\b|LOCK\b|CREATE\s+TEMP|.*\bGET_LOCK\s*\()", re.I | re.S)


def touches_session(sql: str) -> bool:
    return _SESSION_SQL.match(sql) is not None


async def finish(coro):
    """Run cleanup ``coro`` to completion even if the caller is cancelled meanwhile.

    The cleanup keeps running in the background; the caller still sees its CancelledError.  This
    is what makes "a cancelled task never leaks a connection" hold during rollback and release.
    """
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return await asyncio.shield(task)


#: The standard isolation levels, as the SQL both server dialects spell them.
ISOLATION_LEVELS = {"read_uncommitted": "READ UNCOMMITTED", "read_committed": "READ COMMITTED",
                    "repeatable_read": "REPEATABLE READ", "serializable": "SERIALIZABLE"}


def isolation_sql(level) -> str:
    """'Read Committed' / 'read-committed' / 'read_committed' -> 'READ COMMITTED'."""
    key = str(level).lower().replace(" ", "_").replace("-", "_")
    if key not in ISOLATION_LEVELS:
        raise E.ValidationError(f"unknown isolation level {level!r}; use one of {', '.join(ISOLATION_LEVELS)}")
    return ISOLATION_LEVELS[key]


class Conn:
    """One connection in use (inside a transaction, or borrowed for several statements).

    ``params`` is a tuple here (the internal API); ``Transaction`` offers ``*params``.
    """

    sp_counter = 0
    dirty = False

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
            await outer.execute(f"SAVEPOINT {name}")
            self.conn, self.savepoint_name = outer, name
        else:
            self.conn = await self.driver._begin(self.isolation_level)
        self.state = "active"
        return self

    async def commit(self) -> None:
        """Commit (or release the savepoint).  Connection lost during COMMIT: OutcomeUnknownError."""
        self._need_active("commit")
        self.state = "committed"
        if self.savepoint_name is not None:
            try:
                await self.conn.execute(f"RELEASE SAVEPOINT {self.savepoint_name}")
            except BaseException:
                self.state = "rolled_back"
                raise
            return
        await finish(self.driver._commit(self.conn))

    async def rollback(self) -> None:
        """Roll back (or roll back to the savepoint and release it).  Idempotent once finished."""
        if self.state != "active":
            return
        self.state = "rolled_back"
        if self.savepoint_name is not None:
            name = self.savepoint_name
            await finish(self._sp_rollback(name))
            return
        await finish(self.driver._rollback(self.conn))

    async def _sp_rollback(self, name):
        await self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        await self.conn.execute(f"RELEASE SAVEPOINT {name}")

    def _need_active(self, what: str) -> None:
        if self.state != "active":
            raise E.ValidationError(f"cannot {what}: the transaction is {self.state.replace('_', ' ')}")

    # -- joining -------------------------------------------------------------------------------
    def joined(self):
        """Context manager: statements of this task run in this transaction while inside."""
        return _Joined(self)

    async def __aenter__(self) -> "Transaction":
        await self.begin()
        self._token = self.driver._tx.set(self.conn)
        return self.conn if self._yield_conn else self

    async def __aexit__(self, et, ev, tb) -> bool:
        token, self._token = self._token, None
        try:
            self.driver._tx.reset(token)
        except ValueError:  # exited in another context: nothing to restore
            pass
        if et is None:
            if self.state == "active":
                await self.commit()
        else:
            await self.rollback()
        return False

    # -- named savepoints (TransactionSavepointNode and friends) --------------------------------
    async def savepoint(self, name: str) -> None:
        self._need_active("create a savepoint")
        await self.conn.execute(f"SAVEPOINT {_check_name(name)}")

    async def rollback_to(self, name: str) -> None:
        self._need_active("roll back to a savepoint")
        await self.conn.execute(f"ROLLBACK TO SAVEPOINT {_check_name(name)}")

    async def release(self, name: str) -> None:
        self._need_active("release a savepoint")
        await self.conn.execute(f"RELEASE SAVEPOINT {_check_name(name)}")

    # -- raw SQL ---------------------------------------------------------------------------------
    async def execute(self, sql: str, *params) -> int:
        """Run a statement with bind parameters in this transaction; returns the row count."""
        self._need_active("execute")
        return await self.driver.timed(self.conn.execute, sql, params)

    async def fetch(self, sql: str, *params) -> list:
        self._need_active("fetch")
        return await self.driver.timed(self.conn.fetch, sql, params)

    async def fetchrow(self, sql: str, *params):
        self._need_active("fetch")
        return await self.driver.timed(self.conn.fetchrow, sql, params)

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
    """Base for the three SQL drivers.  Subclasses implement ``_begin``/``_commit``/``_rollback``."""

    dialect_name = "base"

    def __init__(self, config):
        self.config = config
        self.url = config.url
        # Per-instance context variable: the transaction connection (Conn) this task is inside.
        self._tx: contextvars.ContextVar = contextvars.ContextVar(f"dataflow_tx_{next(_ids)}", default=None)
        self.closed = False
        #: dataflow.monitoring.Monitor when monitoring=True, else None (one attribute test per call)
        self.monitor = None

    def current(self):
        """The Conn of the transaction this task is inside, or None."""
        return self._tx.get()

    def transaction(self, isolation: str | None = None, yield_conn: bool = True) -> Transaction:
        """``async with drv.transaction() as conn:`` a transaction (a savepoint when already inside
        one); ``conn`` is the internal Conn (params as a tuple).  ``db.transaction()`` passes
        ``yield_conn=False`` to hand users the Transaction itself (``*params``)."""
        return Transaction(self, isolation, yield_conn)

    async def timed(self, fn, sql, params):
        mon = self.monitor
        if mon is None:
            return await fn(sql, params)
        t0 = time.perf_counter()
        ok = False
        try:
            out = await fn(sql, params)
            ok = True
            return out
        finally:
            mon.record(sql, time.perf_counter() - t0, ok)

    async def _begin(self, isolation) -> Conn: ...
    async def _commit(self, conn) -> None: ...
    async def _rollback(self, conn) -> None: ...


class Pool:
    """A bounded pool: waits at most ``timeout`` for a slot, then DatabaseConnectionError.

    ``connect()`` makes a raw connection, ``alive(raw)`` tells a usable one, ``reset(raw)``
    prepares a returned one for the next borrower (raising means: discard it), ``close(raw)``
    drops one.  The slot is a semaphore permit, taken before a connection is found and given
    back exactly once in ``release``; release is meant to run under ``finish`` so a cancelled
    borrower still returns its connection.
    """

    def __init__(self, connect, alive, reset, close, size: int, timeout: float, recycle: float, label: str):
        self._connect, self._alive, self._reset, self._close = connect, alive, reset, close
        self.size = size
        self.timeout = timeout
        self.recycle = recycle
        self.label = label
        self._sem = asyncio.Semaphore(size)
        self._idle: collections.deque = collections.deque()  # (raw, born)
        self._born: dict = {}
        self.in_use = 0
        self.discarded = 0
        self.closed = False

    async def acquire(self):
        if self.closed:
            raise E.DatabaseConnectionError(f"{self.label} pool is closed")
        try:
            async with asyncio.timeout(self.timeout):
                await self._sem.acquire()
        except TimeoutError:
            raise E.DatabaseConnectionError(
                f"timed out after {self.timeout}s waiting for a {self.label} connection "
                f"(all {self.size} in use); raise pool_size or pool_timeout") from None
        try:
            now = time.monotonic()
            while self._idle:
                raw, born = self._idle.pop()
                if self._alive(raw) and (not self.recycle or now - born < self.recycle):
                    self.in_use += 1
                    return raw
                self._drop(raw)
            async with asyncio.timeout(self.timeout):
                raw = await self._connect()
            self._born[id(raw)] = time.monotonic()
        except BaseException as exc:
            self._sem.release()
            if isinstance(exc, TimeoutError):
                raise E.DatabaseConnectionError(f"timed out connecting to {self.label}") from exc
            raise
        self.in_use += 1
        return raw

    async def release(self, raw, discard: bool = False) -> None:
        """Give ``raw`` back (reset) or drop it; the slot is freed in every case."""
        self.in_use -= 1
        try:
            if discard or self.closed or not self._alive(raw):
                self._drop(raw)
                return
            try:
                await self._reset(raw)
            except BaseException:
                self._drop(raw)
                raise
            self._idle.append((raw, self._born.get(id(raw), time.monotonic())))
        except Exception:
            pass  # a connection that cannot be reset is gone; the caller's outcome stands
        finally:
            self._sem.release()

    def _drop(self, raw) -> None:
        self.discarded += 1
        self._born.pop(id(raw), None)
        try:
            self._close(raw)
        except Exception:
            pass

    def stats(self) -> dict:
        idle = len(self._idle)
        return {"active": self.in_use, "idle": idle, "max": self.size, "overflow": 0, "max_overflow": 0,
                "utilization": round(self.in_use / self.size, 4), "discarded": self.discarded}

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._drop(self._idle.pop()[0])
