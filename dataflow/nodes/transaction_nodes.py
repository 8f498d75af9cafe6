"""Built-in transaction nodes: a scope node opens a transaction that every node depending on it
(directly or through other nodes) runs inside -- generated CRUD and bulk nodes included.

How: the scope node keeps its handle in ``RunContext.state`` and installs a node wrapper there
(see ``dataflow.workflow.runtime.NODE_WRAPPER``).  The wrapper puts a node in the scope of its
dependencies, joins the transaction for the node's run (the driver's context variable), runs the
scope's nodes one at a time (one connection), rolls the scope back when one of them fails, and
``ctx.on_finish`` rolls back a scope nobody committed.  No hidden parameter is needed.

    wf.add_node("TransactionScopeNode", "tx", {"database": "main"})
    wf.add_node("UserCreateNode", "a", {"name": "Ada"})
    wf.add_connection("tx", "db_instance", "a", "db_instance")   # a depends on tx: runs inside
    wf.add_node("TransactionCommitNode", "commit")
    wf.add_connection("a", "id", "commit", "after")               # any connection makes the order

(``database`` rather than a static ``db_instance``: a static ``db_instance`` makes the workflow
builder look the node type up among that instance's generated nodes.)
"""

from __future__ import annotations

import asyncio
import contextvars

from ..errors import ValidationError, WorkflowError
from . import registry
from .base import Node, Param, RunContext

_STATE = "dataflow.tx_scopes"
_WRAPPER = "dataflow.node_wrapper"  # == dataflow.workflow.runtime.NODE_WRAPPER (nodes never import workflow)
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("dataflow_tx_scope", default=None)


class _Scope:
    __slots__ = ("node_id", "tx", "lock", "rollback_on_error", "failed_by", "outcome", "commit_at_end",
                 "pending")

    def __init__(self, node_id, tx, lock, rollback_on_error, commit_at_end=False, pending=False):
        self.node_id = node_id
        self.tx = tx
        self.lock = lock
        self.rollback_on_error = rollback_on_error
        self.failed_by: str | None = None
        self.outcome = "active"
        #: an unconnected scope with no commit/rollback node: the run's outcome decides
        self.commit_at_end = commit_at_end
        #: a top-level scope's BEGIN waits for the first node that runs in it: a node outside the
        #: scope that feeds one inside must not wait for the connection the scope would hold
        #: (SQLite has one writer connection: that wait was a deadlock until pool_timeout)
        self.pending = pending

    @property
    def active(self) -> bool:
        return self.pending or self.tx.active

    async def ensure(self) -> None:
        """BEGIN now if the scope has not begun yet (called under ``lock``)."""
        if self.pending:
            await self.tx.begin()
            self.pending = False

    async def finalize(self, failed: bool) -> None:
        """Run end: a scope never committed is rolled back -- unless it commits at the end of a
        run that succeeded (an unconnected scope without a TransactionCommitNode).  A scope no
        node ran in never began: nothing to end."""
        if self.pending:
            self.pending = False
            self.outcome = "rolled_back" if failed or not self.commit_at_end else "committed"
            return
        if self.tx.active:
            async with self.lock:
                if self.commit_at_end and not failed:
                    await self.tx.commit()
                    self.outcome = "committed"
                    return
                await self.tx.rollback()
            self.outcome = "rolled_back"


class _Scopes:
    """Per run: scope node id -> _Scope, and node id -> the scope id it ran in (None: none)."""

    def __init__(self):
        self.scopes: dict[str, _Scope] = {}
        self.member: dict[str, str | None] = {}

    def scope_for(self, ctx: RunContext) -> _Scope | None:
        found = None
        for dep in ctx.dependencies:
            sid = self.member.get(dep)
            if sid is None:
                continue
            s = self.scopes[sid]
            if found is not None and found is not s:
                # nested scopes: the innermost (a savepoint of the other) wins
                if _is_inside(s, found, self):
                    found = s
                elif not _is_inside(found, s, self):
                    raise WorkflowError(
                        f"node {ctx.node_id!r} depends on two transaction scopes ({found.node_id!r} and "
                        f"{s.node_id!r}); a node runs in at most one transaction")
                continue
            found = s
        return found


