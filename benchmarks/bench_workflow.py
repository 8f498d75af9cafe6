"""Workflow runtime overhead: a no-op node through LocalRuntime vs calling its run() directly.

Per-call medians; the chain and fan-out cases are per node.  The baseline goes through the same
``run_sync`` loop, so the ratio is the runtime's own bookkeeping.
"""

from __future__ import annotations

import statistics
import time

from dataflow._loop import run_sync
from dataflow.nodes.base import Node, RunContext
from dataflow.workflow import LocalRuntime, WorkflowBuilder

GROUP = "workflow overhead"


class NoOp(Node):
    async def run(self, ctx, **params):
        return {"ok": True}


def _median_per_call(fn, calls: int, repeats: int, per: int = 1) -> float:
    fn()  # warm up the loop and caches
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls / per)
    return statistics.median(samples)


def _chain(n: int):
    wf = WorkflowBuilder()
    for i in range(n):
        wf.add_node(NoOp, f"n{i}")
        if i:
            wf.add_connection(f"n{i - 1}", "ok", f"n{i}", "prev")
    return wf.build()


def _fan(n: int):
    wf = WorkflowBuilder()
    for i in range(n):
        wf.add_node(NoOp, f"n{i}")
    return wf.build()


def run(quick: bool) -> list[dict]:
    calls, repeats = (300, 5) if quick else (3000, 9)
    node = NoOp("direct")
    ctx = RunContext("bench")
    rt = LocalRuntime()
    one, chain10, fan10 = _chain(1), _chain(10), _fan(10)

    base = "no-op node run() via run_sync"
    rows = [
        (base, _median_per_call(lambda: run_sync(node.run(ctx)), calls, repeats), None),
        ("1-node workflow via LocalRuntime.execute",
         _median_per_call(lambda: rt.execute(one), calls, repeats), base),
        ("10-node chain, per node", _median_per_call(lambda: rt.execute(chain10), calls // 5, repeats, 10), base),
        ("10 independent nodes, per node",
         _median_per_call(lambda: rt.execute(fan10), calls // 5, repeats, 10), base),
    ]
    return [{"group": GROUP, "case": case, "median_s": t, "baseline": b, "note": ""} for case, t, b in rows]


if __name__ == "__main__":
    results = run(quick=False)
    base_t = results[0]["median_s"]
    for row in results:
        print(f"{row['case']:45s} {row['median_s'] * 1e6:8.2f} us  x{row['median_s'] / base_t:5.2f}")
