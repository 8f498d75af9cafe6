"""Typed contract of ``_native.sqlitebulk`` (compiled) and ``_native._pure.sqlitebulk`` (twin).

Many rows through one prepared SQLite statement.  The compiled module binds and steps with the
GIL released, so the caller's other threads (the event loop preparing the next batch) run
meanwhile; the twin is ``sqlite3.Cursor.executemany``.  Results, exceptions and the table state
after a failure are the same in both.
"""

import sqlite3
from typing import Callable, Sequence

def backend() -> str:
    """Which path ``insert_rows`` takes on this interpreter: SQLite's C API (compiled module with
    the library found), or pysqlite's ``executemany`` -- and why."""

def insert_rows(connection: sqlite3.Connection, sql: str, rows: Sequence[tuple], start: int = 0,
                on_release: Callable[[], object] | None = None) -> int:
    """Execute ``sql`` (one INSERT/REPLACE/UPDATE/DELETE with ``?`` parameters) once per row, on
    ``connection``'s thread, inside whatever transaction the caller holds; return the summed
    ``changes()`` (rows an ``ON CONFLICT DO NOTHING`` skipped count 0).

    Values must be ``None``, ``int``/``bool`` (64-bit), ``float``, ``str`` or ``bytes`` -- checked
    for every row before anything runs: ``TypeError`` (other type, a row that is not a tuple),
    ``OverflowError`` (int past 64 bits), ``ValueError`` (unencodable text, rows of differing
    width, negative ``start``), each naming ``row start+i column j``.

    A SQLite error at row ``i`` raises the exception pysqlite raises (same class, message,
    ``sqlite_errorcode`` and ``sqlite_errorname``) with ``row_index = start + i`` (``None`` when
    the statement itself failed); rows before ``i`` stay written -- the caller's transaction or
    savepoint decides their fate.  SQL that is not one plain DML statement of ``len(row)``
    parameters runs through pysqlite and fails (or succeeds) exactly as in the twin.

    ``on_release`` is called (in the calling thread) once every value is checked, just before
    the long phase: from then on the compiled module holds no GIL, so a caller that waits for
    this signal before doing its own Python work gets true overlap.  The twin calls it before
    ``executemany``.  It is not called when the checks fail or no row is given.

    >>> insert_rows(conn, "INSERT INTO t (a, b) VALUES (?, ?)", [(1, "x"), (2, None)])
    2
    """
