"""_native.sqlitebulk on both implementations: values round-trip, change counts, the exact row of
a failure, up-front checks, odd SQL, and hypothesis parity (result, exception and table state)."""

from __future__ import annotations

import math
import os
import sqlite3
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both, load_impl

SQL = "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"
I64 = (-(1 << 63), (1 << 63) - 1)


def fresh(schema="CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL, c ANY) STRICT"):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(schema)
    return conn


def table(conn):
    return [tuple((type(v), v if not (isinstance(v, float) and math.isnan(v)) else "nan") for v in r)
            for r in conn.execute("SELECT * FROM t ORDER BY rowid")]


def outcome(mod, conn, *args, **kw):
    try:
        r = mod.insert_rows(conn, *args, **kw)
    except Exception as exc:  # noqa: BLE001 - compare whatever is raised
        return ("raise", type(exc), str(exc), getattr(exc, "row_index", None),
                getattr(exc, "sqlite_errorcode", None), getattr(exc, "sqlite_errorname", None))
    return ("ok", r)


@pytest.fixture
def mod(impl):
    return load_impl("sqlitebulk", impl)


def test_values_round_trip(mod):
    conn = fresh()
    rows = [(1, "plain", None), (2, "", 0), (3, "日本 😀 \x00 nul", I64[0]), (4, "x", I64[1]),
            (5, "y", True), (6, "z", -0.0), (7, "w", 1.5e300), (8, "v", b""), (9, "u", b"\x00\xff" * 100),
            (10, "t", "text in ANY")]
    assert mod.insert_rows(conn, SQL, rows) == len(rows)
    got = conn.execute("SELECT a, b, c FROM t ORDER BY a").fetchall()
    assert got == [(a, b, int(c) if type(c) is bool else c) for a, b, c in rows]
    assert conn.execute("SELECT typeof(c) FROM t WHERE a = 9").fetchone() == ("blob",)
    assert conn.execute("SELECT length(CAST(b AS BLOB)) FROM t WHERE a = 3").fetchone()[0] == len(rows[2][1].encode())


def test_changes_count_skipped_conflicts_as_zero(mod):
    conn = fresh()
    mod.insert_rows(conn, SQL, [(1, "a", 1), (2, "b", 2)])
    n = mod.insert_rows(conn, SQL + " ON CONFLICT (a) DO NOTHING", [(1, "x", 0), (3, "c", 3), (2, "y", 0), (4, "d", 4)])
    assert n == 2
    assert [r[0] for r in conn.execute("SELECT a FROM t ORDER BY a")] == [1, 2, 3, 4]
    assert conn.execute("SELECT b FROM t WHERE a = 1").fetchone() == ("a",)


def test_empty_rows_do_nothing(mod):
    conn = fresh()
    assert mod.insert_rows(conn, "this is not even SQL", []) == 0


@pytest.mark.parametrize("rows,bad,errname,cls", [
    ([(1, "a", 1), (2, "b", 2), (1, "dup", 3), (4, "d", 4)], 2, "SQLITE_CONSTRAINT_PRIMARYKEY", sqlite3.IntegrityError),
    ([(1, "a", 1), (2, None, 2)], 1, "SQLITE_CONSTRAINT_NOTNULL", sqlite3.IntegrityError),
    ([("x", "a", 1)], 0, "SQLITE_MISMATCH", sqlite3.IntegrityError),
])
def test_failure_names_the_row_and_keeps_rows_before_it(mod, rows, bad, errname, cls):
    conn = fresh()
    with pytest.raises(cls) as ei:
        mod.insert_rows(conn, SQL, rows, 1000)
    exc = ei.value
    assert exc.row_index == 1000 + bad
    assert exc.sqlite_errorname == errname
    assert [r[0] for r in conn.execute("SELECT a FROM t ORDER BY rowid")] == [r[0] for r in rows[:bad]]


def test_check_and_foreign_key_failures(mod):
    conn = fresh("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT CHECK (length(b) < 3), c INTEGER REFERENCES p(id))")
    conn.execute("INSERT INTO p VALUES (7)")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed") as ei:
        mod.insert_rows(conn, SQL, [(1, "ok", 7), (2, "long", 7)])
    assert ei.value.row_index == 1 and ei.value.sqlite_errorname == "SQLITE_CONSTRAINT_CHECK"
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed") as ei:
        mod.insert_rows(conn, SQL, [(3, "ok", 8)])
    assert ei.value.row_index == 0


@pytest.mark.parametrize("rows,exc,msg", [
    ([(1, "a", 1), (2, "b", object())], TypeError, "row 1 column 2: cannot bind object"),
    ([(1, "a", 1 << 63)], OverflowError, "row 0 column 2: 9223372036854775808 does not fit"),
    ([(1, "a\ud800", 1)], ValueError, "row 0 column 1: text is not encodable"),
    ([(1, "a", 1), [2, "b", 2]], TypeError, "row 1: expected a tuple, got list"),
    ([(1, "a", 1), (2, "b")], ValueError, "row 1 has 2 values, row 0 has 3"),
    ([(1, "a", 1.0j)], TypeError, "cannot bind complex"),
    ([(1, "a", bytearray(b"x"))], TypeError, "cannot bind bytearray"),
])
def test_bad_values_are_refused_before_anything_is_written(mod, rows, exc, msg):
    conn = fresh()
    with pytest.raises(exc, match=msg.replace("(", r"\(")):
        mod.insert_rows(conn, SQL, rows)
    assert table(conn) == []


