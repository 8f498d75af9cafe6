"""LocalRuntime / AsyncLocalRuntime behaviour: inputs, RunResult, concurrency, failures, retries."""

import asyncio
import json
import pickle

import pytest

from dataflow.errors import DataFlowError, NodeExecutionError, ValidationError, WorkflowError
from dataflow.nodes.base import Node, Param
from dataflow.workflow import AsyncLocalRuntime, LocalRuntime, RunResult, WorkflowBuilder


class Echo(Node):
    async def run(self, ctx, **params):
        return dict(params)


class Ctx(Node):
    """Reports what the runtime put on its context."""

    async def run(self, ctx, **params):
        await asyncio.sleep(0)
        return {"node_id": ctx.node_id, "deps": sorted(ctx.dependencies), "run_id": ctx.run_id,
                "inputs": ctx.inputs, "state": id(ctx.state)}


class Boom(Node):
    async def run(self, ctx, **params):
        raise RuntimeError("kaboom")


class NotDict(Node):
    async def run(self, ctx, **params):
        return [1]


class Sleeper(Node):
    started: list = []
    cancelled: list = []

    async def run(self, ctx, delay=10.0, **params):
        Sleeper.started.append(ctx.node_id)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            Sleeper.cancelled.append(ctx.node_id)
            raise
        return {"slept": delay}


class Flaky(Node):
    """Fails ``fails`` times with ``error`` then succeeds; counts calls in ctx.state."""

    async def run(self, ctx, fails=1, retryable=True, **params):
        n = ctx.state["calls"] = ctx.state.get("calls", 0) + 1
        if n <= fails:
            err = DataFlowError("transient")
            err.retryable = retryable
            raise err
        return {"calls": n}


class Required(Node):
    parameters = {"x": Param(int, required=True)}

    async def run(self, ctx, x):
        return {"x": x}


def chain(*classes):
    wf = WorkflowBuilder()
    prev = None
    for i, cls in enumerate(classes):
        nid = f"n{i}"
        wf.add_node(cls, nid)
        if prev:
            wf.add_connection(prev, "*", nid, "upstream")
        prev = nid
    return wf.build()


# -- inputs and RunResult ----------------------------------------------------------------------
def test_flat_and_scoped_inputs_and_precedence():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "src", {"v": "static"})
    wf.add_node(Echo, "dst", {"a": "static", "b": "static", "c": "static", "name": "${name}"})
    wf.add_connection("src", "v", "dst", "c")
    r = LocalRuntime().execute(wf.build(), parameters={"name": "Bob", "dst": {"b": "scoped", "c": "scoped"}})
    assert r["dst"] == {"a": "static", "b": "scoped", "c": "static", "name": "Bob"}
    assert r["src"] == {"v": "static"}


def test_run_result_both_styles():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "search", {"results": [1, 2]})
    r = LocalRuntime().execute(wf.build())
    results, run_id = r
    assert isinstance(r, RunResult) and isinstance(r, dict)
    assert results == {"search": {"results": [1, 2]}} and type(results) is dict
    assert run_id == r.run_id and isinstance(run_id, str) and len(run_id) == 32
    assert r["search"]["results"] == [1, 2] and r.results is results
    assert len(r) == 1 and "search" in r and "nope" not in r
    assert r.get("search") == {"results": [1, 2]} and r.get("nope") is None
    assert list(r.keys()) == ["search"] and list(r.values()) == [{"results": [1, 2]}]
    assert list(r.items()) == [("search", {"results": [1, 2]})]
    assert list(r) == [results, run_id]
    assert r[0] is results and r[1] == run_id
    assert r["results"] is results and r["run_id"] == run_id  # Kailash async result shape
    assert r == results and r == (results, run_id)
    with pytest.raises(KeyError):
        r["nope"]
    assert json.loads(json.dumps(r)) == results
    back = pickle.loads(pickle.dumps(r))
    assert back.run_id == run_id and back == results


def test_run_ids_unique():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a")
    built = wf.build()
    rt = LocalRuntime()
    assert len({rt.execute(built).run_id for _ in range(50)}) == 50


