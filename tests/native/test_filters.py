"""_native.filters: every test runs on the compiled module and on its pure-Python twin.

Three realistic specs (PostgreSQL "$" with array binding, MySQL "%s", SQLite "?" with JSON
binding for long lists); expected SQL is asserted exactly, errors by type and message.
"""

import re
import uuid

import pytest

from dataflow._native._pure import params as P
from tests.native.conftest import load_impl

COLUMNS = {"id": P.INT, "age": P.INT, "score": P.FLOAT, "status": P.STR, "name": P.STR,
           "active": P.BOOL, "tags": P.JSON, "uid": P.UUID}
PG_TEMPLATES = {"like": "{c} LIKE {p}", "ilike": "{c} ILIKE {p}", "regex": "{c} ~ {p}",
                "iregex": "{c} ~* {p}", "json_contains": "{c} @> {p}::jsonb",
                "in_array": "{c} = ANY({p})", "nin_array": "NOT ({c} = ANY({p}))"}
MYSQL_TEMPLATES = {"like": "{c} LIKE {p}", "ilike": "LOWER({c}) LIKE LOWER({p})",
                   "regex": "{c} REGEXP {p}", "iregex": "{c} REGEXP CONCAT('(?i)', {p})",
                   "json_contains": "JSON_CONTAINS({c}, {p})"}
SQLITE_TEMPLATES = {"like": "{c} LIKE {p}", "ilike": "LOWER({c}) LIKE LOWER({p})",
                    "regex": "{c} REGEXP {p}", "iregex": "{c} REGEXP ('(?i)' || {p})",
                    "json_contains": "EXISTS (SELECT 1 FROM json_each({c}) WHERE json_each.value = {p})",
                    "in_json": "{c} IN (SELECT value FROM json_each({p}))"}
REFERENCE = {"age": {"$gte": 18}, "status": {"$in": ["active", "premium"]}, "name": {"$like": "A%"},
             "$or": [{"age": {"$lt": 30}}, {"status": "vip"}]}


def make_specs(m):
    def cols(q):
        return {n: (q + n + q, k) for n, k in COLUMNS.items()}
    return {
        "pg": m.FilterSpec(cols('"'), "$", lambda v, k: P.coerce(v, k, P.POSTGRESQL), PG_TEMPLATES, 0),
        "mysql": m.FilterSpec(cols("`"), "%s", lambda v, k: P.coerce(v, k, P.MYSQL), MYSQL_TEMPLATES, 1,
                              escape_literal="'\\\\'"),
        "sqlite": m.FilterSpec(cols('"'), "?", lambda v, k: P.coerce(v, k, P.SQLITE), SQLITE_TEMPLATES, 2),
    }


class FilterKit:
    """One implementation plus its three dialect specs (the parity tests hold one per impl)."""

    def __init__(self, mod):
        self.mod = mod
        self.specs = make_specs(mod)


@pytest.fixture
def mod(impl):
    return load_impl("filters", impl)


@pytest.fixture
def specs(mod):
    return make_specs(mod)


def sql_for(dialect: str, pg_sql: str) -> str:
    """The PostgreSQL spelling -> the same statement in another dialect's quoting/placeholders."""
    if dialect == "pg":
        return pg_sql
    mark = "%s" if dialect == "mysql" else "?"
    out = re.sub(r"\$\d+", lambda _: mark, pg_sql)
    if dialect == "mysql":
        out = out.replace('"', "`").replace(" ESCAPE '\\'", " ESCAPE '\\\\'")
    return out


