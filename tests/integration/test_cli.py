"""The command line, in-process (``dataflow.cli.main``) and as a subprocess (exit codes):
``--module`` read the same way by every command, ``inspect`` of a missing SQLite file, ``migrate``
exit status, examples in every ``--help``, and ``load --table`` without a Python module."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflow import DataFlow
from dataflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("dataflow")


def _cli(*args, cwd):
    """The installed ``dataflow`` console script (its sys.path[0] is the venv's bin, not cwd),
    running this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [str(SCRIPT), *args] if SCRIPT.exists() else [sys.executable, "-c",
                                                         "import sys; from dataflow.cli import main; "
                                                         "sys.path.pop(0); sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _drop(url, *names):
    async def drop():
        d = DataFlow(url)
        for n in names:
            await d.execute_raw(f"DROP TABLE IF EXISTS {d.dialect.quote(n)}")
        await d.close_async()
    asyncio.run(drop())


@pytest.mark.parametrize("cmd", ["info", "demo", "load", "export", "inspect", "migrate", None])
def test_every_help_has_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as ei:
        main([cmd, "--help"] if cmd else ["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"dataflow {cmd or ''}".strip() in out.split("example", 1)[1]


def test_inspect_missing_sqlite_file_is_an_error_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "sqlite:///typo.db"]) == 1
    assert "typo.db" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()
    res = _cli("inspect", "sqlite:///typo.db", cwd=tmp_path)
    assert res.returncode == 1 and "no database file" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "typo.db").exists()


def _write_module(path: Path, name: str, table: str, age_type: str = "int"):
    path.write_text(f"def define(db):\n    @db.model\n    class Person:\n        __tablename__ = {table!r}\n"
                    f"        name: str\n        age: {age_type} = {'0' if age_type == 'int' else repr('0')}\n")


def test_migrate_reads_define_module_from_current_directory(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/app.db"
    _write_module(tmp_path / "cli_mig_define.py", "cli_mig_define", "people")
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", url, "--module", "cli_mig_define"]) == 0
    assert "applied migration" in capsys.readouterr().out
    # the console script, whose sys.path does not hold the current directory by itself
    _write_module(tmp_path / "cli_mig_define2.py", "cli_mig_define2", "people2")
    res = _cli("migrate", url, "--module", "cli_mig_define2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = _cli("inspect", url, cwd=tmp_path)
    assert res.returncode == 0 and "people2" in res.stdout
    res = _cli("migrate", url, "--module", "no_such_module_here", cwd=tmp_path)
    assert res.returncode == 1 and "no_such_module_here" in res.stderr and "Traceback" not in res.stderr


def test_migrate_exits_nonzero_when_a_change_is_not_applied(url, tables, tmp_path, monkeypatch, capsys):
    table = tables("cli_mig")
    monkeypatch.chdir(tmp_path)
    mod = f"cli_mig_{table}"
    _write_module(tmp_path / f"{mod}.py", mod, table, "int")
    try:
        assert main(["migrate", url, "--module", mod]) == 0
        mod2 = mod + "_b"
        _write_module(tmp_path / f"{mod2}.py", mod2, table, "str")   # a type change: destructive
        capsys.readouterr()
        assert main(["migrate", url, "--module", mod2, "--dry-run"]) == 0
        assert main(["migrate", url, "--module", mod2]) == 1
        assert "not applied" in capsys.readouterr().err
        if url.startswith("sqlite"):
            res = _cli("migrate", url, "--module", mod2, cwd=tmp_path)
            assert res.returncode == 1 and "--allow-destructive" in res.stderr
        assert main(["migrate", url, "--module", mod2, "--allow-destructive"]) == 0
    finally:
        _drop(url, table)


def test_load_csv_into_an_existing_table_without_a_module(url, tables, tmp_path, monkeypatch, capsys):
    table = tables("cli_tbl")

    async def make():
        d = DataFlow(url)

        @d.model
        class Person:
            __tablename__ = table
            name: str
            age: int = 0

        await d.express.create(Person, {"name": "first", "age": 1})
        await d.close_async()

    asyncio.run(make())
    src = tmp_path / "people.csv"
    src.write_text("name,age\n" + "".join(f"p{i},{i}\n" for i in range(250)))
    try:
        assert main(["load", url, str(src), "--table", table, "-q"]) == 0
        assert "loaded 250 rows" in capsys.readouterr().out

        d = DataFlow(url, auto_migrate=False)
        models = d.register_schema_as_models(tables=[table])
        assert d.express_sync.count(next(iter(models))) == 251
        d.close()
        assert main(["load", url, str(src), "--table", table + "_nope", "-q"]) == 1
        err = capsys.readouterr().err
        assert table + "_nope" in err and table in err.replace(table + "_nope", "")
    finally:
        _drop(url, table)


def test_load_table_refusals(tmp_path, monkeypatch, capsys):
    import sqlite3
    db_path = tmp_path / "plain.db"
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    con.commit()
    con.close()
    src = tmp_path / "x.csv"
    src.write_text("name\na\n")
    url = f"sqlite:///{db_path}"
    assert main(["load", url, str(src), "--table", "plain", "-q"]) == 1
    assert "created_at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["load", url, str(src)])           # neither --module nor --table
    res = _cli("load", f"sqlite:///{tmp_path}/missing.db", str(src), "--table", "plain", cwd=tmp_path)
    assert res.returncode == 1 and not (tmp_path / "missing.db").exists()
