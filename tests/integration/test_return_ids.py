"""``return_ids=True`` on the bulk writes, every backend: each record's id, in input order, for
auto ids (several statements, heterogeneous records), carried ids, skip and update upserts,
``atomic=False``, MySQL's one-row fallback under ``innodb_autoinc_lock_mode=2`` -- checked
against what the table really holds."""

from __future__ import annotations

import pytest

from dataflow.errors import BulkLoadError, ValidationError
from dataflow.bulk import ids as bulk_ids


def _model(db, tables):
    @db.model
    class Gadget:
        __tablename__ = tables("gadget")
        code: str
        name: str
        size: int | None = None
        __dataflow__ = {"unique": ["code"]}
    return Gadget


async def _by_id(db):
    return {r["id"]: r for r in await db.express.list("Gadget", limit=100_000)}


def _records(n, prefix="c"):
    # every third record leaves `size` out: two column groups, interleaved in input order
    return [{"code": f"{prefix}{i}", "name": f"n{i}", **({"size": i} if i % 3 else {})} for i in range(n)]


async def test_auto_ids_follow_input_order_across_groups_and_batches(db, tables):
    _model(db, tables)
    recs = _records(257)
    res = await db.express.bulk_create("Gadget", recs, return_ids=True, batch_size=50)
    ids = res["ids"]
    assert res["inserted"] == 257 and len(ids) == 257 and len(set(ids)) == 257
    rows = await _by_id(db)
    assert [rows[i]["code"] for i in ids] == [r["code"] for r in recs]


async def test_carried_ids_are_echoed(db, tables):
    _model(db, tables)
    recs = [{"id": 1000 + 7 * i, "code": f"x{i}", "name": "n"} for i in range(20)]
    res = await db.express.bulk_create("Gadget", recs, return_ids=True)
    assert res["ids"] == [r["id"] for r in recs]
    rows = await _by_id(db)
    assert sorted(rows) == sorted(res["ids"])


async def test_skip_returns_the_existing_row_for_skipped_records(db, tables):
    _model(db, tables)
    first = await db.express.bulk_create("Gadget", _records(10), return_ids=True)
    mixed = [{"code": "c3", "name": "dup"}, {"code": "new1", "name": "a"}, {"code": "c7", "name": "dup"},
             {"code": "new2", "name": "b", "size": 5}]
    res = await db.express.bulk_create("Gadget", mixed, return_ids=True, conflict_resolution="skip",
                                       conflict_on=["code"])
    assert res["inserted"] == 2 and res["skipped"] == 2
    ids = res["ids"]
    assert ids[0] == first["ids"][3] and ids[2] == first["ids"][7]
    rows = await _by_id(db)
    assert [rows[i]["code"] for i in ids] == [r["code"] for r in mixed]
    assert rows[ids[0]]["name"] == "n3"          # skipped: untouched


async def test_update_upsert_returns_ids_of_updated_and_inserted(db, tables):
    _model(db, tables)
    first = await db.express.bulk_create("Gadget", _records(5), return_ids=True)
    res = await db.express.bulk_create("Gadget", [{"code": "c1", "name": "upd"}, {"code": "z", "name": "ins"}],
                                       return_ids=True, conflict_resolution="update", conflict_on=["code"])
    assert res["ids"][0] == first["ids"][1]
    rows = await _by_id(db)
    assert rows[res["ids"][0]]["name"] == "upd" and rows[res["ids"][1]]["code"] == "z"


async def test_upsert_on_id_without_ids_is_a_plain_insert(db, tables):
    _model(db, tables)
    res = await db.express.bulk_create("Gadget", _records(12), return_ids=True, conflict_resolution="update")
    assert res["inserted"] == 12
    rows = await _by_id(db)
    assert [rows[i]["code"] for i in res["ids"]] == [f"c{i}" for i in range(12)]


async def test_non_atomic_return_ids(db, tables):
    _model(db, tables)
    res = await db.express.bulk_create("Gadget", _records(40), return_ids=True, atomic=False, batch_size=7)
    rows = await _by_id(db)
    assert [rows[i]["code"] for i in res["ids"]] == [f"c{i}" for i in range(40)]


async def test_skip_without_key_is_refused(db, tables):
    _model(db, tables)
    with pytest.raises(ValidationError, match="needs conflict_on"):
        await db.express.bulk_create("Gadget", _records(3), return_ids=True, conflict_resolution="skip")
    assert await db.express.count("Gadget") == 0


async def test_failure_with_return_ids_names_the_row_and_writes_nothing(db, tables):
    _model(db, tables)
    recs = _records(30)
    recs[17]["code"] = "c4"        # duplicate of row 4
    with pytest.raises(BulkLoadError) as ei:
        await db.express.bulk_create("Gadget", recs, return_ids=True, batch_size=10)
    assert ei.value.failed_index == 17
    assert await db.express.count("Gadget") == 0


@pytest.mark.parametrize("backend", ["mysql"])   # innodb_autoinc_lock_mode is MySQL/MariaDB's
async def test_mysql_interleaved_lock_mode_inserts_one_row_at_a_time(db, tables, backend, monkeypatch):
    _model(db, tables)
    await db.express.bulk_create("Gadget", _records(3, "pre"), return_ids=True)
    calls = []
    orig = bulk_ids.IdCollector._autoinc

    async def mode2(self, drv):
        step, _ = await orig(self, drv)
        calls.append(step)
        return step, 2
    monkeypatch.setattr(bulk_ids.IdCollector, "_autoinc", mode2)
    res = await db.express.bulk_create("Gadget", _records(25), return_ids=True, batch_size=10)
    assert calls
    rows = await _by_id(db)
    assert [rows[i]["code"] for i in res["ids"]] == [f"c{i}" for i in range(25)]
