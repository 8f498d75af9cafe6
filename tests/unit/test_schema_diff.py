"""The schema diff on its own: models against hand-built live schemas, no database."""

from __future__ import annotations

from typing import Optional

import pytest

from dataflow.dialects import dialect_for
from dataflow.errors import ConfigurationError
from dataflow.migrations import Column, Index, TableSchema, build_plan
from dataflow.models.model import build_model

DIALECTS = ["sqlite", "postgresql", "mysql"]


def model(**opts):
    class Person:
        name: str
        age: int

    if opts:
        Person.__dataflow__ = opts
    return build_model(Person)


def live_of(m, d, drop=(), extra=()):
    """The live table DataFlow would have created for ``m`` (minus ``drop``, plus ``extra``)."""
    from dataflow.migrations.diff import desired_columns

    cols = {n: Column(n, t, f.nullable, primary_key=n == "id") for n, (f, t) in desired_columns(m, d).items()
            if n not in drop}
    for c in extra:
        cols[c.name] = c
    return {m.table: TableSchema(m.table, cols, [Index(i.name, i.fields, i.unique) for i in m.indexes])}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_missing_table_is_created(dialect):
    d = dialect_for(dialect)
    m = model()
    p = build_plan([m], {}, d)
    assert [o.action for o in p] == ["create_table"] and p.automatic and not p.destructive
    assert "CREATE TABLE" in p.operations[0].statements[0][0]
    assert p.operations[0].reverse == [d.drop_table_sql(m.table)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_up_to_date_is_empty(dialect):
    d = dialect_for(dialect)
    m = model(indexes=[{"fields": ["age"]}], unique=["name"])
    assert not build_plan([m], live_of(m, d), d)
    assert str(build_plan([m], live_of(m, d), d)) == "schema is up to date"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_additive_changes_are_automatic(dialect):
    d = dialect_for(dialect)

    class Person:
        name: str
        age: int
        email: Optional[str] = None
        score: int = 5
        __dataflow__ = {"indexes": [{"fields": ["age"]}], "unique": ["name"]}

    m = build_model(Person)
    live = live_of(m, d, drop=("email", "score"))
    live[m.table].indexes = []
    p = build_plan([m], live, d)
    assert sorted(o.action for o in p) == ["add_column", "add_column", "add_index", "add_index"]
    assert not p.destructive
    sqls = " ".join(s for o in p for s, _ in o.statements)
    assert "UNIQUE INDEX" in sqls and "email" in sqls and "score" in sqls
    assert all(o.reverse for o in p)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_required_column_without_default_is_manual(dialect):
    d = dialect_for(dialect)
    m = model()
    p = build_plan([m], live_of(m, d, drop=("age",)), d)
    assert [o.mode for o in p] == ["manual"] and "without a default" in str(p)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_removed_field_is_reported_and_relaxed(dialect):
    d = dialect_for(dialect)
    m = model()
    gone = Column("legacy", {"sqlite": "BLOB", "postgresql": "BYTEA", "mysql": "LONGBLOB"}[dialect], False)
    p = build_plan([m], live_of(m, d, extra=[gone]), d)
    modes = {o.action: o.mode for o in p}
    assert modes == {"drop_not_null": "automatic", "drop_column": "manual"}
    assert "data is kept" in str(p)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_type_change_is_manual(dialect):
    d = dialect_for(dialect)
    m = model()
    live = live_of(m, d)
    live[m.table].columns["age"] = Column("age", "TEXT", False)
    p = build_plan([m], live, d)
    assert [(o.action, o.mode) for o in p] == [("change_type", "manual")]
    if dialect == "sqlite":  # the rebuild-table procedure, with a reverse rebuild
        sql = [s for s, _ in p.operations[0].statements]
        assert sql[0].startswith('CREATE TABLE "_dataflow_new_') and sql[-1] == "PRAGMA foreign_key_check"
        assert any(s.startswith("INSERT INTO") for s in p.operations[0].reverse)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rename_needs_metadata(dialect):
    d = dialect_for(dialect)
    m_old = model()
    live = live_of(m_old, d)

    class Person:
        full_name: str
        age: int

    p = build_plan([build_model(Person)], live, d)
    assert "possible_rename" in [o.action for o in p]
    assert [o for o in p if o.action == "possible_rename"][0].mode == "refused"
    assert not any(o.action == "add_column" and o.mode == "automatic" for o in p)  # never drop + add

    Person.__dataflow__ = {"renames": {"full_name": "name"}}
    p = build_plan([build_model(Person)], live, d)
    assert [(o.action, o.mode) for o in p] == [("rename_column", "automatic")]
    assert "RENAME COLUMN" in p.operations[0].statements[0][0]

    Person.__dataflow__ = {"renames": {"full_name": None}}  # declared new: not a rename
    p = build_plan([build_model(Person)], live, d)
    assert "possible_rename" not in [o.action for o in p]


def test_bad_renames_metadata():
    class Person:
        name: str
        __dataflow__ = {"renames": {"nope": "x"}}

    m = build_model(Person)
    with pytest.raises(ConfigurationError, match="unknown field"):
        build_plan([m], {m.table: TableSchema(m.table)}, dialect_for("sqlite"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_type_families_match_rendered_types(dialect):
    d = dialect_for(dialect)
    reported = {"postgresql": {"BIGINT": "bigint", "TIMESTAMPTZ": "timestamp with time zone",
                               "DOUBLE PRECISION": "double precision", "JSONB": "jsonb", "NUMERIC": "numeric"},
                "mysql": {"BIGINT": "bigint(20)", "JSON": "longtext", "TINYINT(1)": "tinyint(1)",
                          "DATETIME(6)": "datetime(6)", "LONGTEXT": "longtext"},
                "sqlite": {"INTEGER": "INTEGER", "TEXT": "TEXT"}}[dialect]
    for rendered, live in reported.items():
        assert d.type_family(rendered) == d.type_family(live), (rendered, live)
