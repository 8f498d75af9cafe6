"""Migrations against real servers: model evolution, concurrent first use, a killed migrator,
rollback, existing_schema_mode, long generated names.  Runs on sqlite, postgresql and mysql."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from typing import Optional

import pytest

from dataflow import DataFlow
from dataflow.errors import ConfigurationError
from dataflow.migrations import history

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
async def cleanup(url):
    """Tables to drop at teardown (children first)."""
    names: list[str] = []
    yield names
    d = DataFlow(url, auto_migrate=False)
    try:
        for t in reversed(names):
            await d.execute_raw(f"DROP TABLE IF EXISTS {d.dialect.quote(t)}")
    finally:
        await d.close_async()


def versioned(url, table, fields: dict, defaults=None, opts=None, **kw) -> DataFlow:
    """A DataFlow with one model ``Item`` on ``table``: one version of an evolving model."""
    db = DataFlow(url, **kw)
    ns = {"__annotations__": dict(fields), **(defaults or {}),
          "__dataflow__": {**(opts or {}), "table_name": table}}
    db.model(type("Item", (), ns))
    return db


async def raw(db, sql):
    return await db.execute_raw(sql)


async def history_for(db, table) -> list:
    return [r for r in await history.rows(db) if any(table in s for s in r["ddl"])]


async def test_model_evolution(url, tables, cleanup):
    t = tables("evo")
    cleanup.append(t)
    v1 = versioned(url, t, {"name": str, "age": int})
    await v1.express.create("Item", {"name": "ada", "age": 36})
    await v1.close_async()

    # add nullable, add NOT NULL with default, add index, add unique: all automatic
    v2 = versioned(url, t, {"name": str, "age": int, "email": Optional[str], "score": int},
                   {"email": None, "score": 5}, {"indexes": [{"fields": ["age"]}], "unique": ["name"]})
    await v2.initialize()
    rows = await v2.express.list("Item")
    assert rows[0]["email"] is None and rows[0]["score"] == 5 and rows[0]["name"] == "ada"
    await v2.express.create("Item", {"name": "bob", "age": 1, "email": "b@x"})
    live = (await v2.discover_schema_async([t]))[t]
    assert {c["name"] for c in live["columns"]} >= {"email", "score"}
    ix = {tuple(i["columns"]): i["unique"] for i in live["indexes"]}
    assert ix[("age",)] is False and ix[("name",)] is True
    with pytest.raises(Exception):
        await v2.express.create("Item", {"name": "bob", "age": 2})  # the unique index is real
    assert len(await history_for(v2, t)) == 2
    assert not v2.migration_plan()
    await v2.close_async()

    # removed field + type change: reported, not applied, data kept
    v3 = versioned(url, t, {"name": str, "email": Optional[str], "score": str}, {"email": None, "score": "5"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await v3.initialize()
    assert any("allow_destructive" in str(w.message) for w in caught)
    plan = v3.migration_plan()
    kinds = {(o.action, o.column, o.mode) for o in plan}
    assert ("drop_column", "age", "manual") in kinds and ("change_type", "score", "manual") in kinds
    assert (await raw(v3, f"SELECT age FROM {v3.dialect.quote(t)} ORDER BY id"))[0][0] == 36
    age = [c for c in (await v3.discover_schema_async([t]))[t]["columns"] if c["name"] == "age"][0]
    assert age["nullable"]  # relaxed automatically, so inserts without it succeed
    res = await v3.migrate(allow_destructive=True)
    await v3.express.create("Item", {"name": "cy", "score": "7"})
    assert res["version"] and not res["pending"]
    cols = {c["name"] for c in (await v3.discover_schema_async([t]))[t]["columns"]}
    assert "age" not in cols
    assert sorted(r["score"] for r in await v3.express.list("Item")) == ["5", "5", "7"]
    await v3.close_async()

    # rename without metadata: refused, nothing renamed, never drop + add
    v4 = versioned(url, t, {"full_name": str, "email": Optional[str], "score": str}, {"email": None, "score": "5"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await v4.initialize()
    assert [o.action for o in v4.migration_plan().refused] == ["possible_rename"]
    with pytest.raises(ConfigurationError, match="renames"):
        await v4.migrate(allow_destructive=True)
    cols = {c["name"] for c in (await v4.discover_schema_async([t]))[t]["columns"]}
    assert "name" in cols and "full_name" not in cols
    await v4.close_async()

    # with metadata: renamed in place, data kept, reversible
    v5 = versioned(url, t, {"full_name": str, "email": Optional[str], "score": str}, {"email": None, "score": "5"},
                   {"renames": {"full_name": "name"}})
    await v5.initialize()
    assert sorted(r["full_name"] for r in await v5.express.list("Item")) == ["ada", "bob", "cy"]
    last = (await history_for(v5, t))[-1]
    assert any("RENAME COLUMN" in s for s in last["ddl"])
    await v5.rollback_migration(last["version"])
    cols = {c["name"] for c in (await v5.discover_schema_async([t]))[t]["columns"]}
    assert "name" in cols and "full_name" not in cols
    assert (await history.rows(v5, last["version"]))[0]["status"] == "rolled_back"
    await v5.close_async()


async def test_rollback_of_additive_migration(url, tables, cleanup):
    t = tables("rb")
    cleanup.append(t)
    v1 = versioned(url, t, {"name": str})
    await v1.express.create("Item", {"name": "a"})
    await v1.close_async()
    v2 = versioned(url, t, {"name": str, "note": Optional[str]}, {"note": None}, {"indexes": [{"fields": ["name"]}]})
    await v2.initialize()
    version = (await history_for(v2, t))[-1]["version"]
    await v2.rollback_migration(version)
    live = (await v2.discover_schema_async([t]))[t]
    assert "note" not in {c["name"] for c in live["columns"]} and not live["indexes"]
    with pytest.raises(Exception, match="already rolled back"):
        await v2.rollback_migration(version)
    await v2.close_async()


async def test_existing_schema_mode_lists_every_mismatch(url, tables, cleanup):
    t = tables("esm")
    cleanup.append(t)
    v1 = versioned(url, t, {"name": str, "age": Optional[int]}, {"age": None})
    await v1.initialize()
    await v1.close_async()
    bad = versioned(url, t, {"name": int, "age": Optional[int], "email": str}, {"age": None}, {"unique": ["name"]},
                    existing_schema_mode=True)
    with pytest.raises(ConfigurationError) as err:
        await bad.initialize()
    msg = str(err.value)
    assert "Item.name" in msg and "Item.email" in msg and "unique" in msg
    live = (await bad.discover_schema_async([t]))[t]
    assert "email" not in {c["name"] for c in live["columns"]}  # no DDL ran
    await bad.close_async()
    good = versioned(url, t, {"name": str, "age": Optional[int]}, {"age": None}, existing_schema_mode=True)
    await good.initialize()
    await good.close_async()


async def test_long_names_sharing_a_prefix_get_two_tables(url, cleanup):
    prefix = "VeryLongModelNameThatKeepsGoingPastTheIdentifierLimitOfPostgres" + os.urandom(3).hex().upper()
    db = DataFlow(url)
    a = type(prefix + "Alpha", (), {"__annotations__": {"name": str}})
    b = type(prefix + "Beta", (), {"__annotations__": {"name": str}})
    db.model(a)
    db.model(b)
    ta, tb = db._models[a.__name__].table, db._models[b.__name__].table
    cleanup.extend([ta, tb])
    assert ta != tb and len(ta) <= 63 and len(tb) <= 63
    await db.express.create(a.__name__, {"name": "in a"})
    await db.express.create(b.__name__, {"name": "in b"})
    assert [r["name"] for r in await db.express.list(a.__name__)] == ["in a"]
    assert [r["name"] for r in await db.express.list(b.__name__)] == ["in b"]
    assert set(await db.discover_schema_async([ta, tb])) == {ta, tb}
    await db.close_async()


# -- several processes ---------------------------------------------------------------------------
WORKER = '''
import asyncio, sys, time
sys.path.insert(0, {root!r})
from dataflow import DataFlow
url, prefix, start_at, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
db = DataFlow(url, migration_lock_timeout=30)
for i in range(3):
    cls = type(f"Model{{i}}", (), {{"__annotations__": {{"name": str, "qty": int}}, "qty": 0,
              "__dataflow__": {{"table_name": f"{{prefix}}_{{i}}", "indexes": [{{"fields": ["qty"]}}]}}}})
    db.model(cls)

async def main():
    if mode == "hold":
        import dataflow.migrations.apply as A
        real = A.execute_statements
        count = [0]
        async def slow(db_, stmts):
            await real(db_, stmts)
            count[0] += 1
            if count[0] == 2:  # mid-way: one table done, lock held
                print("MIDWAY", flush=True)
                await asyncio.sleep(120)
        A.execute_statements = slow
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    await db.initialize()
    await db.express.create("Model0", {{"name": "x"}})
    await db.close_async()
    print("OK", flush=True)

asyncio.run(main())
'''


def _spawn(tmp_path, url, prefix, start_at, mode="run"):
    script = tmp_path / "worker.py"
    if not script.exists():  # never rewritten while earlier workers may still be reading it
        script.write_text(WORKER.format(root=ROOT))
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, str(script), url, prefix, str(start_at), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def test_eight_processes_one_migrator(url, tables, cleanup, tmp_path):
    prefix = tables("par")
    cleanup.extend(f"{prefix}_{i}" for i in range(3))
    start_at = time.time() + 2.5
    procs = [_spawn(tmp_path, url, prefix, start_at) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "OK" in out, (p.returncode, out[-500:], err[-2000:])
    db = DataFlow(url, auto_migrate=False)
    try:
        applied = await history_for(db, prefix)
        assert len(applied) == 1, applied  # exactly one process ran the DDL
        assert sum(f"CREATE TABLE IF NOT EXISTS {db.dialect.quote(prefix + '_0')}" in s
                   for s in applied[0]["ddl"]) == 1
        assert (await db.execute_raw(f"SELECT COUNT(*) FROM {db.dialect.quote(prefix + '_0')}"))[0][0] == 8
    finally:
        await db.close_async()


async def test_killed_migrator_does_not_block_the_next(url, tables, cleanup, tmp_path):
    prefix = tables("kill")
    cleanup.extend(f"{prefix}_{i}" for i in range(3))
    holder = _spawn(tmp_path, url, prefix, 0, mode="hold")
    try:
        line = ""
        deadline = time.time() + 30
        while "MIDWAY" not in line and time.time() < deadline:
            line = holder.stdout.readline()
            if not line and holder.poll() is not None:
                pytest.fail(f"holder exited early: {holder.stderr.read()[-2000:]}")
        assert "MIDWAY" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    t0 = time.time()
    nxt = _spawn(tmp_path, url, prefix, 0)
    out, err = nxt.communicate(timeout=60)
    assert nxt.returncode == 0 and "OK" in out, err[-2000:]
    assert time.time() - t0 < 25  # did not wait out the lock timeout
    db = DataFlow(url, auto_migrate=False)
    try:
        live = await db.discover_schema_async([f"{prefix}_{i}" for i in range(3)])
        assert len(live) == 3 and all(t["indexes"] for t in live.values())
        assert not [o for o in (await _plan(db, prefix)) if o.automatic]
    finally:
        await db.close_async()


async def _plan(db, prefix):
    for i in range(3):
        cls = type(f"Model{i}", (), {"__annotations__": {"name": str, "qty": int}, "qty": 0,
                                     "__dataflow__": {"table_name": f"{prefix}_{i}", "indexes": [{"fields": ["qty"]}]}})
        db.model(cls)
    from dataflow.migrations.apply import plan
    return await plan(db)
