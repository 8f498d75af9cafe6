"""MongoDB session transactions in the shape of the SQL drivers' ``Transaction``: ``async with
db.transaction()``, the explicit ``begin``/``commit``/``rollback`` the workflow's
``TransactionScopeNode`` uses, ``joined()`` for the nodes of a scope, ``run_in_transaction``.

Only a replica set or a sharded cluster runs multi-document transactions; elsewhere ``begin``
raises ``UnsupportedFeatureError`` saying why (``DocumentDriver.check_transactions``).  There
are no savepoints (a nested transaction is refused).  The collections written in a
transaction reach the after_commit hooks (so the query cache) once, at the commit; an abort
reports nothing.  Every call of the task passes the session (``DocumentDriver.session_kw``),
one call at a time (a session is not for concurrent use).
"""

from __future__ import annotations

import asyncio
import inspect

from ..errors import (OutcomeUnknownError, TransactionConflictError, UnsupportedFeatureError,
                      ValidationError)


class Tx:
    """A transaction in progress: its session, the collections written in it, and the lock
    that keeps its calls one at a time."""

    __slots__ = ("session", "writes", "lock", "__weakref__")

    def __init__(self, session):
        self.session = session
        self.writes: set = set()
        self.lock = asyncio.Lock()


class DocumentTransaction:
    """One session transaction (see the module docstring)."""

    nested = False
    savepoint_name = None

    def __init__(self, driver, isolation_level=None):
        if isolation_level is not None:
            raise UnsupportedFeatureError("MongoDB transactions take no isolation_level (they read a snapshot)")
        self.driver = driver
        self.isolation_level = None
        self.state = "new"          # active | committed | rolled_back
        self.tx: Tx | None = None
        self._token = None

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def conn(self):
        return self.tx

    def _need_active(self, what: str) -> None:
        if self.state != "active":
            raise ValidationError(f"cannot {what}: the transaction is {self.state.replace('_', ' ')}")

    async def begin(self) -> "DocumentTransaction":
        if self.state != "new":
            raise ValidationError("this transaction was already started; open a new db.transaction()")
        d = self.driver
        await d.check_transactions()
        session = d.client.start_session()
        if inspect.isawaitable(session):        # older pymongo async releases
            session = await session
        try:
            started = session.start_transaction()
            if inspect.isawaitable(started):
                await started
        except BaseException:
            await session.end_session()
            raise
        self.tx = Tx(session)
        self.state = "active"
        return self

    async def commit(self) -> None:
        """Commit; the hooks then get every collection written.  A commit whose outcome the
        driver could not learn raises ``OutcomeUnknownError``."""
        self._need_active("commit")
        self.state = "committed"
        d, tx = self.driver, self.tx
        try:
            await d.guard(tx.session.commit_transaction(), "MongoDB commit")
        except BaseException as exc:
            self.state = "rolled_back"
            orig = getattr(exc, "orig", None)
            if orig is not None and getattr(orig, "has_error_label", None) and \
                    orig.has_error_label("UnknownTransactionCommitResult"):
                raise OutcomeUnknownError("MongoDB commit: the server's answer was lost, so whether the "
                                          "transaction committed is unknown; check before retrying") from exc
            raise
        finally:
            await tx.session.end_session()
        if tx.writes:
            await d._after_commit(tx.writes)

    async def rollback(self) -> None:
        """Abort (idempotent once finished; a transaction the server aborted already is fine)."""
        if self.state != "active":
            return
        self.state = "rolled_back"
        from pymongo.errors import PyMongoError
        try:
            await self.tx.session.abort_transaction()
        except PyMongoError:
            pass
        finally:
            await self.tx.session.end_session()

    def joined(self):
        """Context manager: this task's calls run in this transaction while inside."""
        return _Joined(self)

    async def __aenter__(self):
        await self.begin()
        self._token = self.driver._session.set(self.tx)
        return self

    async def __aexit__(self, et, ev, tb) -> bool:
        token, self._token = self._token, None
        try:
            self.driver._session.reset(token)
        except ValueError:      # exited in another context: nothing to restore
            pass
        if et is None:
            if self.state == "active":
                await self.commit()
        else:
            await self.rollback()
        return False

    # -- what SQL transactions have and MongoDB does not ----------------------------------------
    async def savepoint(self, name):
        raise UnsupportedFeatureError("MongoDB transactions have no savepoints; split the work into "
                                      "separate transactions instead")

    rollback_to = release = savepoint

    async def execute(self, sql, *params):
        self.driver.check_raw(sql)

    fetch = fetchrow = execute


class _Joined:
    __slots__ = ("t", "token")

    def __init__(self, t):
        self.t = t

    def __enter__(self):
        self.token = self.t.driver._session.set(self.t.tx)
        return self.t

    def __exit__(self, *exc):
        self.t.driver._session.reset(self.token)
        return False


async def run_in_transaction(driver, fn, *, retries: int = 3, isolation_level=None, backoff: float = 0.02):
    """``await fn(tx)`` in a session transaction, retried whole (at most ``retries`` more times)
    on ``TransactionConflictError`` -- MongoDB's TransientTransactionError, a write conflict with
    a concurrent transaction -- never inside an enclosing transaction."""
    if not isinstance(retries, int) or retries < 0:
        raise ValidationError(f"retries must be an int >= 0, not {retries!r}")
    attempt = 0
    while True:
        try:
            async with DocumentTransaction(driver, isolation_level) as tx:
                return await fn(tx)
        except TransactionConflictError as exc:
            if driver.current() is not None or attempt >= retries:
                if attempt:
                    exc.add_note(f"gave up after {attempt + 1} attempts")
                raise
            attempt += 1
            import random
            await asyncio.sleep(min(backoff * (2 ** attempt), 1.0) * (0.5 + random.random()))
