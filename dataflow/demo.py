"""The quick-start demo: models, create, filtered list, update, delete, a workflow, and a
100,000-row bulk create, with timings.  Runs on embedded SQLite with no server."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import datetime, timezone

from . import DataFlow, LocalRuntime, WorkflowBuilder


def _t(code: str, start: float, extra: str = "") -> None:
    """One step: the code that ran, its time, and what it returned."""
    print(f"  >>> {code}\n      {1000 * (time.perf_counter() - start):9.2f} ms  {extra}")


NEXT = """
Where next:
  README.md, docs/   models, filters, workflows, transactions, bulk, migrations, vectors, tenants,
                     caching, MongoDB, the data fabric, read replicas (make docs builds the site)
  python -m dataflow info            which native core is active and why
  make test                          the whole suite (adds the PostgreSQL/MariaDB drivers and test tools)
  make bench                         timings and ratios against raw drivers
  DataFlow("postgresql://user@host/db") or DataFlow("mysql://root@host/db") instead of SQLite
    (pip install 'dataflow-native[postgres]' / '[mysql]')
"""


def _define(db: DataFlow) -> DataFlow:
    @db.model
    class User:
        name: str
        email: str
        age: int = 0
        active: bool = True
        tags: list[str] = []
        last_login: datetime | None = None
        __dataflow__ = {"unique": ["email"]}

    @db.model
    class Event:
        user_id: int
        kind: str
        payload: dict = {}

    return db


def main(url: str | None = None, rows: int = 100_000) -> int:
    tmp = None
    if url is None:
        tmp = tempfile.mkdtemp(prefix="dataflow-demo-")
        url = f"sqlite:///{os.path.join(tmp, 'demo.db')}"
    from dataflow import _native
    print(f"DataFlow demo on {url}  (native core: {_native.IMPLEMENTATION}); each step shows its code,\n"
          f"its time and its result.  Source: {__file__}\n")
    db = _define(DataFlow(url))

    async def run() -> None:
        e = db.express
        t = time.perf_counter()
        await db.initialize()
        _t("await db.initialize()  # connect, CREATE TABLE users, events", t)
        t = time.perf_counter()
        ada = await e.create("User", {"name": "Ada", "email": "ada@example.com", "age": 36, "tags": ["math"],
                                      "last_login": datetime.now(timezone.utc)})
        await e.create("User", {"name": "Alan", "email": "alan@example.com", "age": 41})
        await e.create("User", {"name": "grace", "email": "grace@example.com", "age": 85, "active": False})
        _t("await db.express.create(\"User\", {\"name\": \"Ada\", \"email\": ..., \"age\": 36})  # x3", t,
           f"-> Ada has id {ada['id']}")
        t = time.perf_counter()
        found = await e.list("User", {"age": {"$gte": 30}, "$or": [{"name": {"$regex": "^A"}},
                                                                   {"active": False}]}, order_by=["-age"])
        _t("await db.express.list(\"User\", {\"age\": {\"$gte\": 30}, \"$or\": [{\"name\": {\"$regex\": \"^A\"}}, "
           "{\"active\": False}]}, order_by=[\"-age\"])", t, f"-> {[u['name'] for u in found]}")
        t = time.perf_counter()
        upd = await e.update("User", ada["id"], {"age": 37})
        _t("await db.express.update(\"User\", ada[\"id\"], {\"age\": 37})", t, f"-> age {upd['age']}")
        t = time.perf_counter()
        await e.delete("User", ada["id"])
        _t("await db.express.delete(\"User\", ada[\"id\"])", t, f"-> {await e.count('User')} users left")
        records = [{"user_id": i % 1000, "kind": "click" if i % 3 else "view", "payload": {"n": i}}
                   for i in range(rows)]
        t = time.perf_counter()
        res = await e.bulk_create("Event", records, batch_size=5000)
        secs = time.perf_counter() - t
        _t(f"await db.express.bulk_create(\"Event\", records, batch_size=5000)  # {rows:,} dicts", t,
           f"-> {res['inserted']:,} rows, {rows / secs:,.0f} rows/s")
        t = time.perf_counter()
        n = await e.count("Event", {"kind": "view", "user_id": {"$in": [1, 2, 3]}})
        _t("await db.express.count(\"Event\", {\"kind\": \"view\", \"user_id\": {\"$in\": [1, 2, 3]}})", t, f"-> {n}")
        await db.close_async()

    asyncio.run(run())

    db = _define(DataFlow(url))  # a second process-like start: same models, same tables
    wf = WorkflowBuilder()
    wf.add_node("UserCreateNode", "create", {"name": "${name}", "email": "${email}"})
    wf.add_node("UserReadNode", "read", {})
    wf.add_connection("create", "id", "read", "id")
    t = time.perf_counter()
    results, run_id = LocalRuntime().execute(wf.build(), parameters={"name": "Linus", "email": "linus@example.com"})
    _t("LocalRuntime().execute(wf.build(), parameters={\"name\": \"Linus\", ...})  # UserCreateNode -> UserReadNode",
       t, f"-> {results['read']['name']} (run {run_id[:8]})")
    db.close()
    if tmp:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print(NEXT)
    return 0