# -- every operator on every dialect -------------------------------------------------------------
SAME_EVERYWHERE = [
    ({"age": 18}, '"age" = $1', [18]),
    ({"age": None}, '"age" IS NULL', []),
    ({"age": {"$eq": 18}}, '"age" = $1', [18]),
    ({"age": {"$eq": None}}, '"age" IS NULL', []),
    ({"age": {"$gt": 1}}, '"age" > $1', [1]),
    ({"age": {"$gte": 1}}, '"age" >= $1', [1]),
    ({"age": {"$lt": 1}}, '"age" < $1', [1]),
    ({"age": {"$lte": 1}}, '"age" <= $1', [1]),
    ({"age": {"$ne": 3}}, '("age" <> $1 OR "age" IS NULL)', [3]),
    ({"age": {"$ne": None}}, '"age" IS NOT NULL', []),
    ({"age": {"$exists": True}}, '"age" IS NOT NULL', []),
    ({"age": {"$exists": False}}, '"age" IS NULL', []),
    ({"age": {"$null": True}}, '"age" IS NULL', []),
    ({"age": {"$null": False}}, '"age" IS NOT NULL', []),
    ({"age": {"$in": []}}, "1=0", []),
    ({"age": {"$nin": []}}, "1=1", []),
    ({"age": {"$in": [None]}}, '"age" IS NULL', []),
    ({"age": {"$nin": [None]}}, '"age" IS NOT NULL', []),
    ({"name": {"$like": "A%"}}, '"name" LIKE $1 ESCAPE \'\\\'', ["A%"]),
    ({"age": {"$between": [1, 5]}}, '"age" BETWEEN $1 AND $2', [1, 5]),
    ({"age": {"$between": (1, 5)}}, '"age" BETWEEN $1 AND $2', [1, 5]),
    ({"age": {"$gte": 1, "$lt": 5}}, '("age" >= $1 AND "age" < $2)', [1, 5]),
    ({"age": {"$not": {"$gt": 5}}}, 'NOT COALESCE(("age" > $1), FALSE)', [5]),
    ({"age": {"$not": {"$gt": 5, "$lt": 9}}}, 'NOT COALESCE((("age" > $1 AND "age" < $2)), FALSE)', [5, 9]),
    ({"age": 1, "name": "x"}, '"age" = $1 AND "name" = $2', [1, "x"]),
    ({"$and": [{"age": 1}, {"name": "x"}]}, '(("age" = $1) AND ("name" = $2))', [1, "x"]),
    ({"$or": [{"age": 1}, {"name": "x"}]}, '(("age" = $1) OR ("name" = $2))', [1, "x"]),
    ({"$nor": [{"age": 1}, {"name": "x"}]}, 'NOT COALESCE((("age" = $1) OR ("name" = $2)), FALSE)', [1, "x"]),
    ({"$not": {"age": 1, "name": "x"}}, 'NOT COALESCE(("age" = $1 AND "name" = $2), FALSE)', [1, "x"]),
    ({"$not": {}}, "NOT COALESCE((1=1), FALSE)", []),
    ({"$or": [{}, {"age": 2}]}, "((1=1) OR (\"age\" = $1))", [2]),
    ({"$or": [{"$and": [{"age": 1}, {"$nor": [{"name": "a"}]}]}, {"status": None}]},
     '(((("age" = $1) AND (NOT COALESCE((("name" = $2)), FALSE)))) OR ("status" IS NULL))', [1, "a"]),
]


@pytest.mark.parametrize("dialect", ["pg", "mysql", "sqlite"])
@pytest.mark.parametrize("filt,pg_sql,params", SAME_EVERYWHERE)
def test_operator_sql(mod, specs, dialect, filt, pg_sql, params):
    assert mod.compile_filter(filt, specs[dialect]) == (sql_for(dialect, pg_sql), params)


