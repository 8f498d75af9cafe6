"""Differential filter tests: the same rows and filters on SQLite, PostgreSQL and MySQL/MariaDB,
each result compared with the pure-Python reference (filter_reference.py, MongoDB semantics).

Agreeing with one oracle on every backend proves the backends agree with each other.  The table
is created and filled once per backend (module-scoped fixture, module event loop) so ~80 cases
plus a hypothesis search stay fast.  Cases where DataFlow disagrees with the documented
semantics are marked ``xfail(strict=True, reason="BUG: ...")``.
"""

import datetime as dt
import re

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow import DataFlow

from .conftest import BACKENDS, Tables, _backend_url, drop_all, mongodb_url
from .filter_reference import select

pytestmark = pytest.mark.asyncio(loop_scope="module")

UTC = dt.timezone.utc


def D(*a):
    return dt.datetime(*a, tzinfo=UTC)


_ROWS = [
    # name, email, age, score, active, tags, created, note
    ("Alice", "alice@example.com", 30, 88.5, True, ["admin", "dev"], D(2024, 1, 1), "hello"),
    ("alice", "ALICE@example.com", 25, 70.0, False, ["dev"], D(2024, 2, 1), None),
    ("ALICE", "alice@Example.org", None, None, True, [], None, ""),
    ("Bob", "bob@example.com", 40, -1.5, True, ["ops"], D(2023, 12, 31, 23, 59, 59, 999999), "  "),
    ("Bob ", "bob2@example.com", 41, 0.0, False, ["ops", "dev"], D(2024, 1, 1, 0, 0, 0, 1), "Bob"),
    ("bob", "bob3@example.com", 40, 0.1, True, ["Ops"], D(2024, 6, 15, 12), "trailing "),
    ("", "empty@x.io", 0, 0.5, False, [""], D(2020, 1, 1), None),
    ("100%", "pct@x.io", 100, 100.0, True, ["100%"], D(2021, 3, 4), "50% off"),
    ("under_score", "us@x.io", -5, -100.25, False, ["a_b"], D(2022, 5, 6), "a_b"),
    ("back\\slash", "bs@x.io", 7, 7.0, True, ["\\"], D(2022, 7, 8), "C:\\path\\to"),
    ("O'Brien", "ob@x.io", 55, 5.5, True, ["o'b"], D(2019, 1, 1), 'say "hi"'),
    ('quote"d', "qd@x.io", 56, 5.6, False, ['"'], D(2019, 1, 2), "it's"),
    ("'; DROP TABLE x; --", "sql@x.io", 1, 1.0, True, ["--"], D(2018, 1, 1), "/* c */"),
    ("Zoë", "zoe@x.io", 22, 22.2, True, ["ü"], D(2024, 3, 1), "naïve café"),
    ("ÉCOLE", "ecole@x.io", 33, 3.3, False, [], D(2024, 3, 2), "ÉCOLE"),
    ("école", "ecole2@x.io", 34, 3.4, True, ["é"], D(2024, 3, 3), "école"),
    ("日本語", "jp@x.io", 88, 8.8, True, ["日本"], D(2024, 4, 1), "テスト"),
    ("emoji 😀", "emo@x.io", 9, 9.9, False, ["😀"], D(2024, 4, 2), "😀😀"),
    ("Ωmega", "omega@x.io", 10, 10.0, True, ["Ω"], D(2024, 4, 3), "ωmega"),
    ("n\u0430me", "cyr@x.io", 11, 11.0, True, ["n\u0430me"], D(2024, 4, 4), None),
    ("name", "lat@x.io", 12, 12.0, False, ["name"], D(2024, 4, 5), "name"),
    ("%", "p@x.io", 13, 13.0, True, ["%"], D(2024, 4, 6), "%"),
    ("_", "u@x.io", 14, 14.0, False, ["_"], D(2024, 4, 7), "_"),
    ("\\", "b@x.io", 15, 15.0, True, ["\\\\"], D(2024, 4, 8), "\\"),
    ("a%b_c\\d", "mix@x.io", 16, 16.0, False, ["a%b_c\\d"], D(2024, 4, 9), "a%b_c\\d"),
    ("tab\tname", "tab@x.io", 17, 17.0, True, ["tab\t"], D(2024, 4, 10), "line1\nline2"),
    ("Carol", "carol@x.io", 2 ** 63 - 1, 1e300, True, ["max"], D(9999, 12, 31, 23, 59, 59), "max"),
    ("Carl", "carl@x.io", -(2 ** 63), -1e300, False, ["min"], D(1000, 1, 1), "min"),
    ("Dave", "dave@x.io", None, None, False, [], None, None),
    ("Eve", "eve@x.io", 18, 18.0, True, ["a"], D(2024, 5, 1), "eve"),
    ("Frank", "frank@x.io", 65, 1e10, False, ["b"], D(2024, 5, 2), "FRANK"),
    ("Grace", "grace@x.io", 29, 3.14159, True, ["c"], D(2024, 5, 3), "grace"),
    ("Heidi", "heidi@x.io", 31, 2.5, False, ["a", "b", "c"], D(2024, 5, 4), "heidi"),
    ("Ivan", "ivan@x.io", 32, 2.75, True, ["A"], D(2024, 5, 5), "ivan"),
    ("Judy", "judy@x.io", 33, -2.5, False, ["a b", "%", "_"], D(2024, 5, 6), "judy"),
    ("x" * 300, "long@x.io", 300, 300.0, True, ["x" * 200], D(2024, 5, 7), "x" * 1000),
    ("mallory", "mallory@x.io", -1, -0.5, False, ["1"], D(1970, 1, 1), "1"),
    ("peggy", "peggy@x.io", 36, 36.0, True, ["b"], D(2099, 12, 31), "Robert'); DROP TABLE Students;--"),
    ("trent", "trent+tag@x.io", 37, 37.0, False, ["c", "a"], D(2024, 1, 1, 12), "alice"),
    ("victor", "victor@x.io", 30, 88.5, True, ["dev"], D(2024, 1, 1), "Hello"),
    ("walter", "walter@x.io", None, 0.0, True, ["admin"], D(2024, 1, 1), None),
]
FIELDS = ("name", "email", "age", "score", "active", "tags", "created", "note")
ROWS = [dict(zip(FIELDS, r), k=i) for i, r in enumerate(_ROWS)]