async def test_async_entry_points_equivalent():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", {"x": "${x}"})
    built = wf.build()
    rt = AsyncLocalRuntime()
    r1 = await rt.execute_workflow_async(built, inputs={"x": 1})
    r2 = await rt.execute_async(built, parameters={"x": 2})
    r3 = await rt.execute(built, {"x": 3})
    r4 = await rt.execute_workflow_async(wf, parameters={"x": 4})
    assert [r["a"]["x"] for r in (r1, r2, r3, r4)] == [1, 2, 3, 4]
    with pytest.raises(TypeError):
        await rt.execute(built, {"x": 1}, inputs={"x": 2})


async def test_local_runtime_from_inside_running_loop():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", x=1)
    results, run_id = LocalRuntime().execute(wf.build())
    assert results == {"a": {"x": 1}}


def test_context_is_per_node_but_state_shared():
    wf = WorkflowBuilder()
    wf.add_node(Ctx, "a")
    wf.add_node(Ctx, "b")
    wf.add_node(Ctx, "c")
    wf.add_connection("a", "node_id", "c", "x")
    wf.add_connection("b", "node_id", "c", "y")
    r = LocalRuntime().execute(wf.build(), parameters={"flag": 1})
    assert [r[n]["node_id"] for n in "abc"] == ["a", "b", "c"]
    assert r["c"]["deps"] == ["a", "b"] and r["a"]["deps"] == []
    assert len({r[n]["state"] for n in "abc"}) == 1
    assert {r[n]["run_id"] for n in "abc"} == {r.run_id}
    assert r["a"]["inputs"] == {"flag": 1}


def test_validation_applies_defaults_and_reports_missing():
    wf = WorkflowBuilder()
    wf.add_node(Required, "r")
    with pytest.raises(NodeExecutionError, match="'r' \\(Required\\).*needs parameter 'x'") as ei:
        LocalRuntime().execute(wf.build())
    assert isinstance(ei.value.cause, ValidationError)
    assert LocalRuntime().execute(wf.build(), {"r": {"x": 3}})["r"] == {"x": 3}


def test_non_dict_result_is_an_error():
    wf = WorkflowBuilder()
    wf.add_node(NotDict, "bad")
    with pytest.raises(NodeExecutionError, match="'bad' .*returned list"):
        LocalRuntime().execute(wf.build())


# -- concurrency --------------------------------------------------------------------------------
class Handshake(Node):
    """Sets its own event then waits for the partner's: completes only if both run at once."""

    events: dict = {}

    async def run(self, ctx, me, partner):
        ev = Handshake.events
        ev[me].set()
        await asyncio.wait_for(ev[partner].wait(), 1.0)
        return {"ok": True}


def handshake_workflow():
    Handshake.events = {"a": asyncio.Event(), "b": asyncio.Event()}
    wf = WorkflowBuilder()
    wf.add_node(Handshake, "a", me="a", partner="b")
    wf.add_node(Handshake, "b", me="b", partner="a")
    wf.add_node(Echo, "join")
    wf.add_connection("a", "ok", "join", "a")
    wf.add_connection("b", "ok", "join", "b")
    return wf.build()


async def test_independent_nodes_run_concurrently():
    r = await AsyncLocalRuntime().execute_workflow_async(handshake_workflow())
    assert r["join"] == {"a": True, "b": True}
    assert list(r.keys()) == ["a", "b", "join"]


async def test_max_concurrency_one_serialises():
    with pytest.raises(NodeExecutionError) as ei:
        await AsyncLocalRuntime(max_concurrency=1).execute(handshake_workflow())
    assert isinstance(ei.value.cause, asyncio.TimeoutError)


async def test_max_concurrency_bounds_running_nodes():
    running = {"now": 0, "peak": 0}

    class Count(Node):
        async def run(self, ctx, **p):
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
            await asyncio.sleep(0.01)
            running["now"] -= 1
            return {}

    wf = WorkflowBuilder()
    for i in range(8):
        wf.add_node(Count, f"c{i}")
    await AsyncLocalRuntime(max_concurrency=3).execute(wf.build())
    assert running["peak"] == 3


