"""A load in ``update`` mode that repeats a conflict key, on SQLite and MariaDB: rows apply in
source order, so the last one wins, and the report counts the first as inserted and the repeat
as updated.  (PostgreSQL refuses such a load: tests/integration/test_bulk_load_conflicts.py.)"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "mysql"])


def _model(db, tables):
    @db.model
    class RepKey:
        __tablename__ = tables("repkey")
        code: str
        name: str
        __dataflow__ = {"unique": ["code"]}
    return RepKey


@pytest.mark.parametrize("atomic", [True, False])
async def test_last_row_wins(db, tables, atomic):
    _model(db, tables)
    await db.express.create("RepKey", {"code": "old", "name": "before"})
    rows = [{"code": "a", "name": "first"}, {"code": "old", "name": "o1"}, {"code": "b", "name": "x"},
            {"code": "a", "name": "last"}, {"code": "old", "name": "o2"}]
    rep = await db.load("RepKey", rows, conflict_resolution="update", conflict_on=["code"], atomic=atomic,
                        batch_size=2, progress=False)
    assert (rep["inserted"], rep["updated"]) == (2, 3)
    got = {r["code"]: r["name"] for r in await db.express.list("RepKey")}
    assert got == {"a": "last", "old": "o2", "b": "x"}