class State:
    def __init__(self, backend, db, model, ref_rows):
        self.backend = backend
        self.db = db
        self.model = model
        self.ref = ref_rows


#: the SQL backends plus the document store (stand-in always; a real server with DATAFLOW_TEST_MONGODB_URL)
STORES = BACKENDS + ["mongodb-standin", "mongodb"]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=STORES)
async def st8(request, tmp_path_factory):
    backend = request.param
    if backend.startswith("mongodb"):
        url, kw = mongodb_url(backend)
    else:
        url, kw = _backend_url(backend, tmp_path_factory.mktemp("filt")), {}
    tables = Tables()
    db = DataFlow(url, **kw)

    @db.model
    class Filt:
        __tablename__ = tables("filt")
        k: int
        name: str
        email: str
        age: int | None
        score: float | None
        active: bool
        tags: list[str]
        created: dt.datetime | None
        note: str | None

    try:
        res = await db.express.bulk_create(Filt, [dict(r) for r in ROWS])
        assert res["inserted"] == len(ROWS)
        stored = await db.express.list(Filt, None, limit=1000)
        id_of = {r["k"]: r["id"] for r in stored}
        ref = [dict(r, id=id_of[r["k"]]) for r in ROWS]
        yield State(backend, db, Filt, ref)
    finally:
        await drop_all(db)


async def check(s: State, filt, *, count=True):
    expected = select(s.ref, filt)
    rows = await s.db.express.list(s.model, filt, limit=1000)
    got = {r["k"] for r in rows}
    assert len(rows) == len(got)
    if got != expected:
        names = {r["k"]: r["name"] for r in s.ref}
        extra = sorted((k, names[k]) for k in got - expected)
        missing = sorted((k, names[k]) for k in expected - got)
        pytest.fail(f"{s.backend}: filter {filt!r}\n  unexpected rows: {extra}\n  missing rows: {missing}")
    if count:
        n = await s.db.express.count(s.model, filt)
        assert n == len(expected), f"{s.backend}: count({filt!r}) = {n}, expected {len(expected)}"