PER_DIALECT = [
    ({"status": {"$in": ["a", "b"]}},
     {"pg": ('"status" = ANY($1)', [["a", "b"]]),
      "mysql": ("`status` IN (%s, %s)", ["a", "b"]),
      "sqlite": ('"status" IN (?, ?)', ["a", "b"])}),
    ({"status": {"$nin": ["a", "b"]}},
     {"pg": ('("status" IS NULL OR NOT ("status" = ANY($1)))', [["a", "b"]]),
      "mysql": ("(`status` IS NULL OR `status` NOT IN (%s, %s))", ["a", "b"]),
      "sqlite": ('("status" IS NULL OR "status" NOT IN (?, ?))', ["a", "b"])}),
    ({"status": {"$in": ["a", None]}},
     {"pg": ('("status" = ANY($1) OR "status" IS NULL)', [["a"]]),
      "mysql": ("(`status` IN (%s) OR `status` IS NULL)", ["a"]),
      "sqlite": ('("status" IN (?) OR "status" IS NULL)', ["a"])}),
    ({"status": {"$nin": [None, "a"]}},
     {"pg": ('("status" IS NOT NULL AND NOT ("status" = ANY($1)))', [["a"]]),
      "mysql": ("(`status` IS NOT NULL AND `status` NOT IN (%s))", ["a"]),
      "sqlite": ('("status" IS NOT NULL AND "status" NOT IN (?))', ["a"])}),
    ({"name": {"$ilike": "a%"}},
     {"pg": ('"name" ILIKE $1 ESCAPE \'\\\'', ["a%"]),
      "mysql": ("LOWER(`name`) LIKE LOWER(%s) ESCAPE '\\\\'", ["a%"]),
      "sqlite": ('LOWER("name") LIKE LOWER(?) ESCAPE \'\\\'', ["a%"])}),
    ({"name": {"$regex": "^a.*z$"}},
     {"pg": ('"name" ~ $1', ["^a.*z$"]),
      "mysql": ("`name` REGEXP %s", ["^a.*z$"]),
      "sqlite": ('"name" REGEXP ?', ["^a.*z$"])}),
    ({"name": {"$regex": "^a", "$options": "i"}},
     {"pg": ('"name" ~* $1', ["^a"]),
      "mysql": ("`name` REGEXP CONCAT('(?i)', %s)", ["^a"]),
      "sqlite": ('"name" REGEXP (\'(?i)\' || ?)', ["^a"])}),
    ({"name": {"$options": "", "$regex": "^a"}},
     {"pg": ('"name" ~ $1', ["^a"]),
      "mysql": ("`name` REGEXP %s", ["^a"]),
      "sqlite": ('"name" REGEXP ?', ["^a"])}),
    ({"name": {"$contains": "50%_off\\"}},
     {"pg": ('"name" LIKE $1 ESCAPE \'\\\'', ["%50\\%\\_off\\\\%"]),
      "mysql": ("`name` LIKE %s ESCAPE '\\\\'", ["%50\\%\\_off\\\\%"]),
      "sqlite": ('"name" LIKE ? ESCAPE \'\\\'', ["%50\\%\\_off\\\\%"])}),
    ({"name": {"$startswith": "a_"}},
     {"pg": ('"name" LIKE $1 ESCAPE \'\\\'', ["a\\_%"]),
      "mysql": ("`name` LIKE %s ESCAPE '\\\\'", ["a\\_%"]),
      "sqlite": ('"name" LIKE ? ESCAPE \'\\\'', ["a\\_%"])}),
    ({"name": {"$endswith": "z"}},
     {"pg": ('"name" LIKE $1 ESCAPE \'\\\'', ["%z"]),
      "mysql": ("`name` LIKE %s ESCAPE '\\\\'", ["%z"]),
      "sqlite": ('"name" LIKE ? ESCAPE \'\\\'', ["%z"])}),
    ({"tags": {"$contains": "x"}},
     {"pg": ('"tags" @> $1::jsonb', ['["x"]']),
      "mysql": ("JSON_CONTAINS(`tags`, %s)", ['"x"']),
      "sqlite": ('EXISTS (SELECT 1 FROM json_each("tags") WHERE json_each.value = ?)', ["x"])}),
    ({"active": True},
     {"pg": ('"active" = $1', [True]),
      "mysql": ("`active` = %s", [1]),
      "sqlite": ('"active" = ?', [1])}),
    (REFERENCE,
     {"pg": ('"age" >= $1 AND "status" = ANY($2) AND "name" LIKE $3 ESCAPE \'\\\' AND (("age" < $4) OR ("status" = $5))',
             [18, ["active", "premium"], "A%", 30, "vip"]),
      "mysql": ("`age` >= %s AND `status` IN (%s, %s) AND `name` LIKE %s ESCAPE '\\\\' AND ((`age` < %s) OR (`status` = %s))",
                [18, "active", "premium", "A%", 30, "vip"]),
      "sqlite": ('"age" >= ? AND "status" IN (?, ?) AND "name" LIKE ? ESCAPE \'\\\' AND (("age" < ?) OR ("status" = ?))',
                 [18, "active", "premium", "A%", 30, "vip"])}),
]


@pytest.mark.parametrize("dialect", ["pg", "mysql", "sqlite"])
@pytest.mark.parametrize("filt,expected", PER_DIALECT)
def test_dialect_sql(mod, specs, dialect, filt, expected):
    assert mod.compile_filter(filt, specs[dialect]) == expected[dialect]


def test_empty_and_none_filters(mod, specs):
    for spec in specs.values():
        assert mod.compile_filter(None, spec) == ("", [])
        assert mod.compile_filter({}, spec) == ("", [])


def test_start_offset_numbers_placeholders(mod, specs):
    assert mod.compile_filter(REFERENCE, specs["pg"], start=7)[0] == (
        '"age" >= $7 AND "status" = ANY($8) AND "name" LIKE $9 ESCAPE \'\\\' AND (("age" < $10) OR ("status" = $11))')
    assert mod.compile_filter({"age": 1}, specs["sqlite"], start=7) == ('"age" = ?', [1])
    sql, params = mod.compile_filter({"age": {"$between": [1, 2]}}, specs["pg"], start=2_147_483_646)
    assert sql == '"age" BETWEEN $2147483646 AND $2147483647'


@pytest.mark.parametrize("start,exc,msg", [
    (0, ValueError, "start must be between 1 and 2147483647, got 0"),
    (-5, ValueError, "start must be between 1 and 2147483647, got -5"),
    (2 ** 31, ValueError, "start must be between 1 and 2147483647, got 2147483648"),
    (2 ** 80, ValueError, f"start must be between 1 and 2147483647, got {2 ** 80}"),
    (True, TypeError, "start must be an int, got bool"),
    ("1", TypeError, "start must be an int, got str"),
    (1.0, TypeError, "start must be an int, got float"),
])
def test_bad_start(mod, specs, start, exc, msg):
    with pytest.raises(exc) as ei:
        mod.compile_filter({"age": 1}, specs["pg"], start=start)
    assert str(ei.value) == msg


