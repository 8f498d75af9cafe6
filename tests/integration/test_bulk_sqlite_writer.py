"""The SQLite loader's pipeline (batch k written by ``_native.sqlitebulk`` while batch k+1 is
coerced): cancellation at random moments while a batch is in flight leaves nothing and a
working connection, and when both the batch in flight and the next one fail, the earlier row
is the one reported."""

from __future__ import annotations

import asyncio
import random

import pytest

from dataflow.errors import BulkLoadError

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _model(db, tables):
    @db.model
    class Row:
        __tablename__ = tables("pipe")
        code: str
        n: int
        __dataflow__ = {"unique": ["code"]}
    return Row


async def test_cancel_while_a_batch_is_being_written(db, tables):
    Row = _model(db, tables)
    rows = [{"code": f"c{i}", "n": i} for i in range(60_000)]
    rnd = random.Random(7)
    cancelled = 0
    for _ in range(12):
        task = asyncio.ensure_future(db.load(Row, rows, batch_size=3_000, progress=False))
        await asyncio.sleep(rnd.uniform(0.0, 0.08))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        else:   # finished before the cancel landed: undo it for the next round
            await db.execute_raw(f"DELETE FROM {db.dialect.quote(Row.__tablename__)}")
        assert await db.express.count(Row) == 0
        assert await db.execute_raw("SELECT 1") == [(1,)]
    assert cancelled >= 6
    rep = await db.load(Row, rows, batch_size=3_000, progress=False)
    assert rep["inserted"] == 60_000 and await db.express.count(Row) == 60_000


async def test_earlier_failure_in_flight_wins_over_a_later_coercion_error(db, tables):
    Row = _model(db, tables)
    await db.express.create(Row, {"code": "taken", "n": 0})
    rows = [{"code": f"c{i}", "n": i} for i in range(20)]
    rows[3]["code"] = "taken"        # batch 0: fails in the writer (unique)
    rows[7]["n"] = "not a number"    # batch 1: fails while batch 0 is in flight
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Row, rows, batch_size=5, progress=False)
    assert ei.value.failed_index == 3 and "UNIQUE" in str(ei.value)
    assert await db.express.count(Row) == 1
    rows[3]["code"] = "free"
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Row, rows, batch_size=5, progress=False)
    assert ei.value.failed_index == 7
    assert await db.express.count(Row) == 1


async def test_cancel_around_begin_never_leaves_a_transaction_open(db, tables):
    """The BEGIN runs in aiosqlite's thread even when its caller is cancelled: it must be undone
    before the connection is handed on (else the next BEGIN fails)."""
    Row = _model(db, tables)
    await db.express.count(Row)   # table created

    async def one(i):
        async with db.transaction():
            await db.express.create(Row, {"code": f"k{i}", "n": i})

    for i in range(200):
        task = asyncio.ensure_future(one(i))
        for _ in range(i % 6):        # cancel at a different step each time
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        async with db.transaction():      # would raise if a BEGIN had leaked
            await db.express.count(Row)
    assert await db.execute_raw("SELECT 1") == [(1,)]