# --------------------------------------------------------------------------------------------
# round trip: what went in comes back byte-identical on every backend
# --------------------------------------------------------------------------------------------
async def test_rows_round_trip(st8):
    stored = await st8.db.express.list(st8.model, None, limit=1000, order_by="k")
    assert len(stored) == len(ROWS)
    for want, got in zip(ROWS, stored):
        for f in ("k",) + FIELDS:
            assert got[f] == want[f], f"{st8.backend}: row {want['k']} field {f}: {got[f]!r} != {want[f]!r}"
            assert type(got[f]) is type(want[f]), f"{st8.backend}: row {want['k']} field {f} type"


# --------------------------------------------------------------------------------------------
# hand-written cases
# --------------------------------------------------------------------------------------------
def xbug(filt, reason, backends=None, id=None):
    """A case that fails because of a DataFlow bug (on ``backends``, or everywhere)."""
    return pytest.param(filt, backends, reason, id=id)


BUG_PAD = ("BUG: MySQL/MariaDB utf8mb4_bin is a PAD SPACE collation, so '=' / IN / $ne ignore "
           "trailing spaces: {'name': 'Bob'} also matches 'Bob ' (exact equality on PG/SQLite)")
BUG_SQLITE_LIKE_ESC = ("BUG: $like/$ilike bind no ESCAPE clause; PostgreSQL and MySQL treat backslash "
                       "as the escape character by default, SQLite has no default escape, so a "
                       "backslash in a $like pattern means different things per backend")
BUG_SQLITE_ILIKE_UNICODE = ("BUG: $ilike on SQLite is LOWER(c) LIKE LOWER(p) and SQLite's LOWER() folds "
                            "ASCII only: 'ÉCOLE' does not match {'$ilike': 'école'} (PG/MySQL fold Unicode)")

