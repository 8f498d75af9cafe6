"""The statement layer renders each operation's statement for each dialect (no I/O), and every
predicate goes through the one ``where``: scopes are ANDed outside the caller's filter, so an
``$or`` cannot escape them, and their parameters are numbered after the filter's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow.dialects import dialect_for
from dataflow.errors import FilterError
from dataflow.models.model import build_model
from dataflow.statements import ModelStatements, Pred, Scope


class Note:
    title: str
    n: int = 0
    __dataflow__ = {"soft_delete": True, "unique": ["title"]}


class Plain:
    title: str
    n: int = 0


NOTE, PLAIN = build_model(Note), build_model(Plain)
COLS = '"id", "title", "n", "created_at", "updated_at", "deleted_at"'


def sts(model=NOTE, dialect="postgresql"):
    return ModelStatements(dialect_for(dialect), model)


# -- every operation on PostgreSQL, exactly ------------------------------------------------------------
PG = {
    "select": (lambda s: s.select({"$or": [{"n": 1}, {"title": "x"}]}, ("id", "title"), [("n", True), ("id", False)], 10, 5),
               ('SELECT "id", "title" FROM "notes" WHERE ((("n" = $1) OR ("title" = $2))) AND "deleted_at" IS NULL '
                'ORDER BY "n" DESC, "id" ASC LIMIT 10 OFFSET 5', [1, "x"])),
    "count": (lambda s: s.count({"n": {"$gt": 2}}),
              ('SELECT COUNT(*) FROM "notes" WHERE ("n" > $1) AND "deleted_at" IS NULL', [2])),
    "read": (lambda s: s.read_by_id(7),
             (f'SELECT {COLS} FROM "notes" WHERE ("id" = $1) AND "deleted_at" IS NULL', [7])),
    "read_deleted": (lambda s: s.read_by_id(7, include_deleted=True),
                     (f'SELECT {COLS} FROM "notes" WHERE "id" = $1', [7])),
    "update": (lambda s: s.update_by_id(("title", "updated_at"), 7, returning=True),
               ('UPDATE "notes" SET "title" = $1, "updated_at" = $2 WHERE ("id" = $3) AND "deleted_at" IS NULL '
                f'RETURNING {COLS}', [7])),
    "update_where": (lambda s: s.update_where(("n", "updated_at"), {"title": "x"}),
                     ('UPDATE "notes" SET "n" = $1, "updated_at" = $2 WHERE ("title" = $3) AND "deleted_at" IS NULL',
                      ["x"])),
    "delete (soft)": (lambda s: s.delete_by_id(7),
                      ('UPDATE "notes" SET "deleted_at" = $1, "updated_at" = $2 WHERE ("id" = $3) AND '
                       '"deleted_at" IS NULL', [7])),
    "delete_where (soft)": (lambda s: s.delete_where({"n": 3}),
                            ('UPDATE "notes" SET "deleted_at" = $1, "updated_at" = $2 WHERE ("n" = $3) AND '
                             '"deleted_at" IS NULL', [3])),
    "upsert lock": (lambda s: s.lock_matching({"title": "x"}),
                    ('SELECT "id" FROM "notes" WHERE ("title" = $1) AND "deleted_at" IS NULL FOR UPDATE', ["x"])),
    "return_ids lookup": (lambda s: s.ids_by_keys(["title"], [("a",), ("b",)]),
                          ('SELECT "id", "title" FROM "notes" WHERE "title" IN ($1, $2)', ["a", "b"])),
    "insert": (lambda s: s.insert(("title", "n"), 2),
               'INSERT INTO "notes" ("title", "n") VALUES ($1, $2), ($3, $4)'),
    "upsert rows": (lambda s: s.upsert(("id", "title", "n"), ["title"], ["n", "updated_at"], 1, return_created=True),
                    'INSERT INTO "notes" ("id", "title", "n") VALUES ($1, $2, $3) ON CONFLICT ("title") DO UPDATE SET '
                    '"n" = EXCLUDED."n", "updated_at" = EXCLUDED."updated_at" RETURNING "created_at"'),
    "vector candidates": (lambda s: s.vector_candidates("title", {"n": 1}),
                          ('SELECT "id", "title" FROM "notes" WHERE "title" IS NOT NULL AND (("n" = $1) AND '
                           '"deleted_at" IS NULL) ORDER BY "id"', [1])),
    "vector second fetch": (lambda s: s.rows_by_ids([1, 2]),
                            (f'SELECT {COLS} FROM "notes" WHERE ("id" IN ($1, $2)) AND "deleted_at" IS NULL', [1, 2])),
    "pgvector nearest": (lambda s: s.vector_nearest("title", "cosine", 5, {"n": 1}),
                         (f'SELECT {COLS}, "title" <=> $1 FROM "notes" WHERE "title" IS NOT NULL AND (("n" = $2) AND '
                          '"deleted_at" IS NULL) ORDER BY "title" <=> $1 LIMIT 5', [1])),
    "count for loads": (lambda s: s.count_all(), ('SELECT COUNT(*) FROM "notes"', [])),
    "stage merge": (lambda s: s.stage_merge("stg", ("title", "n"), ["title"], ["n"]),
                    'WITH ins AS (INSERT INTO "notes" ("title", "n") SELECT "title", "n" FROM "stg" ON CONFLICT '
                    '("title") DO UPDATE SET "n" = EXCLUDED."n" RETURNING (xmax = 0) AS fresh) '
                    'SELECT count(*) FILTER (WHERE fresh), count(*) FROM ins'),
}


@pytest.mark.parametrize("op", list(PG))
def test_postgresql_statement(op):
    build, expected = PG[op]
    assert build(sts()) == expected


@pytest.mark.parametrize("dialect,quote,ph", [("mysql", "`", "%s"), ("sqlite", '"', "?")])
@pytest.mark.parametrize("op", [k for k in PG if k not in ("pgvector nearest", "stage merge")])
def test_other_dialects_differ_only_in_quoting_placeholders_and_dialect_data(op, dialect, quote, ph):
    """The same statements, with the dialect's quote character and placeholders; the dialect's
    own differences (no RETURNING on MySQL UPDATE, no FOR UPDATE on SQLite, the upsert syntax)
    come from its class."""
    import re
    build, expected = PG[op]
    got = build(sts(dialect=dialect))
    text = expected[0] if isinstance(expected, tuple) else expected
    text = re.sub(r"\$\d+", ph, text).replace('"', quote)
    if dialect == "sqlite":
        text = text.replace(" FOR UPDATE", "").replace("EXCLUDED.", "excluded.")
    if dialect == "mysql":
        text = re.sub(r" ON CONFLICT \(`title`\) DO UPDATE SET (.*?)( RETURNING|$)",
                      lambda m: " ON DUPLICATE KEY UPDATE " + re.sub(r"EXCLUDED\.(`\w+`)", r"VALUES(\1)", m.group(1))
                      + m.group(2), text)
    if op == "update" and dialect == "mysql":
        text = text.split(" RETURNING")[0]      # MySQL has no UPDATE ... RETURNING: no returning asked
        got = build_no_returning = sts(dialect=dialect).update_by_id(("title", "updated_at"), 7)
        assert build_no_returning[0] == text
        return
    if op == "upsert rows" and dialect == "mysql":
        text = text.replace(' RETURNING `created_at`', "") + " RETURNING `created_at`"
    assert (got[0] if isinstance(got, tuple) else got) == text


def test_a_model_without_scopes_gets_the_filter_as_it_compiles():
    s = sts(PLAIN)
    assert s.where({"n": 1}) == ('"n" = $1', [1])
    assert s.where({}) == ("", [])
    assert s.select(None, None) == ('SELECT * FROM "plains"', [])
    assert s.delete_by_id(3) == ('DELETE FROM "plains" WHERE "id" = $1', [3])


def test_include_deleted_lifts_only_the_soft_delete_scope():
    class Fixed(Scope):
        """A scope that binds a value (as the tenant scope will): never lifted."""

        def sql(self, st_, start):
            return f'{st_.q("n")} = {st_.d.placeholder(start)}'

        def params(self):
            return (42,)

    s = sts()
    s.scopes.append(Fixed())
    assert s.where({"$or": [{"title": "a"}, {"title": "b"}]}) == (
        '((("title" = $1) OR ("title" = $2))) AND "deleted_at" IS NULL AND "n" = $3', ["a", "b", 42])
    assert s.where({"title": "a"}, include_deleted=True) == ('("title" = $1) AND "n" = $2', ["a", 42])
    assert s.where(None, include_deleted=True) == ('"n" = $1', [42])
    # a statement whose own parameters come first numbers the scope's after them
    sql, params = s.update_where(("title",), {"title": "x"})
    assert sql == 'UPDATE "notes" SET "title" = $1 WHERE ("title" = $2) AND "deleted_at" IS NULL AND "n" = $3'
    assert params == ["x", 42]
    assert s.read_by_id(5) == (f'SELECT {COLS} FROM "notes" WHERE ("id" = $1) AND "deleted_at" IS NULL AND "n" = $2',
                               [5, 42])
    assert s.where(Pred('"id" IN ($1)', [9])) == ('("id" IN ($1)) AND "deleted_at" IS NULL AND "n" = $2', [9, 42])


def test_bad_filters_are_refused_before_any_statement():
    with pytest.raises(FilterError, match="nope"):
        sts().select({"nope": 1})
    with pytest.raises(FilterError):
        sts().count({"$where": "1"})


_leaf = st.one_of(
    st.builds(lambda v: {"n": v}, st.integers(-5, 5)),
    st.builds(lambda v: {"title": {"$ne": v}}, st.text(st.characters(blacklist_characters="\x00"), max_size=3)),
    st.builds(lambda v: {"n": {"$in": v}}, st.lists(st.integers(0, 3), max_size=3)),
    st.just({"title": None}),
)
_filters = st.recursive(_leaf, lambda inner: st.one_of(
    st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda x: {"$not": x}, inner),
    st.builds(lambda xs: {"$nor": xs}, st.lists(inner, min_size=1, max_size=2))), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_filters, st.sampled_from(["postgresql", "mysql", "sqlite"]))
def test_the_scope_always_stands_outside_the_filter(filt, dialect):
    scoped, plain = sts(NOTE, dialect), sts(PLAIN, dialect)
    user, params = plain.where(filt)
    sql, sparams = scoped.where(filt)
    quoted = scoped.q("deleted_at") + " IS NULL"
    assert sql == (f"({user}) AND {quoted}" if user else quoted)
    assert sparams == params