@pytest.mark.parametrize("args,exc", [
    (("not a connection", SQL, []), TypeError),
    ((None, SQL, [(1, "a", 1)]), TypeError),
    (("CONN", b"INSERT", [(1, "a", 1)]), TypeError),
    (("CONN", SQL, {(1, "a", 1)}), TypeError),
    (("CONN", SQL, [(1, "a", 1)], -1), ValueError),
    (("CONN", SQL, [(1, "a", 1)], 1.0), ValueError),
])
def test_bad_arguments(mod, args, exc):
    conn = fresh()
    args = tuple(conn if a == "CONN" else a for a in args)
    with pytest.raises(exc):
        mod.insert_rows(*args)
    with pytest.raises(TypeError, match="on_release must be callable"):
        mod.insert_rows(conn, SQL, [(1, "a", 1)], 0, 42)


@pytest.mark.parametrize("sql", [
    "INSERT INTO t (a, b, c) VALUES (?, ?)",               # parameter count
    "INSERT INTO t (a, b, c) VALUES (?, ?, ?); SELECT 1",  # two statements
    "INSERT INTO nowhere VALUES (?, ?, ?)",                # prepare error
    "INSRT INTO t VALUES (?, ?, ?)",                       # syntax
    "SELECT ?, ?, ?",                                      # not DML
    "   ",
    "INSERT INTO t (a, b, c) VALUES (?, ?, ?) RETURNING a",
    "  insert into t (a, b, c) values (?, ?, ?) -- trailing comment",
    "REPLACE INTO t (a, b, c) VALUES (?, ?, ?)",
    "UPDATE t SET b = ? WHERE a = ? OR c = ?",
    "DELETE FROM t WHERE a = ? OR b = ? OR c = ?",
])
def test_odd_sql_behaves_as_in_the_twin(sql):
    native, python = both("sqlitebulk")
    rows = [(1, "a", 1), (2, "b", 2)]
    results = []
    for m in (native, python):
        conn = fresh()
        conn.execute("INSERT INTO t VALUES (1, 'a', 0)")
        results.append((outcome(m, conn, sql, rows), table(conn)))
    assert results[0] == results[1]


def test_closed_connection(mod):
    conn = fresh()
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        mod.insert_rows(conn, SQL, [(1, "a", 1)])


def test_runs_inside_the_callers_transaction(mod):
    conn = fresh()
    conn.execute("BEGIN")
    mod.insert_rows(conn, SQL, [(1, "a", 1), (2, "b", 2)])
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    assert table(conn) == []


def test_on_release_is_called_once_before_writing(mod):
    conn = fresh()
    seen = []
    mod.insert_rows(conn, SQL, [(1, "a", 1), (2, "b", 2)], 0, lambda: seen.append(conn.total_changes))
    assert seen == [0]
    seen.clear()
    with pytest.raises(TypeError):
        mod.insert_rows(conn, SQL, [(3, "a", object())], 0, lambda: seen.append(1))
    assert seen == []


def test_runs_on_a_worker_thread_like_aiosqlite(mod):
    conn_box, out = [], []

    def work():
        conn = fresh()
        conn_box.append(conn)
        out.append(mod.insert_rows(conn, SQL, [(i, str(i), i) for i in range(5000)]))
        out.append(conn.execute("SELECT count(*), sum(a) FROM t").fetchone())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out == [5000, (5000, sum(range(5000)))]


def test_native_backend_uses_the_c_api():
    native, python = both("sqlitebulk")
    assert "twin" in python.backend()
    if os.environ.get("DATAFLOW_REQUIRE_NATIVE") == "1":
        # on the machines CI runs, _sqlite3 links libsqlite3 dynamically: the fast path must be live
        assert native.backend().startswith("sqlite3 C API"), native.backend()


# -- hypothesis parity ---------------------------------------------------------------------------
values = st.one_of(st.none(), st.integers(min_value=I64[0], max_value=I64[1]), st.booleans(),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.text(st.characters(codec="utf-8"), max_size=8), st.binary(max_size=8),
                   st.integers(min_value=1 << 63, max_value=1 << 64), st.sampled_from(["\ud800", 1j]))
rows_st = st.lists(st.tuples(st.integers(min_value=0, max_value=12), st.one_of(st.none(), st.text(max_size=4)),
                             values), max_size=25)


@settings(max_examples=int(os.environ.get("SQLITEBULK_PARITY_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_st, start=st.integers(min_value=0, max_value=10**6),
       conflict=st.sampled_from(["", " ON CONFLICT (a) DO NOTHING", " ON CONFLICT (a) DO UPDATE SET c = excluded.c"]))
def test_parity(rows, start, conflict):
    native, python = both("sqlitebulk")
    results = []
    for m in (native, python):
        conn = fresh("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL, c ANY) STRICT")
        conn.execute("BEGIN")
        results.append((outcome(m, conn, SQL + conflict, rows, start), table(conn)))
        conn.execute("ROLLBACK")
    assert results[0] == results[1]