def test_custom_root_path_and_bad_path(mod, specs):
    with pytest.raises(ValueError, match=r"^where\.nope: unknown field 'nope'"):
        mod.compile_filter({"nope": 1}, specs["pg"], path="where")
    with pytest.raises(TypeError, match="^path must be a str, got int$"):
        mod.compile_filter({"age": 1}, specs["pg"], path=3)


def test_spec_must_come_from_the_same_module(mod):
    with pytest.raises(TypeError, match="^spec must be a FilterSpec, got dict$"):
        mod.compile_filter({"age": 1}, {})
    other = load_impl("filters", "python") if mod.__name__ == "dataflow._native.filters" else None
    if other is not None:
        with pytest.raises(TypeError, match="^spec must be a FilterSpec, got FilterSpec$"):
            mod.compile_filter({"age": 1}, make_specs(other)["pg"])


# -- large lists ---------------------------------------------------------------------------------
def test_in_100k_values_pg_is_one_array_param(mod, specs):
    values = list(range(100_000))
    sql, params = mod.compile_filter({"age": {"$in": values}}, specs["pg"])
    assert sql == '"age" = ANY($1)'
    assert params == [values]
    sql, params = mod.compile_filter({"age": {"$nin": values}, "name": "x"}, specs["pg"])
    assert sql == '("age" IS NULL OR NOT ("age" = ANY($1))) AND "name" = $2'
    assert params == [values, "x"]


def test_in_100k_values_sqlite_is_one_json_param(mod, specs):
    values = list(range(100_000))
    sql, params = mod.compile_filter({"age": {"$in": values}}, specs["sqlite"])
    assert sql == '"age" IN (SELECT value FROM json_each(?))'
    assert len(params) == 1 and params[0] == "[" + ",".join(map(str, values)) + "]"
    sql, params = mod.compile_filter({"age": {"$nin": values + [None]}}, specs["sqlite"])
    assert sql == '("age" IS NOT NULL AND NOT ("age" IN (SELECT value FROM json_each(?))))'
    assert len(params) == 1


def test_large_in_threshold_and_kinds(mod, specs):
    spec = specs["sqlite"]
    sql, params = mod.compile_filter({"age": {"$in": list(range(1000))}}, spec)
    assert sql.startswith('"age" IN (?, ?') and len(params) == 1000   # at the threshold: plain IN
    sql, params = mod.compile_filter({"age": {"$in": list(range(1001))}}, spec)
    assert sql == '"age" IN (SELECT value FROM json_each(?))'
    # bools are not in JSON_IN_KINDS: stay as placeholders
    sql, params = mod.compile_filter({"active": {"$in": [True, False] * 600}}, spec)
    assert sql.startswith('"active" IN (?, ?') and len(params) == 1200
    # strings with non-ASCII text survive the JSON array
    sql, params = mod.compile_filter({"name": {"$in": ["é", "日本"] * 600}}, spec)
    assert params == ['["é","日本"' + ',"é","日本"' * 599 + "]"]


def test_mysql_long_in_list_and_big_output(mod, specs):
    values = list(range(20_000))
    sql, params = mod.compile_filter({"age": {"$in": values}}, specs["mysql"])
    assert sql == "`age` IN (" + ", ".join(["%s"] * 20_000) + ")"
    assert params == values


def test_non_ascii_identifiers_and_templates(mod):
    spec = mod.FilterSpec({"naïve": ('"naïve"', P.STR), "x": ('"x"', P.INT)}, "$",
                          lambda v, k: P.coerce(v, k, P.POSTGRESQL), {"like": "{c} LIKE {p} /* ü */"})
    assert mod.compile_filter({"x": 1, "naïve": {"$like": "ö%"}, "$or": [{"x": 2}, {"naïve": "日"}]}, spec) == (
        '"x" = $1 AND "naïve" LIKE $2 /* ü */ ESCAPE \'\\\' AND (("x" = $3) OR ("naïve" = $4))', [1, "ö%", 2, "日"])


# -- errors: paths, unknown names, refused operators ---------------------------------------------
def raises(mod, spec, filt, exc, msg):
    with pytest.raises(exc) as ei:
        mod.compile_filter(filt, spec)
    assert type(ei.value) is exc
    assert str(ei.value) == msg
    return ei.value