CASES = [
    # equality / None
    ({"name": "Alice"}, None),
    ({"name": "alice"}, None),
    ({"name": "Bob"}, None),
    ({"name": ""}, None),
    ({"note": ""}, None),
    ({"note": None}, None),
    ({"note": {"$eq": None}}, None),
    ({"age": None}, None),
    ({"age": 30}, None),
    ({"age": -(2 ** 63)}, None),
    ({"age": 2 ** 63 - 1}, None),
    ({"score": 0.1}, None),
    ({"score": 0.0}, None),
    ({"score": -1.5}, None),
    ({"active": True}, None),
    ({"active": False}, None),
    ({"name": "n\u0430me"}, None),
    ({"name": "'; DROP TABLE x; --"}, None),
    ({"name": "back\\slash"}, None),
    ({"name": "O'Brien", "age": 55}, None),
    ({"created": D(2024, 1, 1)}, None),
    ({"created": dt.datetime(2024, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))}, None),
    ({"created": None}, None),
    ({"k": 3, "name": "Alice"}, None),
    # $ne with NULLs (MongoDB: $ne matches NULL)
    ({"age": {"$ne": 30}}, None),
    ({"age": {"$ne": None}}, None),
    ({"note": {"$ne": "hello"}}, None),
    ({"note": {"$ne": ""}}, None),
    ({"active": {"$ne": True}}, None),
    ({"score": {"$ne": 0.0}}, None),
    # comparisons
    ({"age": {"$gt": 30}}, None),
    ({"age": {"$gte": 30}}, None),
    ({"age": {"$lt": 0}}, None),
    ({"age": {"$lte": 0}}, None),
    ({"age": {"$gt": 10, "$lt": 40}}, None),
    ({"score": {"$gt": -1.5}}, None),
    ({"score": {"$lt": 0}}, None),
    ({"score": {"$gte": 1e300}}, None),
    ({"name": {"$gt": "a"}}, None),
    ({"name": {"$lt": "B"}}, None),
    ({"name": {"$gt": "Bob"}}, None),
    ({"name": {"$gte": "Z", "$lt": "a"}}, None),
    ({"created": {"$lt": D(2024, 1, 1)}}, None),
    ({"created": {"$gte": D(2024, 1, 1), "$lte": D(2024, 1, 1, 0, 0, 0, 1)}}, None),
    ({"created": {"$gt": D(2099, 1, 1)}}, None),
    # $between
    ({"age": {"$between": [18, 40]}}, None),
    ({"score": {"$between": [-2.5, 2.5]}}, None),
    ({"created": {"$between": [D(2024, 3, 1), D(2024, 4, 30)]}}, None),
    ({"name": {"$between": ["A", "C"]}}, None),
    # $in / $nin
    ({"age": {"$in": [30, 40, 9999]}}, None),
    ({"age": {"$in": []}}, None),
    ({"age": {"$nin": []}}, None),
    ({"age": {"$in": [None]}}, None),
    ({"age": {"$in": [30, None]}}, None),
    ({"age": {"$nin": [30, 40]}}, None),
    ({"age": {"$nin": [30, None]}}, None),
    ({"age": {"$nin": [None]}}, None),
    ({"note": {"$in": ["", "hello", None]}}, None),
    ({"note": {"$nin": ["", "hello"]}}, None),
    ({"name": {"$in": ["Alice", "Bob", "%", "_", "\\"]}}, None),
    ({"active": {"$in": [True]}}, None),
    ({"created": {"$in": [D(2024, 1, 1), D(1970, 1, 1)]}}, None),
    ({"k": {"$in": list(range(0, 10000, 2))}}, None),                              # 5,000 ints
    ({"name": {"$in": [f"n{i}" for i in range(5000)] + ["Alice", "école"]}}, None),  # 5,002 strs
    ({"name": {"$nin": [f"n{i}" for i in range(5000)] + ["Alice"]}}, None),
    ({"age": {"$nin": list(range(5000)) + [None]}}, None),
    ({"age": {"$in": list(range(-2500, 2500)) + [None]}}, None),
    # $exists / $null
    ({"age": {"$exists": True}}, None),
    ({"age": {"$exists": False}}, None),
    ({"note": {"$null": True}}, None),
    ({"note": {"$null": False}}, None),
    # $like / $ilike
    ({"name": {"$like": "A%"}}, None),
    ({"name": {"$like": "a%"}}, None),
    ({"name": {"$like": "_ob"}}, None),
    ({"name": {"$like": "%"}}, None),
    ({"name": {"$like": "Bob_"}}, None),
    ({"name": {"$like": "%\\%%"}}, BUG_SQLITE_LIKE_ESC),
    ({"name": {"$like": "%\\_%"}}, BUG_SQLITE_LIKE_ESC),
    ({"email": {"$like": "%@example.com"}}, None),
    ({"name": {"$ilike": "alice"}}, None),
    ({"name": {"$ilike": "BOB%"}}, None),
    ({"note": {"$ilike": "%ÉCOLE%"}}, BUG_SQLITE_ILIKE_UNICODE),
    ({"name": {"$ilike": "ω%"}}, BUG_SQLITE_ILIKE_UNICODE),
    # $regex
    ({"name": {"$regex": "^[A-Z]"}}, None),
    ({"name": {"$regex": "ice$"}}, None),
    ({"name": {"$regex": "^alice$", "$options": "i"}}, None),
    ({"email": {"$regex": "^[a-z]+@x\\.io$"}}, None),
    ({"name": {"$regex": "o(b|B)"}}, None),
    ({"note": {"$regex": "a.b"}}, None),
    ({"name": {"$regex": "^.{3}$"}}, None),
    # $contains / $startswith / $endswith (text)
    ({"name": {"$contains": "li"}}, None),
    ({"name": {"$contains": "%"}}, None),
    ({"name": {"$contains": "_"}}, None),
    ({"name": {"$contains": "\\"}}, None),
    ({"name": {"$contains": "'"}}, None),
    ({"name": {"$contains": '"'}}, None),
    ({"name": {"$contains": ""}}, None),
    ({"note": {"$contains": "DROP TABLE"}}, None),
    ({"name": {"$startswith": "a"}}, None),
    ({"name": {"$startswith": "%"}}, None),
    ({"name": {"$startswith": "a%b_c\\"}}, None),
    ({"name": {"$endswith": "ce"}}, None),
    ({"name": {"$endswith": "_"}}, None),
    ({"note": {"$endswith": "\\to"}}, None),
    ({"note": {"$contains": "😀"}}, None),
    # $contains on a JSON list: membership
    ({"tags": {"$contains": "dev"}}, None),
    ({"tags": {"$contains": "a"}}, None),
    ({"tags": {"$contains": "%"}}, None),
    ({"tags": {"$contains": "\\"}}, None),
    ({"tags": {"$contains": ""}}, None),
    ({"tags": {"$contains": "nope"}}, None),
    ({"tags": {"$contains": "n\u0430me"}}, None),
    # field-level $not
    ({"age": {"$not": {"$gt": 30}}}, None),
    ({"note": {"$not": {"$eq": "hello"}}}, None),
    ({"name": {"$not": {"$regex": "^[a-z]"}}}, None),
    ({"age": {"$not": {"$in": [30, 40]}}}, None),
    ({"age": {"$not": {"$not": {"$gt": 30}}}}, None),
    ({"tags": {"$not": {"$contains": "dev"}}}, None),
    # logical, at depth
    ({"$or": [{"age": 30}, {"name": "Bob"}]}, None),
    ({"$or": [{"age": {"$gt": 60}}, {"score": {"$lt": 0}}, {"note": None}]}, None),
    ({"$and": [{"age": {"$gte": 18}}, {"active": True}]}, None),
    ({"$nor": [{"age": {"$gt": 30}}, {"active": True}]}, None),
    ({"$nor": [{"note": "hello"}]}, None),
    ({"$not": {"age": {"$gt": 30}}}, None),
    ({"$not": {"$or": [{"age": None}, {"note": None}]}}, None),
    ({"$or": [{"$and": [{"age": {"$gt": 20}}, {"$nor": [{"note": None}]}]},
              {"$not": {"$or": [{"score": {"$gte": 0}}, {"created": None}]}}]}, None),
    ({"$and": [{"$or": [{"name": {"$startswith": "a"}}, {"name": {"$startswith": "A"}}]},
               {"$not": {"note": {"$in": [None, "hello"]}}}]}, None),
    ({"active": True, "$or": [{"tags": {"$contains": "dev"}}, {"age": {"$lt": 20}}]}, None),
    ({"$nor": [{"$and": [{"age": {"$ne": None}}, {"age": {"$lt": 35}}]}]}, None),
    ({"$not": {"$not": {"$not": {"score": {"$gt": 0}}}}}, None),
    ({"$or": [{"age": i} for i in range(0, 120, 3)]}, None),
    ({}, None),
]


