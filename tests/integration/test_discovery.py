"""Discovery of a schema written by hand in plain SQL, and models registered from it."""

from __future__ import annotations

import pytest

from dataflow import DataFlow

DDL = {
    "sqlite": [
        "CREATE TABLE {p} (id INTEGER PRIMARY KEY, code TEXT NOT NULL, label VARCHAR(40), "
        "rank INTEGER NOT NULL DEFAULT 3, UNIQUE (code))",
        "CREATE TABLE {c} (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES {p}(id), "
        "amount REAL, note TEXT DEFAULT 'n/a')",
        "CREATE INDEX {ix} ON {c} (parent_id, amount)",
    ],
    "postgresql": [
        "CREATE TABLE {p} (id BIGSERIAL PRIMARY KEY, code TEXT NOT NULL, label VARCHAR(40), "
        "rank INTEGER NOT NULL DEFAULT 3, CONSTRAINT {p}_code_key UNIQUE (code))",
        "CREATE TABLE {c} (id BIGSERIAL PRIMARY KEY, parent_id BIGINT NOT NULL REFERENCES {p}(id), "
        "amount DOUBLE PRECISION, note TEXT DEFAULT 'n/a')",
        "CREATE INDEX {ix} ON {c} (parent_id, amount)",
    ],
    "mysql": [
        "CREATE TABLE {p} (id BIGINT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(64) NOT NULL, label VARCHAR(40), "
        "`rank` INT NOT NULL DEFAULT 3, UNIQUE KEY {p}_code_key (code)) ENGINE=InnoDB",
        "CREATE TABLE {c} (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id BIGINT NOT NULL, amount DOUBLE, "
        "note VARCHAR(20) DEFAULT 'n/a', CONSTRAINT {c}_fk FOREIGN KEY (parent_id) REFERENCES {p}(id)) ENGINE=InnoDB",
        "CREATE INDEX {ix} ON {c} (parent_id, amount)",
    ],
}


@pytest.fixture
async def hand_made(backend, url, tables):
    p, c = tables("parent"), tables("child")
    ix = f"ix_{c}_pa"
    db = DataFlow(url)
    for sql in DDL[backend]:
        await db.execute_raw(sql.format(p=p, c=c, ix=ix))
    yield db, p, c, ix
    for t in (c, p):
        await db.execute_raw(f"DROP TABLE IF EXISTS {db.dialect.quote(t)}")
    await db.close_async()


async def test_discovery_matches_hand_written_sql(hand_made):
    db, p, c, ix = hand_made
    schema = await db.discover_schema_async([p, c])
    assert set(schema) == {p, c}
    par, ch = schema[p], schema[c]
    assert [col["name"] for col in par["columns"]] == ["id", "code", "label", "rank"]
    assert [col["name"] for col in ch["columns"]] == ["id", "parent_id", "amount", "note"]
    cols = {col["name"]: col for col in par["columns"] + ch["columns"]}
    assert par["primary_key"] == ["id"] and ch["primary_key"] == ["id"]
    assert cols["id"]["primary_key"] and not cols["code"]["primary_key"]
    assert cols["code"]["nullable"] is False and cols["label"]["nullable"] is True
    assert cols["rank"]["nullable"] is False and "3" in str(cols["rank"]["default"])
    assert "n/a" in str(cols["note"]["default"]) and cols["amount"]["default"] is None
    fam = db.dialect.type_family
    assert fam(cols["rank"]["type"]) == "int" and fam(cols["amount"]["type"]) == "float"
    assert fam(cols["code"]["type"]) == "text" and "40" in cols["label"]["type"]
    assert [i["columns"] for i in par["indexes"] if i["unique"]] == [["code"]]
    assert {(i["name"], tuple(i["columns"]), i["unique"]) for i in ch["indexes"]} >= {(ix, ("parent_id", "amount"), False)}
    assert [(f["columns"], f["ref_table"], f["ref_columns"]) for f in ch["foreign_keys"]] == [(["parent_id"], p, ["id"])]
    assert (await db.discover_schema_async([p]))[p] == par
    # the sync form, and the models' own schema without I/O
    assert db.discover_schema()[c] == ch
    assert db.discover_schema(use_real_inspection=False) == {}


async def test_register_schema_as_models(hand_made):
    db, p, c, ix = hand_made
    created = db.register_schema_as_models(tables=[p, c])
    assert len(created) == 2
    pname = [n for n, cls in created.items() if cls.__dataflow__["table_name"] == p][0]
    cname = [n for n, cls in created.items() if cls.__dataflow__["table_name"] == c][0]
    fields = db.get_model_fields(pname)
    assert fields["code"]["type"] == "str" and fields["label"]["nullable"] and fields["rank"]["type"] == "int"
    row = await db.express.create(pname, {"code": "a", "rank": 1})
    kid = await db.express.create(cname, {"parent_id": row["id"], "amount": 2.5, "note": "x"})
    assert (await db.express.read(cname, kid["id"]))["amount"] == 2.5
    assert [r["code"] for r in await db.express.list(pname)] == ["a"]
    assert f"{pname}CreateNode" in db.get_generated_nodes(pname) or db.get_generated_nodes(pname)
    # the hand-made constraints survive: the unique code is still enforced
    with pytest.raises(Exception):
        await db.express.create(pname, {"code": "a", "rank": 2})
    assert not db.migration_plan().destructive


def test_cli_inspect_and_migrate(tmp_path, monkeypatch, capsys):
    from dataflow.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    (tmp_path / "cli_models.py").write_text(
        "from typing import Optional\nfrom dataflow import DataFlow\n"
        "db = DataFlow('sqlite:///:memory:')\n\n@db.model\nclass Gadget:\n    name: str\n"
        "    note: Optional[str] = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["migrate", url, "--module", "cli_models", "--dry-run"]) == 0
    assert "create table" in capsys.readouterr().out
    assert main(["inspect", url]) == 0
    assert "gadgets" not in capsys.readouterr().out  # the dry run changed nothing
    assert main(["migrate", url, "--module", "cli_models"]) == 0
    assert "applied migration" in capsys.readouterr().out
    assert main(["inspect", url]) == 0
    out = capsys.readouterr().out
    assert "gadgets" in out and "note" in out