ERRORS = [
    ({"$or": [{"age": 1}, {"age": 2}, {"age": 3}, {"age": {"$gte": "x"}}]}, TypeError,
     "filter.$or[3].age.$gte: expected int, got str"),
    ({"bogus": 1}, ValueError,
     "filter.bogus: unknown field 'bogus'; valid fields: active, age, id, name, score, status, tags, uid"),
    ({"age": {"$foo": 1}}, ValueError,
     "filter.age.$foo: unknown operator $foo; valid operators: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, "
     "$like, $ilike, $regex, $options, $exists, $null, $not, $contains, $startswith, $endswith, $between"),
    ({"age": {"$GT": 1}}, ValueError, None),
    ({"age": {"$In": [1]}}, ValueError, None),
    ({"$OR": [{"age": 1}]}, ValueError,
     "filter.$OR: unknown top-level operator $OR; use one of $and, $or, $nor, $not, or a field name"),
    ({"$": 1}, ValueError,
     "filter.$: unknown top-level operator $; use one of $and, $or, $nor, $not, or a field name"),
    ({"age": {"$": 1}}, ValueError, None),
    ({"age": {"$or": [1]}}, ValueError, "filter.age.$or: $or belongs at document level, not inside a field"),
    ({"age": {"$eq": {"$gt": 1}}}, TypeError, "filter.age.$eq: expected int, got dict"),
    ({"status": {"a": 1}}, TypeError,
     "filter.status: expected operators like $gt in this dict, got key 'a' (a dict is not a value; "
     "JSON equality is not supported)"),
    ({"status": {1: 1}}, TypeError,
     "filter.status: expected operators like $gt in this dict, got key 1 (a dict is not a value; "
     "JSON equality is not supported)"),
    ({"status": {"$not": {"a": 1}}}, TypeError,
     "filter.status.$not: expected operators like $gt in this dict, got key 'a'"),
    ({"age": {"$in": [1, {"$gt": 1}]}}, TypeError, "filter.age.$in[1]: expected int, got dict"),
    ({"age": True}, TypeError, "filter.age: expected int, got bool"),
    ({"age": {"$in": [1, True]}}, TypeError, "filter.age.$in[1]: expected int, got bool"),
    ({"age": {"$between": [1, False]}}, TypeError, "filter.age.$between[1]: expected int, got bool"),
    ({"age": 2 ** 63}, ValueError, "filter.age: integer out of range for a 64-bit column"),
    ({"age": 1.5}, TypeError, "filter.age: expected int, got float"),
    ({"age": "1"}, TypeError, "filter.age: expected int, got str"),
    ({"name": "a\x00b"}, ValueError, "filter.name: NUL character (\\x00) is not allowed in text"),
    ({"name": {"$in": ["ok", "a\x00"]}}, ValueError, "filter.name.$in[1]: NUL character (\\x00) is not allowed in text"),
    ({"name": {"$like": "a\x00%"}}, ValueError, "filter.name.$like: NUL character (\\x00) is not allowed in text"),
    ({"name": {"$ilike": "\ud800"}}, ValueError, "filter.name.$ilike: text contains a lone surrogate and is not valid Unicode"),
    ({"name": {"$contains": "\x00"}}, ValueError, "filter.name.$contains: NUL character (\\x00) is not allowed in text"),
    ({"name": {"$regex": "a\x00"}}, ValueError, "filter.name.$regex: NUL character (\\x00) is not allowed in text"),
    ({"tags": {"$contains": "a\x00"}}, ValueError, "filter.tags.$contains: NUL character (\\x00) is not allowed in text"),
    ({"tags": {"$contains": float("nan")}}, ValueError, "filter.tags.$contains: NaN and Infinity cannot be stored in JSON"),
    ({"age": {"$gt": None}}, ValueError, "filter.age.$gt: cannot compare with None; use $exists or $null"),
    ({"age": {}}, ValueError, "filter.age: empty operator dict"),
    ({"age": {"$not": {}}}, ValueError, "filter.age.$not: empty operator dict"),
    ({"age": {"$not": 5}}, TypeError, "filter.age.$not: expected an operator dict like {'$gt': 5}"),
    ({"$or": []}, ValueError, "filter.$or: needs a non-empty list"),
    ({"$and": {"age": 1}}, TypeError, "filter.$and: expected a list of filter dicts, got dict"),
    ({"$or": [{"age": 1}, 5]}, TypeError, "filter.$or[1]: expected a dict, got int"),
    ({"$not": [{"age": 1}]}, TypeError, "filter.$not: expected a dict, got list"),
    ({1: 2}, TypeError, "filter: keys must be str, got int"),
    ({"$or": [{("a",): 2}]}, TypeError, "filter.$or[0]: keys must be str, got tuple"),
    ({"age": {"$exists": 1}}, TypeError, "filter.age.$exists: expected true or false, got int"),
    ({"age": {"$null": None}}, TypeError, "filter.age.$null: expected true or false, got NoneType"),
    ({"age": {"$like": "a"}}, ValueError, "filter.age.$like: this operator needs a text field"),
    ({"name": {"$like": 5}}, TypeError, "filter.name.$like: expected str, got int"),
    ({"age": {"$startswith": "a"}}, ValueError, "filter.age.$startswith: this operator needs a text field"),
    ({"name": {"$endswith": b"a"}}, TypeError, "filter.name.$endswith: expected str, got bytes"),
    ({"name": {"$regex": 5}}, TypeError, "filter.name.$regex: expected a regular expression string, got int"),
    ({"age": {"$regex": "a"}}, ValueError, "filter.age.$regex: $regex needs a text field"),
    ({"name": {"$regex": "a" * 2001}}, ValueError, "filter.name.$regex: regular expression longer than 2000 characters"),
    ({"name": {"$regex": "a", "$options": "im"}}, ValueError, "filter.name.$options: only the 'i' option is supported"),
    ({"name": {"$regex": "a", "$options": 1}}, ValueError, "filter.name.$options: only the 'i' option is supported"),
    ({"name": {"$options": "i"}}, ValueError, "filter.name.$options: only valid next to $regex"),
    ({"name": {"$options": "i", "$eq": "x"}}, ValueError, "filter.name.$options: only valid next to $regex"),
    ({"name": {"$not": {"$options": "i"}}}, ValueError, "filter.name.$not.$options: only valid next to $regex"),
    ({"age": {"$between": [1]}}, TypeError, "filter.age.$between: expected [low, high]"),
    ({"age": {"$between": 5}}, TypeError, "filter.age.$between: expected [low, high]"),
    ({"age": {"$between": [None, 5]}}, ValueError, "filter.age.$between: bounds cannot be None"),
    ({"age": {"$in": 5}}, TypeError, "filter.age.$in: expected a list, got int"),
    ({"age": {"$nin": "abc"}}, TypeError, "filter.age.$nin: expected a list, got str"),
    ({"uid": "not-a-uuid"}, ValueError, "filter.uid: not a valid UUID string"),
]