# -- failures -----------------------------------------------------------------------------------
async def test_failure_cancels_siblings_and_chains_cause():
    Sleeper.started, Sleeper.cancelled = [], []
    wf = WorkflowBuilder()
    wf.add_node(Sleeper, "slow")
    wf.add_node(Boom, "boom")
    wf.add_node(Echo, "after")
    wf.add_connection("slow", "slept", "after", "x")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(NodeExecutionError) as ei:
        await AsyncLocalRuntime().execute(wf.build())
    assert loop.time() - t0 < 2
    err = ei.value
    assert err.node_id == "boom" and isinstance(err.cause, RuntimeError)
    assert err.__cause__ is err.cause
    assert "'boom'" in str(err) and "Boom" in str(err) and "kaboom" in str(err)
    assert Sleeper.cancelled == ["slow"]
    assert isinstance(err, WorkflowError)


def test_raise_on_error_false_records_and_skips_dependents():
    wf = WorkflowBuilder()
    wf.add_node(Boom, "boom")
    wf.add_node(Echo, "child")
    wf.add_node(Echo, "grandchild")
    wf.add_node(Echo, "independent", x=1)
    wf.add_connection("boom", "x", "child", "x")
    wf.add_connection("child", "x", "grandchild", "x")
    r = LocalRuntime(raise_on_error=False).execute(wf.build())
    assert r["boom"] == {"error": "kaboom", "error_type": "RuntimeError", "failed": True}
    assert r["child"] == {"skipped": True, "reason": "upstream node 'boom' failed"}
    assert r["grandchild"]["skipped"] and "'boom'" in r["grandchild"]["reason"]
    assert r["independent"] == {"x": 1}


async def test_raise_on_error_false_async_chain_and_graph():
    for wf in (chain(Echo, Boom, Echo), chain(Boom)):
        r = await AsyncLocalRuntime(raise_on_error=False).execute(wf)
        assert any(v.get("failed") for v in r.values())
    r = await AsyncLocalRuntime(raise_on_error=False).execute(chain(Echo, Boom, Echo))
    assert r["n2"]["skipped"] is True


# -- retries ------------------------------------------------------------------------------------
def test_retryable_errors_are_retried():
    wf = WorkflowBuilder()
    wf.add_node(Flaky, "f", fails=2)
    r = LocalRuntime(retries=2, retry_backoff=0.001).execute(wf.build())
    assert r["f"] == {"calls": 3}
    with pytest.raises(NodeExecutionError, match="after 2 attempts"):
        LocalRuntime(retries=1, retry_backoff=0.001).execute(wf.build())


def test_non_retryable_errors_never_retried():
    wf = WorkflowBuilder()
    wf.add_node(Flaky, "f", fails=1, retryable=False)
    wf.add_node(Ctx, "c")
    with pytest.raises(NodeExecutionError) as ei:
        LocalRuntime(retries=5, retry_backoff=0.001).execute(wf.build())
    assert ei.value.cause.retryable is False


def test_no_retries_by_default():
    wf = WorkflowBuilder()
    wf.add_node(Flaky, "f", fails=1)
    with pytest.raises(NodeExecutionError):
        LocalRuntime().execute(wf.build())


# -- finalizers ---------------------------------------------------------------------------------
def finalizer_node(log, fail=False, finalizer_error=False):
    class Fin(Node):
        async def run(self, ctx, **p):
            async def first(failed):
                log.append(("first", failed))

            def second(failed):  # sync callables are accepted too
                log.append(("second", failed))
                if finalizer_error:
                    raise ValueError("finalizer broke")
            ctx.on_finish(first)
            ctx.on_finish(second)
            if fail:
                raise RuntimeError("node broke")
            return {}
    return Fin


@pytest.mark.parametrize("fail", [False, True])
def test_finalizers_newest_first_with_failed_flag(fail):
    log = []
    wf = WorkflowBuilder()
    wf.add_node(finalizer_node(log, fail=fail), "n")
    if fail:
        with pytest.raises(NodeExecutionError):
            LocalRuntime().execute(wf.build())
    else:
        LocalRuntime().execute(wf.build())
    assert log == [("second", fail), ("first", fail)]


