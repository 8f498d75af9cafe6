"""LocalRuntime (sync) and AsyncLocalRuntime: run a built Workflow, concurrently by dependency.

One async core serves both.  Chains are awaited node by node with no tasks; only when two or more
nodes are ready at once are tasks created, bounded by ``max_concurrency``.  No I/O of its own.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import os
from collections import deque
from typing import Any

from .. import sessions
from .._loop import run_sync
from ..errors import NodeExecutionError, WorkflowError
from ..nodes.base import RunContext
from .graph import NodeSpec, Workflow
from .result import RunResult
from .templates import render_params

_EMPTY: dict = {}
#: RunContext.state key of ``async wrapper(node_ctx, thunk) -> dict`` that runs every later node
#: (``await thunk()`` runs it); set by dataflow.nodes.transaction_nodes.
NODE_WRAPPER = "dataflow.node_wrapper"


# -- run ids: unique, and cheap (a uuid4 costs more than the rest of a one-node run's bookkeeping)
def _reseed() -> None:
    global _RUN_PREFIX, _run_counter
    _RUN_PREFIX = os.urandom(8).hex()
    _run_counter = itertools.count(1)


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_run_id() -> str:
    """32 hex digits: a random per-process prefix and a counter (unique across forks too)."""
    return f"{_RUN_PREFIX}{next(_run_counter):016x}"


# -- per-node contexts share state/inputs/finalizers with the run but have their own node_id
_FAST_CLONE = (not RunContext.__dataclass_params__.frozen  # type: ignore[attr-defined]
               and "__slots__" not in RunContext.__dict__)


def _node_ctx(ctx: RunContext, spec: NodeSpec) -> RunContext:
    if _FAST_CLONE:  # same as dataclasses.replace, at a tenth of the cost
        c = object.__new__(RunContext)
        d = c.__dict__
        d.update(ctx.__dict__)
        d["node_id"] = spec.node_id
        d["dependencies"] = spec.dependencies
        return c
    return dataclasses.replace(ctx, node_id=spec.node_id, dependencies=spec.dependencies)


_KAILASH_OPTIONS = frozenset({
    "debug", "enable_cycles", "enable_async", "enable_monitoring", "enable_audit", "enable_security",
    "connection_validation", "conditional_execution", "persistent_mode", "enable_connection_sharing",
    "user_context", "resource_limits", "secret_provider", "content_aware_success_detection",
    "thread_pool_size", "max_workers", "enable_analytics", "enable_profiling",
})


class _Runtime:
    """Shared options and the async core.

    ``max_concurrency``: most nodes running at once (default 10).  ``raise_on_error``: on a node
    failure raise ``NodeExecutionError`` after cancelling the rest (default), or record
    ``{"error", "error_type", "failed": True}`` for it, ``{"skipped": True, "reason"}`` for its
    dependents, and carry on with independent nodes.  ``retries``: extra attempts for errors whose
    ``retryable`` attribute is True (never for others), waiting ``retry_backoff * 2**attempt`` s.
    Kailash options such as ``debug`` or ``enable_cycles`` are accepted and ignored.
    """

    def __init__(self, *, max_concurrency: int = 10, raise_on_error: bool = True, retries: int = 0,
                 retry_backoff: float = 0.01, **options: Any):
        unknown = set(options) - _KAILASH_OPTIONS
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unknown option(s) {', '.join(sorted(unknown))}; "
                            f"valid: max_concurrency, raise_on_error, retries, retry_backoff")
        if "max_workers" in options and isinstance(options["max_workers"], int):
            max_concurrency = options["max_workers"]
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive int, not {max_concurrency!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, not {retries!r}")
        self.max_concurrency = max_concurrency
        self.raise_on_error = raise_on_error
        self.retries = retries
        self.retry_backoff = retry_backoff

    # Kailash code uses runtimes as context managers; there is nothing to release.
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def close(self) -> None:
        return None

    async def execute_async(self, workflow: Any, parameters: dict | None = None, *,
                            inputs: dict | None = None) -> RunResult:
        """Run ``workflow`` and return a ``RunResult`` (see ``execute_workflow_async``)."""
        return await self._execute(workflow, _pick(parameters, inputs))

    async def execute_workflow_async(self, workflow: Any, inputs: dict | None = None, *,
                                     parameters: dict | None = None) -> RunResult:
        """Run ``workflow`` (a built ``Workflow``, or a builder, built for you).

        ``inputs`` may be flat (``{"user_name": "Bob"}``: fills ``"${user_name}"`` templates) or
        scoped by node id (``{"create": {"name": "Bob"}}``: merged over that node's parameters,
        and filling that node's ``"${name}"`` templates before flat inputs do).
        Precedence: static params < node-scoped inputs < connections.
        """
        return await self._execute(workflow, _pick(inputs, parameters))

    # -- core ----------------------------------------------------------------------------------
    async def _execute(self, workflow: Any, inputs: dict | None) -> RunResult:
        wf = _as_workflow(workflow)
        if inputs:
            if not isinstance(inputs, dict):
                raise WorkflowError(f"runtime parameters must be a dict, not {type(inputs).__name__}")
            specs = wf._specs
            scoped = {k: v for k, v in inputs.items() if k in specs and isinstance(v, dict)}
            flat = {k: v for k, v in inputs.items() if k not in scoped} if scoped else inputs
        else:
            inputs = scoped = flat = _EMPTY
        rendered = None
        if wf._has_templates:
            rendered = _render_all(wf, flat, scoped)
            if scoped:
                scoped = _template_only_removed(wf, scoped)
        run_id = new_run_id()
        results: dict = {}
        if len(wf.order) == 1:
            # One node: its context is the run's context (nothing else can see it), no scheduler.
            spec = wf._specs[wf.order[0]]
            ctx = RunContext(run_id, {} if inputs is _EMPTY else inputs, {}, spec.node_id, spec.dependencies, [])
        else:
            spec = None
            # multi-node runs expose the workflow to nodes that need to see the graph (a
            # transaction scope infers its database from the model nodes it serves)
            ctx = RunContext(run_id, {} if inputs is _EMPTY else inputs, {"workflow": wf}, None, frozenset(), [])
        try:
            if spec is not None:
                failed = False
                try:
                    results[spec.node_id] = await self._call(spec, ctx, results, scoped, rendered, ctx)
                except NodeExecutionError as err:
                    if self.raise_on_error:
                        raise
                    results[spec.node_id] = _failure(err)
                    failed = True
            elif wf._sequential or self.max_concurrency == 1:
                failed = await self._run_sequential(wf, ctx, results, scoped, rendered)
            else:
                failed = await self._run_graph(wf, ctx, results, scoped, rendered)
        except BaseException as exc:
            if ctx.finalizers:
                await _finalize(ctx, True, exc)
            raise
        if ctx.finalizers:
            await _finalize(ctx, failed, None)
        return RunResult(results, run_id)

    async def _call(self, spec: NodeSpec, ctx: RunContext, results: dict, scoped: dict,
                    rendered: dict | None, node_ctx: RunContext | None = None) -> dict:
        nid = spec.node_id
        params = spec._params if rendered is None else rendered.get(nid, spec._params)
        over = scoped.get(nid) if scoped else None
        if over or spec.incoming:
            params = dict(params)
            if over:
                params.update(over)
            try:
                for conn in spec.incoming:
                    conn.apply(params, conn.extract(results[conn.from_node]))
            except WorkflowError as exc:
                raise NodeExecutionError(f"node {nid!r} ({spec.type_name}) could not get its inputs: {exc}",
                                         nid, exc) from exc
        if node_ctx is None:
            node_ctx = _node_ctx(ctx, spec)
        attempt = 0
        while True:
            try:
                node = spec.node_class(nid)
                # A node may install a wrapper in the run state (transaction scopes do: their
                # dependents run inside the scope); absent, this costs one dict lookup.
                wrap = node_ctx.state.get(NODE_WRAPPER) if node_ctx.state else None
                if wrap is None:
                    result = await node.run(node_ctx, **node.validate(params))
                else:
                    result = await wrap(node_ctx, lambda: node.run(node_ctx, **node.validate(params)))
            except Exception as exc:
                if attempt < self.retries and getattr(exc, "retryable", False) is True:
                    import asyncio

                    await asyncio.sleep(min(self.retry_backoff * (2 ** attempt), 2.0))
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise NodeExecutionError(
                    f"node {nid!r} ({spec.type_name}) failed{tries}: {type(exc).__name__}: {exc}",
                    nid, exc) from exc
            if not isinstance(result, dict):
                raise NodeExecutionError(
                    f"node {nid!r} ({spec.type_name}) returned {type(result).__name__}; "
                    f"run() must return a dict", nid, None)
            return result

    async def _run_sequential(self, wf: Workflow, ctx, results, scoped, rendered) -> bool:
        """Every node awaited in order, no tasks: chains, single nodes and max_concurrency=1."""
        specs = wf._specs
        bad: dict[str, str] = {}  # node id -> the failed node that stops it
        for nid in wf.order:
            spec = specs[nid]
            if bad:
                root = next((bad[d] for d in spec.dependencies if d in bad), None)
                if root is not None:
                    results[nid] = _skipped(root)
                    bad[nid] = root
                    continue
            try:
                results[nid] = await self._call(spec, ctx, results, scoped, rendered)
            except NodeExecutionError as err:
                if self.raise_on_error:
                    raise
                results[nid] = _failure(err)
                bad[nid] = nid
        return bool(bad)

    async def _run_graph(self, wf: Workflow, ctx, results, scoped, rendered) -> bool:
        """Dependency-driven scheduler; tasks only when more than one node can run."""
        specs = wf._specs
        pending = dict(wf._indegree)
        ready = deque(wf._roots)
        import asyncio  # loaded by now (a loop runs); not at import time

        running: dict = {}
        bad: dict[str, str] = {}
        limit = self.max_concurrency
        loop = asyncio.get_running_loop()
        # node tasks of this run share one read-your-writes session (a node reads what an
        # earlier node wrote, even on a read replica): opened before any task copies the context
        if sessions.enabled:
            sessions.ensure()

        def release(nid: str) -> None:
            stack = [nid]
            while stack:
                for dep in specs[stack.pop()].dependents:
                    pending[dep] -= 1
                    if pending[dep]:
                        continue
                    root = next((bad[d] for d in specs[dep].dependencies if d in bad), None) if bad else None
                    if root is None:
                        ready.append(dep)
                    else:
                        results[dep] = _skipped(root)
                        bad[dep] = root
                        stack.append(dep)

        def failed(nid: str, err: NodeExecutionError) -> None:
            if self.raise_on_error:
                raise err
            results[nid] = _failure(err)
            bad[nid] = nid

        try:
            while ready or running:
                if not running and len(ready) == 1:  # nothing to overlap with: no task
                    nid = ready.popleft()
                    try:
                        results[nid] = await self._call(specs[nid], ctx, results, scoped, rendered)
                    except NodeExecutionError as err:
                        failed(nid, err)
                    release(nid)
                    continue
                while ready and len(running) < limit:
                    nid = ready.popleft()
                    task = loop.create_task(self._call(specs[nid], ctx, results, scoped, rendered))
                    running[task] = nid
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                first_error = None
                for task in sorted(done, key=lambda t: wf._index[running[t]]):
                    nid = running.pop(task)
                    if task.cancelled():
                        err: BaseException | None = NodeExecutionError(
                            f"node {nid!r} ({specs[nid].type_name}) was cancelled", nid, None)
                    else:
                        err = task.exception()
                    if err is None:
                        results[nid] = task.result()
                    elif isinstance(err, NodeExecutionError) and not self.raise_on_error:
                        failed(nid, err)
                    else:
                        first_error = first_error or err
                        continue
                    release(nid)
                if first_error is not None:
                    raise first_error
        except BaseException:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
                for task in running:  # retrieve, so asyncio does not log "never retrieved"
                    if not task.cancelled():
                        task.exception()
            raise
        if len(results) > 1:  # report in dependency order, not completion order
            ordered = {nid: results[nid] for nid in wf.order if nid in results}
            results.clear()
            results.update(ordered)
        return bool(bad)


def _failure(err: NodeExecutionError) -> dict:
    cause = err.cause if err.cause is not None else err
    return {"error": str(cause), "error_type": type(cause).__name__, "failed": True}


def _skipped(root: str) -> dict:
    return {"skipped": True, "reason": f"upstream node {root!r} failed"}


def _pick(a: dict | None, b: dict | None) -> dict | None:
    if a is not None and b is not None:
        raise TypeError("pass runtime inputs once, as parameters= or inputs=, not both")
    return a if a is not None else b


def _as_workflow(obj: Any) -> Workflow:
    if type(obj) is Workflow:
        return obj
    cached = getattr(obj, "_cached_build", None)  # a WorkflowBuilder: build it for the caller
    if cached is not None:
        return cached()
    raise WorkflowError(f"execute() takes a Workflow (WorkflowBuilder().build()) or a WorkflowBuilder, "
                        f"not {type(obj).__name__}")


def _render_all(wf: Workflow, flat: dict, scoped: dict) -> dict:
    """Fill templates for every node before any runs: a missing input fails before side effects."""
    out = {}
    for nid, spec in wf._specs.items():
        if spec.templates:
            over = scoped.get(nid)
            if over:
                # inputs scoped to this node fill its templates too (before the flat ones)
                out[nid] = render_params(nid, spec._params, spec.templates, {**flat, **over},
                                         spec.connected_keys | over.keys())
            else:
                out[nid] = render_params(nid, spec._params, spec.templates, flat, spec.connected_keys)
    return out


def _template_only_removed(wf: Workflow, scoped: dict) -> dict:
    """Node-scoped inputs minus the names that only feed that node's templates (``{"q": {"who":
    "Bob"}}`` for ``"${who}"``): they are not parameters of the node, which may refuse unknown ones."""
    out = {}
    for nid, over in scoped.items():
        spec = wf._specs[nid]
        extra = spec.template_inputs.intersection(over).difference(spec._params)
        out[nid] = {k: v for k, v in over.items() if k not in extra} if extra else over
    return out


async def _finalize(ctx: RunContext, failed: bool, error: BaseException | None) -> None:
    """Run finalizers newest first; never let one mask the run's own error."""
    first: Exception | None = None
    while ctx.finalizers:
        fn = ctx.finalizers.pop()
        try:
            res = fn(failed)
            if inspect.isawaitable(res):
                await res
        except Exception as exc:
            if error is not None:
                error.add_note(f"run finalizer {getattr(fn, '__qualname__', fn)!r} also failed: "
                               f"{type(exc).__name__}: {exc}")
            elif first is None:
                first = exc
    if first is not None:
        raise WorkflowError(f"a run finalizer failed after the workflow ran: {type(first).__name__}: "
                            f"{first}") from first


class AsyncLocalRuntime(_Runtime):
    """The async runtime: ``await AsyncLocalRuntime().execute_workflow_async(wf, inputs={...})``."""

    async def execute(self, workflow: Any, parameters: dict | None = None, *,
                      inputs: dict | None = None) -> RunResult:
        """Same as ``execute_workflow_async``; returns a ``RunResult``."""
        return await self._execute(workflow, _pick(parameters, inputs))


class LocalRuntime(_Runtime):
    """The sync runtime: ``results, run_id = LocalRuntime().execute(wf, parameters={...})``.

    Runs on DataFlow's persistent per-thread loop, so it works from plain code and from inside a
    running event loop (Jupyter, async frameworks); the async methods are available too.
    """

    def execute(self, workflow: Any, parameters: dict | None = None, *,
                inputs: dict | None = None, task_manager: Any = None) -> RunResult:
        """Run ``workflow`` to completion and return a ``RunResult`` (``task_manager``: Kailash, ignored)."""
        return run_sync(self._execute(workflow, _pick(parameters, inputs)))