@pytest.mark.parametrize("filt,exc,msg", ERRORS)
def test_errors(mod, specs, filt, exc, msg):
    for spec in specs.values():
        err = raises(mod, spec, filt, exc, msg) if msg else pytest.raises(exc, mod.compile_filter, filt, spec).value
        assert type(err) is exc or issubclass(type(err), exc)
        assert str(err).startswith("filter")


def test_error_types_and_messages_match_twin():
    """Every error above gives the very same type and text in both implementations
    (runs once, comparing the two; fails when the native module is required but missing)."""
    native, pure = load_impl("filters", "native"), load_impl("filters", "python")
    nspecs, pspecs = make_specs(native), make_specs(pure)
    for filt, _, _ in ERRORS:
        for d in nspecs:
            outs = []
            for m, s in ((native, nspecs[d]), (pure, pspecs[d])):
                try:
                    outs.append(("ok", m.compile_filter(filt, s)))
                except Exception as exc:  # noqa: BLE001 - comparing whatever is raised
                    outs.append((type(exc), str(exc)))
            assert outs[0] == outs[1], (filt, d)


@pytest.mark.parametrize("op", ["$where", "$function", "$expr", "$accumulator"])
def test_refused_operators_at_every_depth(mod, specs, op):
    spec = specs["pg"]
    msg = "operator {} runs server-side code and is refused".format(op)
    cases = [
        ({op: "1"}, f"filter.{op}"),
        ({"$and": [{"age": 1}, {op: "x"}]}, f"filter.$and[1].{op}"),
        ({"$not": {op: {}}}, f"filter.$not.{op}"),
        ({"$or": [{"$nor": [{op: 1}]}]}, f"filter.$or[0].$nor[0].{op}"),
        ({"age": {op: "x"}}, f"filter.age.{op}"),
        ({"age": {"$not": {op: "x"}}}, f"filter.age.$not.{op}"),
        ({"age": {"$not": {"$not": {op: "x"}}}}, f"filter.age.$not.$not.{op}"),
    ]
    for filt, path in cases:
        raises(mod, spec, filt, ValueError, f"{path}: {msg}")


def test_json_contains_unencodable_value_names_the_path(mod, specs):
    for d in ("pg", "mysql"):
        with pytest.raises(TypeError, match=r"^filter\.tags\.\$contains: "):
            mod.compile_filter({"tags": {"$contains": 2 ** 70}}, specs[d])