# Deep filters (issue 15): SQLite's parser overflows on deep SQL, so these are flattened
# (dataflow/dialects/flatten.py) before compiling there; the rows must not change.
def _nest(n, make, leaf):
    f = leaf
    for i in range(n):
        f = make(i, f)
    return f


_LEAF = {"$or": [{"age": {"$gt": 30}}, {"note": None}]}
DEEP_CASES = [
    # same operator nested 60 deep, nested part first or last
    _nest(60, lambda i, f: {"$and": [f, {"k": {"$ne": i}}]}, _LEAF),
    _nest(60, lambda i, f: {"$or": [{"age": i}, f]}, {"name": "Bob"}),
    # genuinely alternating $and/$or, 63 levels (+ the leaf's $or: 64, the contract's cap)
    _nest(63, lambda i, f: {("$and" if i % 2 else "$or"): [{"k": i}, f] if i % 4 < 2 else [f, {"k": {"$ne": i}}]}, _LEAF),
    # $not chains, even and odd, at document and field level; $not around nested $or
    _nest(40, lambda i, f: {"$not": f}, _LEAF),
    _nest(41, lambda i, f: {"$not": f}, _LEAF),
    {"score": _nest(30, lambda i, f: {"$not": f}, {"$gt": 0})},
    {"score": _nest(31, lambda i, f: {"$not": f}, {"$gt": 0, "$lt": 50})},
    _nest(20, lambda i, f: {"$not": {"$not": {"$or": [f, {"tags": {"$contains": "dev"}}]}}}, {"age": None}),
    # $nor of nested $or, and a multi-key dict around nesting
    _nest(16, lambda i, f: {"$nor": [{"$or": [f, {"k": i}]}]} if i % 2 else {"$or": [{"k": i}, f]}, _LEAF),
    _nest(40, lambda i, f: {"active": True, "$and": [f]} if i % 2 else {"$and": [{"$and": [f]}]}, _LEAF),
]
CASES += [(f, None) for f in DEEP_CASES]

