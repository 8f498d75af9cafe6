"""db.load / db.export / bulk nodes on every real backend: equality per column type, failure
semantics (atomic, atomic=False, source raising, cancellation, timeout, user transaction),
conflict modes, sources, the CLI and the 1,000,000-row poison-row load on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import random
import uuid
from decimal import Decimal

import pytest

from dataflow import DataFlow
from dataflow.errors import BulkLoadError

UTC = dt.timezone.utc


def _models(db, tables):
    @db.model
    class Item:
        __tablename__ = tables("item")
        name: str
        qty: int = 0
        price: float | None = None
        ok: bool = False
        blob: bytes | None = None
        at: dt.datetime | None = None
        day: dt.date | None = None
        amount: Decimal | None = None
        ref: uuid.UUID | None = None
        meta: dict | None = None
        __dataflow__ = {"unique": ["name"]}
    return Item


def _rows(n, seed=1):
    r = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"name": f"n{i}-é'\"\\\t,x", "qty": r.randint(-2**40, 2**40), "price": r.random() * 1e6,
                    "ok": bool(i % 2), "blob": bytes(r.randrange(256) for _ in range(8)) + b"\t\n\\\x00",
                    "at": dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=i, microseconds=i),
                    "day": dt.date(2020, 1, 1) + dt.timedelta(days=i), "amount": Decimal(f"{i}.{i:04d}"),
                    "ref": uuid.UUID(int=i + 1), "meta": {"i": i, "s": "x\ty", "l": [1, None, "z"]}})
    out.append({"name": "nulls"})
    return out


def _norm(row):
    return {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")}


async def _all(db, model):
    return await db.express.list(model, limit=1_000_000, order_by="id")


async def test_load_equals_source_every_type(db, tables):
    Item = _models(db, tables)
    src = _rows(300)
    rep = await db.load(Item, src, progress=False)
    assert rep["rows"] == len(src) and rep["inserted"] == len(src)
    assert rep["path"] in ("copy", "insert", "load_data")
    assert set(rep) >= {"rows", "seconds", "rows_per_second", "skipped", "path"}
    got = [_norm(r) for r in await _all(db, Item)]
    want = []
    defaults = {"qty": 0, "price": None, "ok": False, "blob": None, "at": None, "day": None, "amount": None,
                "ref": None, "meta": None}
    for r in src:
        want.append({**defaults, **r})
    assert got == want


async def test_load_tuples_columns_and_numpy_columns(db, tables):
    Item = _models(db, tables)
    await db.load(Item, [("a", 1), ("b", 2)], columns=["name", "qty"], progress=False)
    np = pytest.importorskip("numpy")
    arr = np.array([("c", 3, 1.5), ("d", 4, 2.5)], dtype=[("name", "U5"), ("qty", "i8"), ("price", "f8")])
    await db.load(Item, arr, progress=False)
    await db.load(Item, {"name": ["e"], "qty": [5]}, progress=False)
    got = [(r["name"], r["qty"], r["price"]) for r in await _all(db, Item)]
    assert got == [("a", 1, None), ("b", 2, None), ("c", 3, 1.5), ("d", 4, 2.5), ("e", 5, None)]


async def test_async_iterable_and_transform(db, tables):
    Item = _models(db, tables)

    async def gen():
        for i in range(2500):
            yield {"name": f"a{i}", "qty": str(i)}
    rep = await db.load(Item, gen(), transform=lambda r: {**r, "qty": int(r["qty"])}, batch_size=1000,
                        progress=False)
    assert rep["rows"] == 2500
    assert await db.express.count(Item) == 2500


@pytest.mark.parametrize("where", [0, 777, 2999])
async def test_atomic_bad_value_leaves_nothing(db, tables, where):
    Item = _models(db, tables)
    src = [{"name": f"r{i}", "qty": i} for i in range(3000)]
    src[where]["qty"] = "seven"
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, batch_size=500, progress=False)
    assert ei.value.failed_index == where and ei.value.rows_written == 0
    assert "qty" in str(ei.value) and str(where) in str(ei.value)
    assert await db.express.count(Item) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]


async def test_atomic_constraint_violation_reports_index(db, tables):
    Item = _models(db, tables)
    src = [{"name": f"r{i}"} for i in range(2000)]
    src[1234]["name"] = "r5"   # unique violation found by the server
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, batch_size=500, progress=False)
    assert ei.value.failed_index == 1234
    assert await db.express.count(Item) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]


async def test_unknown_field_rejected_with_index(db, tables):
    Item = _models(db, tables)
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, [{"name": "a"}, {"name": "b", "nope": 1}], progress=False)
    assert ei.value.failed_index == 1 and "nope" in str(ei.value)
    assert await db.express.count(Item) == 0


async def test_source_raising_leaves_nothing(db, tables):
    Item = _models(db, tables)

    def gen():
        for i in range(5000):
            if i == 4321:
                raise RuntimeError("disk on fire")
            yield {"name": f"x{i}"}
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, gen(), batch_size=1000, progress=False)
    assert ei.value.failed_index == 4321 and "disk on fire" in str(ei.value)
    assert await db.express.count(Item) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]


async def test_cancellation_and_timeout_leave_nothing(db, tables):
    Item = _models(db, tables)

    async def slow():
        for i in range(100_000):
            if i % 1000 == 999:
                await asyncio.sleep(0.01)
            yield {"name": f"s{i}"}
    task = asyncio.ensure_future(db.load(Item, slow(), batch_size=500, progress=False))
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.express.count(Item) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, slow(), batch_size=500, timeout=0.15, progress=False)
    assert isinstance(ei.value.cause, TimeoutError) and ei.value.failed_index is not None
    assert await db.express.count(Item) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]


async def test_non_atomic_reports_rows_written(db, tables):
    Item = _models(db, tables)
    src = [{"name": f"r{i}", "qty": i} for i in range(1000)]
    src[730]["qty"] = 1.5
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, batch_size=100, atomic=False, progress=False)
    assert ei.value.failed_index == 730 and ei.value.rows_written == 700
    assert await db.express.count(Item) == 700


async def test_inside_user_transaction_rolls_back(db, tables):
    Item = _models(db, tables)
    await db.initialize()
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.express.create(Item, {"name": "before"})
            await db.load(Item, [{"name": f"t{i}"} for i in range(100)], progress=False)
            assert await db.express.count(Item) == 101
            raise RuntimeError("boom")
    assert await db.express.count(Item) == 0
    # a failing load inside the transaction is undone by its savepoint; the transaction goes on
    async with db.transaction():
        await db.express.create(Item, {"name": "kept"})
        with pytest.raises(BulkLoadError):
            await db.load(Item, [{"name": "u1"}, {"name": "kept"}], progress=False)
        await db.express.create(Item, {"name": "also"})
    assert sorted(r["name"] for r in await _all(db, Item)) == ["also", "kept"]


async def test_conflict_skip_and_update(db, tables):
    Item = _models(db, tables)
    await db.load(Item, [{"name": f"k{i}", "qty": i} for i in range(10)], progress=False)
    first = {r["name"]: r for r in await _all(db, Item)}
    rep = await db.load(Item, [{"name": f"k{i}", "qty": 100 + i} for i in range(5, 15)],
                        conflict_resolution="skip", conflict_on="name", progress=False)
    assert (rep["inserted"], rep["skipped"]) == (5, 5)
    assert {r["name"]: r["qty"] for r in await _all(db, Item)}["k5"] == 5
    rep = await db.load(Item, [{"name": f"k{i}", "qty": 1000 + i} for i in range(12, 20)],
                        conflict_resolution="update", conflict_on="name", progress=False)
    assert (rep["inserted"], rep["updated"]) == (5, 3)
    rows = {r["name"]: r for r in await _all(db, Item)}
    assert rows["k12"]["qty"] == 1012 and len(rows) == 20
    assert rows["k5"]["created_at"] == first["k5"]["created_at"]


async def test_bulk_nodes_semantics(db, tables):
    Item = _models(db, tables)
    res = await db.express.bulk_create(Item, [{"name": "a", "qty": 1}, {"name": "b", "price": 2.0}])
    assert res["inserted"] == 2 and res["success"]
    rows = await _all(db, Item)
    assert (rows[1]["price"], rows[0]["qty"]) == (2.0, 1)
    res = await db.express.bulk_create(Item, [{"name": "a"}, {"name": "c"}], conflict_resolution="skip",
                                       conflict_on="name")
    assert (res["inserted"], res["skipped"]) == (1, 1)
    res = await db.express.bulk_upsert(Item, [{"name": "a", "qty": 9}, {"name": "d"}], conflict_on="name")
    assert (res["inserted"], res["updated"]) == (1, 1)
    with pytest.raises(BulkLoadError) as ei:
        await db.express.bulk_create(Item, [{"name": "z"}, {"name": "y", "bogus": 1}])
    assert ei.value.failed_index == 1
    from dataflow.workflow import WorkflowBuilder  # noqa: F401  (nodes exist and run the same op)


async def test_files_csv_tsv_jsonl_gz_and_export_round_trip(db, tables, tmp_path):
    Item = _models(db, tables)
    src = _rows(50)
    await db.load(Item, src, progress=False)
    before = [_norm(r) for r in await _all(db, Item)]
    for name in ("out.csv", "out.tsv", "out.jsonl", "out.jsonl.gz", "out.csv.gz"):
        path = tmp_path / name
        rep = await db.export(Item, str(path), progress=False)
        assert rep["rows"] == len(src)
        await db.execute_raw(f"DELETE FROM {db.dialect.quote(Item.__dataflow_model__.table)}")
        rep = await db.load(Item, str(path), progress=False)
        assert rep["rows"] == len(src), name
        assert [_norm(r) for r in await _all(db, Item)] == before, name


async def test_parquet_round_trip(db, tables, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    Item = _models(db, tables)
    await db.load(Item, [{"name": f"p{i}", "qty": i, "price": i / 2} for i in range(100)], progress=False)
    path = tmp_path / "o.parquet"
    assert (await db.export(Item, str(path), fields=["name", "qty", "price"], progress=False))["rows"] == 100
    tbl = pq.read_table(str(path))
    await db.execute_raw(f"DELETE FROM {db.dialect.quote(Item.__dataflow_model__.table)}")
    await db.load(Item, tbl, progress=False)
    got = [(r["name"], r["qty"], r["price"]) for r in await _all(db, Item)]
    assert got == [(f"p{i}", i, i / 2) for i in range(100)]


async def test_pandas_dataframe(db, tables):
    pd = pytest.importorskip("pandas")
    Item = _models(db, tables)
    df = pd.DataFrame({"name": ["a", "b"], "qty": [1, 2], "at": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)})
    await db.load(Item, df, progress=False)
    got = [(r["name"], r["qty"], r["at"]) for r in await _all(db, Item)]
    assert got == [("a", 1, dt.datetime(2024, 1, 1, tzinfo=UTC)), ("b", 2, dt.datetime(2024, 1, 2, tzinfo=UTC))]


async def test_csv_parse_error_names_row_and_column(db, tables, tmp_path):
    Item = _models(db, tables)
    p = tmp_path / "bad.csv"
    p.write_text("name,qty\na,1\nb,two\n")
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, str(p), progress=False)
    assert ei.value.failed_index == 1 and "qty" in str(ei.value) and "two" in str(ei.value)


def test_cli_load_and_export(url, tables, tmp_path, monkeypatch, capsys):
    from dataflow.cli import main
    table = tables("cli")
    mod = tmp_path / "cli_models_mod.py"
    mod.write_text(f"def define(db):\n    @db.model\n    class Person:\n        __tablename__ = {table!r}\n"
                   f"        name: str\n        age: int = 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = tmp_path / "people.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        for i in range(1234):
            fh.write(json.dumps({"name": f"p{i}", "age": i}) + "\n")
    try:
        assert main(["load", url, "Person", str(src), "--module", "cli_models_mod", "--batch-size", "100", "-q"]) == 0
        assert "loaded 1,234 rows" in capsys.readouterr().out
        out = tmp_path / "people.csv"
        assert main(["export", url, "Person", str(out), "--module", "cli_models_mod", "-q"]) == 0
        lines = out.read_text().splitlines()
        assert lines[0] == "id,name,age" and len(lines) == 1235
    finally:
        async def drop():
            d = DataFlow(url)
            await d.execute_raw(f"DROP TABLE IF EXISTS {d.dialect.quote(table)}")
            await d.close_async()
        asyncio.run(drop())


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_million_rows_with_poison_row_postgresql(db, tables):
    @db.model
    class Big:
        __tablename__ = tables("big")
        name: str
        n: int
        x: float
    n = 1_000_000
    poison = random.Random().randrange(n)

    def gen():
        for i in range(n):
            yield (f"row{i}", i if i != poison else "poison", i * 0.5)
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Big, gen(), progress=False)
    assert ei.value.failed_index == poison, (ei.value, poison)
    assert await db.express.count(Big) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]
    # and a constraint violation found by the server, at a random row, is located exactly
    poison2 = random.Random().randrange(1, n)

    def gen2():
        for i in range(n):
            yield (f"row{i}", i, None if i == poison2 else 1.0)
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Big, gen2(), progress=False)
    assert ei.value.failed_index == poison2
    assert await db.express.count(Big) == 0
    assert await db.execute_raw("SELECT 1") == [(1,)]