def test_unsupported_template(mod):
    spec = mod.FilterSpec({"name": ('"name"', P.STR), "tags": ('"tags"', P.JSON)}, "?",
                          lambda v, k: P.coerce(v, k, P.SQLITE), {"like": "{c} LIKE {p}"})
    raises(mod, spec, {"name": {"$regex": "a"}}, ValueError, "filter.name.$regex: not supported on this database")
    raises(mod, spec, {"name": {"$ilike": "a"}}, ValueError, "filter.name.$ilike: not supported on this database")
    raises(mod, spec, {"tags": {"$contains": 1}}, ValueError, "filter.tags.$contains: not supported on this database")
    spec = mod.FilterSpec({"age": ('"age"', P.INT)}, "$", lambda v, k: v, {"in_array": "{c} = ANY({p})"})
    assert mod.compile_filter({"age": {"$in": [1]}}, spec) == ('"age" = ANY($1)', [[1]])
    raises(mod, spec, {"age": {"$nin": [1]}}, ValueError, "filter.age.$nin: not supported on this database")


# -- structural limits ----------------------------------------------------------------------------
def nest(depth, wrap):
    f = {"age": 1}
    for _ in range(depth):
        f = wrap(f)
    return f


@pytest.mark.parametrize("wrap", [lambda f: {"$not": f}, lambda f: {"$and": [f]},
                                  lambda f: {"$or": [{"age": 2}, f]}, lambda f: {"$nor": [f]}],
                         ids=["not", "and", "or", "nor"])
def test_depth_cap_without_recursion_error(mod, specs, wrap):
    spec = specs["pg"]
    assert mod.compile_filter(nest(64, wrap), spec)[0]          # 64 levels: fine
    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
        mod.compile_filter(nest(65, wrap), spec)
    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
        mod.compile_filter(nest(10_000, wrap), spec)


def test_field_level_not_depth(mod, specs):
    cond = {"$gt": 1}
    for _ in range(10_000):
        cond = {"$not": cond}
    with pytest.raises(ValueError, match=r"^filter\.age(\.\$not)+: filter nested deeper than 64 levels$"):
        mod.compile_filter({"age": cond}, specs["pg"])
    cond = {"$gt": 1}
    for _ in range(65):
        cond = {"$not": cond}
    with pytest.raises(ValueError, match="nested deeper"):
        mod.compile_filter({"age": cond}, specs["pg"])
    assert mod.compile_filter({"age": cond["$not"]}, specs["pg"])[1] == [1]      # 64: fine
    # field-level $not shares the budget with document nesting
    with pytest.raises(ValueError, match="nested deeper"):
        mod.compile_filter(nest(1, lambda f: {"$and": [f]}) | {"$and": [{"age": cond["$not"]}]}, specs["pg"])


def test_node_cap(mod, specs):
    spec = specs["sqlite"]
    sql, params = mod.compile_filter({"$or": [{"age": i} for i in range(10_000)]}, spec)
    assert len(params) == 10_000
    raises(mod, spec, {"$or": [{"age": i} for i in range(10_001)]}, ValueError,
           "filter.$or[10000].age: filter has more than 10000 predicates; use $in for long lists")


def test_non_dict_filter(mod, specs):
    raises(mod, specs["pg"], [("age", 1)], TypeError, "filter: expected a dict, got list")
    raises(mod, specs["pg"], "age = 1", TypeError, "filter: expected a dict, got str")


def test_values_never_in_sql(mod, specs):
    evil = "'; DROP TABLE users; --"
    for spec in specs.values():
        for filt in ({"name": evil}, {"name": {"$like": evil}}, {"name": {"$contains": evil}},
                     {"name": {"$in": [evil, "x"]}}, {"name": {"$regex": evil}}):
            sql, params = mod.compile_filter(filt, spec)
            assert "DROP" not in sql


def test_coerce_receives_kind_and_its_result_is_bound(mod):
    seen = []

    def coerce(v, k):
        seen.append((v, k))
        return ("bound", v)

    spec = mod.FilterSpec({"a": ("a", 1), "b": ("b", 4)}, "?", coerce, {"like": "{c} LIKE {p}"})
    sql, params = mod.compile_filter({"a": {"$in": [1, None, 2]}, "b": {"$like": "x%"}}, spec)
    assert sql == "(a IN (?, ?) OR a IS NULL) AND b LIKE ? ESCAPE '\\'"
    assert params == [("bound", 1), ("bound", 2), ("bound", "x%")]
    assert seen == [(1, 1), (2, 1), ("x%", 4)]


