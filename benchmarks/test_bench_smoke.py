"""pytest-benchmark entry for ``pytest benchmarks/ --benchmark-only``.

Not part of the test suite: ``pytest`` alone collects ``tests/`` only (testpaths in
pyproject.toml).  The full table with peers and ratios is ``python -m benchmarks``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

from dataflow import DataFlow, LocalRuntime, WorkflowBuilder  # noqa: E402


@pytest.fixture(scope="module")
def db():
    db = DataFlow("sqlite:///:memory:")

    @db.model
    class SmokeUser:
        name: str
        age: int = 0

    db.express_sync.create("SmokeUser", {"name": "Ada", "age": 36})
    yield db
    db.close()


def test_express_sync_read_sqlite_memory(benchmark, db):
    row = benchmark(db.express_sync.read, "SmokeUser", 1)
    assert row["name"] == "Ada"


def test_one_node_workflow_sqlite_memory(benchmark, db):
    wf = WorkflowBuilder()
    wf.add_node("SmokeUserReadNode", "r", {"id": 1})
    graph, rt = wf.build(), LocalRuntime()
    res = benchmark(rt.execute, graph)
    assert res["r"]["name"] == "Ada"
