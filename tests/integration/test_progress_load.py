"""Progress and row wording of real loads and exports on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from dataflow import errors as E


def _person(db, tables):
    @db.model
    class Person:
        __tablename__ = tables("people")
        name: str
        age: int = 0

    return Person


async def test_load_and_export_show_percent_from_file_size_and_row_count(db, tables, tmp_path, capsys):
    Person = _person(db, tables)
    src = tmp_path / "people.csv"
    src.write_text("name,age\n" + "".join(f"p{i},{i}\n" for i in range(3000)))
    rep = await db.load(Person, str(src), progress=True, batch_size=500)
    assert rep["rows"] == 3000
    err = capsys.readouterr().err
    assert "100%" in err and "B/s" in err and "3,000 rows" in err
    await db.export(Person, str(tmp_path / "out.csv"), progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and "3.00k/3.00k" in err and "rows/s" in err
    await db.load(Person, [{"name": "x"}] * 10, progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and "10/10" in err
    await db.load(Person, iter([{"name": "y"}] * 10), progress=True)
    err = capsys.readouterr().err
    assert "10 rows" in err and "%" not in err            # unknown total: a counter
    await db.load(Person, [{"name": "z"}] * 10, progress=False)
    assert capsys.readouterr().err == ""


async def test_bulk_load_errors_say_row_indexes_are_zero_based(db, tables, tmp_path):
    Person = _person(db, tables)
    src = tmp_path / "bad.csv"
    src.write_text("name,age\na,1\nb,2\nc,three\n")
    with pytest.raises(E.BulkLoadError) as ei:
        await db.load(Person, str(src), progress=False)
    assert ei.value.failed_index == 2 and "row 2 (0-based)" in str(ei.value)
    with pytest.raises(E.BulkLoadError) as ei:
        await db.express.bulk_create(Person, [{"name": "a"}, {"name": "b", "age": "x"}])
    assert ei.value.failed_index == 1 and "row 1 (0-based)" in str(ei.value)