def test_coerce_errors_other_than_type_value_pass_through(mod):
    def coerce(v, k):
        raise KeyError("boom")

    spec = mod.FilterSpec({"a": ("a", 1)}, "?", coerce, {})
    with pytest.raises(KeyError):
        mod.compile_filter({"a": 1}, spec)


def test_reentrant_coerce(mod):
    """A coerce callable that compiles another filter must not disturb the outer compile."""
    inner = []

    def coerce(v, k):
        inner.append(mod.compile_filter({"a": {"$in": [1, 2]}}, spec2))
        return v

    spec2 = mod.FilterSpec({"a": ("a", 1)}, "$", lambda v, k: v, {})
    spec = mod.FilterSpec({"a": ("a", 1)}, "$", coerce, {})
    assert mod.compile_filter({"a": 5, "$or": [{"a": 6}]}, spec, start=3) == ("a = $3 AND ((a = $4))", [5, 6])
    assert inner == [("a IN ($1, $2)", [1, 2])] * 2


# -- FilterSpec ------------------------------------------------------------------------------------
def test_spec_attributes(mod, specs):
    spec = specs["mysql"]
    assert spec.paramstyle == "%s"
    assert spec.columns["age"] == ("`age`", P.INT)
    assert spec.templates["iregex"] == ("", " REGEXP CONCAT('(?i)', ", ")")
    assert spec.json_contains_mode == 1
    assert spec.large_in == 1000
    assert spec.like_escape == "\\"
    assert spec.escape_literal == "'\\\\'"
    assert specs["pg"].escape_literal == "'\\'"
    q = mod.FilterSpec({}, "?", None, {}, like_escape="'")
    assert q.escape_literal == "''''"
    assert mod.FilterSpec({"a": ["a", 1]}, "?", None, {}).columns == {"a": ("a", 1)}


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(paramstyle=":name"), ValueError, "paramstyle must be '$', '?' or '%s', not ':name'"),
    (dict(templates={"bogus": "{c}{p}", "zz": "{c}{p}"}), ValueError, "unknown template keys: ['bogus', 'zz']"),
    (dict(templates={"like": "{p} LIKE {c}"}), ValueError, "template '{p} LIKE {c}' needs {c} before {p}"),
    (dict(templates={"like": "{c} LIKE ?"}), ValueError, "template '{c} LIKE ?' needs {c} before {p}"),
    (dict(templates={"like": b"{c} LIKE {p}"}), TypeError, "template must be a str, not bytes"),
    (dict(columns={"a": ("a", "int")}), TypeError,
     "columns['a'] must be (quoted identifier: str, kind: int), got ('a', 'int')"),
    (dict(columns={"a": ("a", True)}), TypeError,
     "columns['a'] must be (quoted identifier: str, kind: int), got ('a', True)"),
    (dict(columns={"a": "a"}), TypeError, "columns['a'] must be (quoted identifier: str, kind: int), got 'a'"),
    (dict(columns={1: ("a", 1)}), TypeError, "columns[1] must be (quoted identifier: str, kind: int), got ('a', 1)"),
    (dict(json_contains_mode=3), ValueError, "json_contains_mode must be 0, 1 or 2, not 3"),
    (dict(json_contains_mode=True), ValueError, "json_contains_mode must be 0, 1 or 2, not True"),
    (dict(large_in=-1), ValueError, "large_in must be an int >= 0, not -1"),
    (dict(large_in="10"), ValueError, "large_in must be an int >= 0, not '10'"),
    (dict(like_escape=""), ValueError, "like_escape must be one character, not ''"),
    (dict(like_escape="\\\\"), ValueError, "like_escape must be one character, not '\\\\\\\\'"),
    (dict(escape_literal=5), TypeError, "escape_literal must be a str or None, not int"),
])
def test_spec_validation(mod, kwargs, exc, msg):
    args = dict(columns={"a": ("a", 1)}, paramstyle="?", coerce=None, templates={})
    args.update(kwargs)
    with pytest.raises(exc) as ei:
        mod.FilterSpec(**args)
    assert str(ei.value) == msg


def test_module_constants_match(impl):
    m = load_impl("filters", impl)
    pure = load_impl("filters", "python")
    for name in ("MAX_DEPTH", "MAX_NODES", "MAX_REGEX", "MAX_START", "FIELD_OPS", "LOGICAL_OPS",
                 "REFUSED_OPS", "STR_KIND", "JSON_KIND", "JSON_IN_KINDS"):
        assert getattr(m, name) == getattr(pure, name), name


def test_uuid_values(mod, specs):
    u = uuid.UUID(int=7)
    assert mod.compile_filter({"uid": str(u)}, specs["pg"]) == ('"uid" = $1', [u])
    assert mod.compile_filter({"uid": u}, specs["sqlite"]) == ('"uid" = ?', [str(u)])