# Backend-specific bugs: (case index in CASES, backend) pairs are found below by filter identity.
PAD_CASES = {repr({"name": "Bob"}), repr({"name": {"$gt": "Bob"}}), repr({"note": ""}), repr({"note": {"$ne": ""}}),
             repr({"note": {"$in": ["", "hello", None]}}), repr({"note": {"$nin": ["", "hello"]}}),
             repr({"name": {"$in": ["Alice", "Bob", "%", "_", "\\"]}}), repr({"$or": [{"age": 30}, {"name": "Bob"}]})}


def _params():
    out = []
    for i, (filt, reason) in enumerate(CASES):
        out.append(pytest.param(filt, reason, id=f"c{i:03d}"))
    return out


def _known_bug(backend, filt, reason):
    """All bugs this file found are fixed (explicit ESCAPE, Unicode df_lower on SQLite, NO PAD
    collation on MariaDB); the cases stay as regression tests."""
    return None


@pytest.mark.parametrize("filt,reason", _params())
async def test_filter_matches_reference(st8, filt, reason, request):
    bug = _known_bug(st8.backend, filt, reason)
    if bug:
        request.applymarker(pytest.mark.xfail(strict=True, reason=bug))
    await check(st8, filt)


async def test_in_100k_values(st8):
    """100,000 values in one $in / $nin: array binding or chunking, no parameter-limit error."""
    big = list(range(-50_000, 50_000))
    await check(st8, {"k": {"$in": big}})
    await check(st8, {"age": {"$nin": big + [None]}})
    names = [f"name-{i}" for i in range(100_000)] + ["Alice", "école"]
    await check(st8, {"name": {"$in": names}}, count=False)


async def test_offset_limit_order_are_consistent(st8):
    """Pagination of a filtered list returns exactly the reference set in id order."""
    filt = {"$or": [{"age": {"$ne": 30}}, {"note": None}]}
    expected = sorted(select(st8.ref, filt))
    got = []
    for off in range(0, 60, 7):
        got += [r["k"] for r in await st8.db.express.list(st8.model, filt, limit=7, offset=off, order_by="k")]
    assert got == expected


# --------------------------------------------------------------------------------------------
# hypothesis: random filters over the same rows
# --------------------------------------------------------------------------------------------
def _vals(field):
    return sorted({r[field] for r in ROWS if r[field] is not None}, key=repr)


STR_VALUES = sorted({r["name"] for r in ROWS} | {r["note"] for r in ROWS if r["note"]}
                    | {"a", "b", "B", "z", "é", "bob", "x"})