def _is_inside(inner: _Scope, outer: _Scope, reg: _Scopes) -> bool:
    sid = reg.member.get(f"{inner.node_id}\0parent")
    while sid is not None:
        if sid == outer.node_id:
            return True
        sid = reg.member.get(f"{sid}\0parent")
    return False


async def _run_scoped(ctx: RunContext, thunk):
    """The node wrapper: run the node inside the transaction scope it depends on, if any."""
    reg: _Scopes = ctx.state[_STATE]
    scope = reg.scope_for(ctx)
    if scope is None:
        return await thunk()
    reg.member[ctx.node_id] = scope.node_id
    async with scope.lock:
        if not scope.active:
            if scope.outcome == "committed":
                reg.member[ctx.node_id] = None
                return await thunk()  # the scope is over: later nodes run on their own
            why = f" because node {scope.failed_by!r} failed" if scope.failed_by else ""
            raise WorkflowError(f"transaction scope {scope.node_id!r} was rolled back{why}; "
                                f"node {ctx.node_id!r} did not run in it")
        await scope.ensure()
        token = _CURRENT.set(scope)
        try:
            with scope.tx.joined():
                return await thunk()
        except BaseException:
            if scope.tx.active and scope.rollback_on_error:
                scope.failed_by = ctx.node_id
                scope.outcome = "rolled_back"
                await scope.tx.rollback()
            raise
        finally:
            _CURRENT.reset(token)


def _resolve_db(db_instance, workflow=None):
    _LIVE = registry.LIVE

    if hasattr(db_instance, "_tables") and not isinstance(db_instance, str):
        return db_instance
    if db_instance is not None:
        db = _LIVE.get(db_instance)
        if db is None:
            raise ValidationError(f"no open DataFlow named {db_instance!r}; open ones: {', '.join(_LIVE) or 'none'}")
        return db
    live = list(_LIVE.values())
    if len(live) == 1:
        return live[0]
    if workflow is not None:
        # the one database every model node of this workflow uses
        dbs = {id(t.db): t.db for spec in workflow.nodes.values()
               if (t := getattr(spec.node_class, "table", None)) is not None}
        if len(dbs) == 1:
            return next(iter(dbs.values()))
    raise ValidationError(
        f"TransactionScopeNode needs 'database' (the DataFlow name) when {len(live)} DataFlow instances "
        f"are open ({', '.join(_LIVE) or 'none'})")


def _commits_at_end(node_id, workflow) -> bool:
    """True for a scope nothing is connected from (its members depend on it implicitly, see
    WorkflowBuilder) when no commit or rollback node comes after it: the run ends it."""
    if workflow is None or any(c.from_node == node_id for c in workflow.connections):
        return False
    specs = workflow.nodes
    seen, stack = set(), list(specs[node_id].dependents)
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        if issubclass(specs[nid].node_class, (TransactionCommitNode, TransactionRollbackNode)):
            return False
        stack.extend(specs[nid].dependents)
    return True


def _need_scope(node: Node, what: str) -> _Scope:
    scope = _CURRENT.get()
    if scope is None:
        raise WorkflowError(f"{node.node_type()} {node.node_id!r} must depend on a TransactionScopeNode "
                            f"(connect it, directly or through other nodes) to {what}")
    return scope