def test_finalizer_failed_flag_with_raise_on_error_false():
    log = []
    wf = WorkflowBuilder()
    wf.add_node(finalizer_node(log), "ok")
    wf.add_node(Boom, "boom")
    LocalRuntime(raise_on_error=False).execute(wf.build())
    assert log == [("second", True), ("first", True)]


def test_finalizer_error_does_not_mask_node_error():
    log = []
    wf = WorkflowBuilder()
    wf.add_node(finalizer_node(log, fail=True, finalizer_error=True), "n")
    with pytest.raises(NodeExecutionError, match="node broke") as ei:
        LocalRuntime().execute(wf.build())
    assert any("finalizer broke" in note for note in ei.value.__notes__)
    assert log == [("second", True), ("first", True)]


def test_finalizer_error_after_success_is_raised():
    log = []
    wf = WorkflowBuilder()
    wf.add_node(finalizer_node(log, finalizer_error=True), "n")
    with pytest.raises(WorkflowError, match="finalizer broke"):
        LocalRuntime().execute(wf.build())
    assert log == [("second", False), ("first", False)]


# -- fast path and misc -------------------------------------------------------------------------
async def test_chains_and_single_nodes_create_no_tasks(monkeypatch):
    loop = asyncio.get_running_loop()
    created = []
    real = loop.create_task
    monkeypatch.setattr(loop, "create_task", lambda *a, **k: created.append(1) or real(*a, **k))
    rt = AsyncLocalRuntime()
    await rt.execute(chain(Echo))
    r = await rt.execute(chain(Echo, Echo, Echo))
    assert r["n2"]["upstream"] == {"upstream": {}}
    assert created == []


def test_static_params_not_copied_per_run_but_isolated_from_builder():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", {"k": [1]})
    built = wf.build()
    r1 = LocalRuntime().execute(built)
    r2 = LocalRuntime().execute(built)
    assert r1["a"]["k"] is r2["a"]["k"]  # shared, by design: nodes must not mutate params


def test_empty_workflow_and_bad_options():
    assert LocalRuntime().execute(WorkflowBuilder().build()) == {}
    with pytest.raises(ValueError):
        LocalRuntime(max_concurrency=0)
    with pytest.raises(TypeError, match="unknown option"):
        LocalRuntime(max_concurency=3)
    with LocalRuntime(debug=True, enable_cycles=False) as rt:
        assert rt.execute(chain(Echo))["n0"] == {}


async def test_cancelling_the_run_cancels_nodes_and_runs_finalizers():
    Sleeper.started, Sleeper.cancelled = [], []
    log = []

    class Fin(Node):
        async def run(self, ctx, **p):
            async def fin(failed):
                log.append(failed)
            ctx.on_finish(fin)
            return {}

    wf = WorkflowBuilder()
    wf.add_node(Fin, "fin")
    wf.add_node(Sleeper, "s1")
    wf.add_node(Sleeper, "s2")
    task = asyncio.ensure_future(AsyncLocalRuntime().execute(wf.build()))
    while len(Sleeper.started) < 2:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(Sleeper.cancelled) == ["s1", "s2"]
    assert log == [True]


# -- property: any DAG runs every node once, after all of its dependencies ----------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=20))),
    st.integers(1, 4))
def test_random_dags_respect_dependencies(shape, limit):
    n, edges = shape
    finished = []

    class Track(Node):
        async def run(self, ctx, **p):
            await asyncio.sleep(0)
            finished.append(ctx.node_id)
            return {"v": ctx.node_id, "got": dict(p)}

    wf = WorkflowBuilder()
    for i in range(n):
        wf.add_node(Track, f"n{i}")
    deps = {f"n{i}": set() for i in range(n)}
    for a, b in edges:
        if a < b:  # forward edges only: always acyclic
            src, dst = f"n{a}", f"n{b}"
            if src not in deps[dst]:
                wf.add_connection(src, "v", dst, f"from_{src}")
                deps[dst].add(src)
    r = LocalRuntime(max_concurrency=limit).execute(wf.build())
    assert sorted(finished) == sorted(deps) and len(r) == n
    pos = {nid: i for i, nid in enumerate(finished)}
    for dst, srcs in deps.items():
        assert all(pos[s] < pos[dst] for s in srcs)
        assert r[dst]["got"] == {f"from_{s}": s for s in srcs}