# Trailing-space strings are kept out of equality values (MySQL PAD SPACE bug, reported above).
EQ_STR_VALUES = [v for v in STR_VALUES if not v.endswith(" ") and v != "" and v.strip() != ""]
INT_VALUES = sorted({r["age"] for r in ROWS if r["age"] is not None} | {-3, 20, 35, 50})
FLOAT_VALUES = sorted({r["score"] for r in ROWS if r["score"] is not None} | {-3.0, 1.25, 50.0})
DT_VALUES = sorted({r["created"] for r in ROWS if r["created"] is not None} | {D(2024, 2, 15)})
TAG_VALUES = sorted({t for r in ROWS for t in r["tags"]} | {"zzz"})
SAFE_FRAGMENTS = ["a", "b", "o", "li", "%", "_", "'", "é", "x", "Bo", "ce", "e", "-", " "]
REGEXES = ["^a", "^A", "e$", "[0-9]", "o.", "^.{4}$", "(al|bo)", "x+", "^[a-z]+$", "é"]


def _scalar(kind):
    return {"str": st.sampled_from(EQ_STR_VALUES), "int": st.sampled_from(INT_VALUES),
            "float": st.sampled_from(FLOAT_VALUES), "dt": st.sampled_from(DT_VALUES),
            "bool": st.booleans()}[kind]


FIELD_KINDS = {"name": "str", "note": "str", "email": "str", "age": "int", "k": "int",
               "score": "float", "created": "dt", "active": "bool", "tags": "json"}
NULLABLE = {"age", "score", "created", "note"}


def _ops(field):
    kind = FIELD_KINDS[field]
    if kind == "json":
        return st.one_of(
            st.builds(lambda v: {"$contains": v}, st.sampled_from(TAG_VALUES)),
            st.builds(lambda b: {"$exists": b}, st.booleans()))
    val = _scalar(kind)
    maybe_none = st.one_of(val, st.none()) if field in NULLABLE else val
    choices = [
        val,
        st.none() if field in NULLABLE else val,
        st.builds(lambda v: {"$eq": v}, maybe_none),
        st.builds(lambda v: {"$ne": v}, maybe_none),
        st.builds(lambda xs: {"$in": xs}, st.lists(maybe_none, max_size=4)),
        st.builds(lambda xs: {"$nin": xs}, st.lists(maybe_none, max_size=4)),
        st.builds(lambda b: {"$exists": b}, st.booleans()),
        st.builds(lambda b: {"$null": b}, st.booleans()),
    ]
    if kind != "bool":
        choices += [
            st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), val),
            st.builds(lambda a, b: {"$between": sorted([a, b])}, val, val),
        ]
    if kind == "str":
        frag = st.sampled_from(SAFE_FRAGMENTS)
        choices += [
            st.builds(lambda op, v: {op: v}, st.sampled_from(["$contains", "$startswith", "$endswith"]), frag),
            st.builds(lambda v: {"$like": v}, st.sampled_from(["%a%", "_o%", "%e", "A%", "%", "__"])),
            st.builds(lambda v: {"$ilike": v}, st.sampled_from(["%a%", "b%", "%E", "ALICE", "_O%"])),
            st.builds(lambda v: {"$regex": v}, st.sampled_from(REGEXES)),
            st.builds(lambda v: {"$regex": v, "$options": "i"}, st.sampled_from(REGEXES)),
        ]
    return st.one_of(*choices)


def _field_pred():
    return st.sampled_from(sorted(FIELD_KINDS)).flatmap(
        lambda f: st.one_of(_ops(f), _ops(f).filter(lambda c: isinstance(c, dict)).map(lambda c: {"$not": c}))
        .map(lambda c, f=f: {f: c}))


def _filters():
    return st.recursive(
        _field_pred(),
        lambda inner: st.one_of(
            st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"$nor": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"$not": x}, inner),
            st.builds(lambda a, b: {**a, **b}, inner, inner),
        ),
        max_leaves=8,
    )


def _avoid_known_bugs(filt, backend) -> bool:
    """Keep hypothesis away from the already-reported backend bugs so it hunts new ones."""
    text = repr(filt)
    if backend == "sqlite" and "$ilike" in text and re.search(r"[^\x00-\x7f]", text):
        return False
    if backend == "mysql" and "'Bob'" in text:
        return False
    return True


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(filt=_filters())
async def test_random_filters_match_reference(st8, filt):
    if not _avoid_known_bugs(filt, st8.backend):
        return
    await check(st8, filt, count=False)
