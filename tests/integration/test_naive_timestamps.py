"""Existing tables whose timestamp columns have no time zone (as the well-known project and many
other tools create them): every write and filter works with DataFlow's aware datetimes, and
values read back as aware UTC datetimes equal to what was written -- next to tables whose
columns do carry a time zone, on every dialect."""

from __future__ import annotations

import datetime as dt

import pytest

from dataflow import DataFlow

#: per dialect: (naive column type, zone-aware column type)
TYPES = {"postgresql": ("TIMESTAMP", "TIMESTAMPTZ"), "mysql": ("DATETIME(6)", "TIMESTAMP(6)"),
         "sqlite": ("TEXT", "TEXT")}


@pytest.mark.parametrize("which", [0, 1], ids=["without-time-zone", "with-time-zone"])
async def test_existing_table_round_trips(url, backend, tables, which):
    typ = TYPES[backend][which]
    table = tables("naive_ev")
    setup = DataFlow(url)
    q = setup.dialect.quote
    idcol = {"postgresql": "BIGSERIAL PRIMARY KEY", "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
             "sqlite": "INTEGER PRIMARY KEY"}[backend]
    null = " NULL" if backend == "mysql" else ""
    await setup.execute_raw(f"CREATE TABLE {q(table)} ({q('id')} {idcol}, {q('title')} TEXT NOT NULL, "
                            f"{q('happened')} {typ}{null}, {q('created_at')} {typ}{null}, {q('updated_at')} {typ}{null})")
    await setup.close_async()
    db = DataFlow(url, existing_schema_mode=True, auto_migrate=False)

    @db.model
    class Ev:
        title: str
        happened: dt.datetime | None = None
        __tablename__ = table
    try:
        ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
        when = dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=ist)
        row = await db.express.create(Ev, {"title": "a", "happened": when})
        got = await db.express.read(Ev, row["id"])
        assert got["happened"] == when and got["happened"].utcoffset() == dt.timedelta(0)
        assert got["created_at"].tzinfo is not None
        later = when + dt.timedelta(hours=1)
        upd = await db.express.update(Ev, row["id"], {"happened": later})
        assert upd["happened"] == later
        assert [r["id"] for r in await db.express.list(Ev, {"happened": {"$gt": when}})] == [row["id"]]
        assert await db.express.count(Ev, {"happened": later}) == 1
        await db.express.bulk_create(Ev, [{"title": f"b{i}", "happened": when + dt.timedelta(days=i)} for i in range(5)])
        await db.load(Ev, [{"title": f"l{i}", "happened": when} for i in range(5)], progress=False)
        assert await db.express.count(Ev, {"happened": {"$gte": when}}) == 11
        res = await db.express.bulk_upsert(Ev, [{"id": row["id"], "title": "a2"}], conflict_on="id")
        assert res["updated"] == 1
        assert (await db.express.read(Ev, row["id"]))["happened"] == later     # untouched by the upsert
    finally:
        await db.execute_raw(f"DROP TABLE IF EXISTS {q(table)}")
        await db.close_async()