class TransactionScopeNode(Node):
    """Open a transaction; every node depending on this one runs in it.

    Inside another scope it becomes a savepoint of that scope.  ``isolation_level``:
    read_committed, repeatable_read, serializable.  ``rollback_on_error`` (default True): a node
    failing inside rolls the scope back at once.  A scope not committed by a
    ``TransactionCommitNode`` is rolled back when the run ends.  A scope nothing is connected
    from covers every model node added after it, and with no commit or rollback node after it
    the run commits it when it succeeds (rolls it back when it fails).
    """

    scope_for_later_nodes = True
    parameters = {
        "database": Param(object, default=None, description="DataFlow name (or instance); optional "
                                                             "when one DataFlow is open"),
        "db_instance": Param(object, default=None, description="same, when passed through a connection"),
        "isolation_level": Param(object, default=None),
        "rollback_on_error": Param(bool, default=True),
        "timeout": Param(object, default=None, description="accepted for compatibility, unused"),
    }

    async def run(self, ctx: RunContext, database=None, db_instance=None, isolation_level=None,
                  rollback_on_error=True, timeout=None, **_ignored):
        db = _resolve_db(database if database is not None else db_instance, ctx.state.get("workflow"))
        reg = ctx.state.get(_STATE)
        if reg is None:
            reg = ctx.state[_STATE] = _Scopes()
            ctx.state[_WRAPPER] = _run_scoped
        parent = _CURRENT.get()
        tx = db.driver.transaction(isolation_level if parent is None else None, yield_conn=False)
        if parent is not None:
            await tx.begin()  # a savepoint: the parent has begun (this node ran in it)
        lock = parent.lock if parent is not None and parent.tx.driver is db.driver else asyncio.Lock()
        scope = _Scope(self.node_id, tx, lock, bool(rollback_on_error),
                       _commits_at_end(self.node_id, ctx.state.get("workflow")), pending=parent is None)
        reg.scopes[self.node_id] = scope
        reg.member[self.node_id] = self.node_id
        if parent is not None:
            reg.member[f"{self.node_id}\0parent"] = parent.node_id
        ctx.on_finish(scope.finalize)
        return {"transaction_id": self.node_id, "status": "active", "isolation_level": isolation_level,
                "savepoint": tx.nested, "db_instance": db.name}


class TransactionCommitNode(Node):
    """Commit the scope this node depends on; nodes after it run outside the transaction."""

    parameters = {}

    async def run(self, ctx: RunContext, **_ignored):
        scope = _need_scope(self, "commit it")
        await scope.ensure()
        await scope.tx.commit()
        scope.outcome = "committed"
        ctx.state[_STATE].member[ctx.node_id] = None
        return {"transaction_id": scope.node_id, "status": "committed"}


class TransactionRollbackNode(Node):
    """Roll back the scope this node depends on (``reason`` is echoed in the result)."""

    parameters = {"reason": Param(object, default=None)}

    async def run(self, ctx: RunContext, reason=None, **_ignored):
        scope = _need_scope(self, "roll it back")
        await scope.ensure()
        await scope.tx.rollback()
        scope.outcome = "rolled_back"
        ctx.state[_STATE].member[ctx.node_id] = None
        return {"transaction_id": scope.node_id, "status": "rolled_back", "reason": reason}


class TransactionSavepointNode(Node):
    """Create a named savepoint in the scope (``name``, default ``sp_<node id>``)."""

    parameters = {"name": Param(object, default=None)}

    async def run(self, ctx: RunContext, name=None, **_ignored):
        scope = _need_scope(self, "create a savepoint")
        name = name or f"sp_{self.node_id}"
        await scope.ensure()
        await scope.tx.savepoint(name)
        return {"transaction_id": scope.node_id, "savepoint": name}


class TransactionRollbackToSavepointNode(Node):
    """Undo everything in the scope since the savepoint ``savepoint`` (alias ``name``)."""

    parameters = {"savepoint": Param(object, default=None), "name": Param(object, default=None)}

    async def run(self, ctx: RunContext, savepoint=None, name=None, **_ignored):
        scope = _need_scope(self, "roll back to a savepoint")
        sp = savepoint or name
        if not sp:
            raise ValidationError(f"{self.node_type()} {self.node_id!r} needs 'savepoint' (the savepoint name)")
        await scope.ensure()
        await scope.tx.rollback_to(sp)
        return {"transaction_id": scope.node_id, "savepoint": sp, "status": "rolled_back_to_savepoint"}


TransactionContextNode = TransactionScopeNode

for _cls in (TransactionScopeNode, TransactionCommitNode, TransactionRollbackNode, TransactionSavepointNode,
             TransactionRollbackToSavepointNode):
    registry.register(_cls, owner=None)
registry.register(TransactionScopeNode, "TransactionContextNode", owner=None)
