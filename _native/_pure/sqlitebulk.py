"""Pure-Python twin of ``_native.sqlitebulk``: many rows through one prepared SQLite INSERT.

Here it is ``sqlite3.Cursor.executemany`` with the same up-front checks, plus the index of the
row that failed (read from how many rows executemany had pulled).  The compiled module gives the
same results, the same exceptions and leaves the table in the same state; it differs only in
binding and stepping without the GIL.  The helpers below are shared with it.
"""

from __future__ import annotations

import sqlite3

_PRIMARY = ("OK", "ERROR", "INTERNAL", "PERM", "ABORT", "BUSY", "LOCKED", "NOMEM", "READONLY", "INTERRUPT",
            "IOERR", "CORRUPT", "NOTFOUND", "FULL", "CANTOPEN", "PROTOCOL", "EMPTY", "SCHEMA", "TOOBIG",
            "CONSTRAINT", "MISMATCH", "MISUSE", "NOLFS", "AUTH", "FORMAT", "RANGE", "NOTADB", "NOTICE",
            "WARNING")
#: result code -> name, as pysqlite sets ``sqlite_errorname`` (extended codes are all > 255, so
#: they never collide with the authorizer constants the module also exports)
_NAMES = {i: f"SQLITE_{n}" for i, n in enumerate(_PRIMARY)}
_NAMES.update({v: n for n in dir(sqlite3) if n.startswith("SQLITE_")
               for v in [getattr(sqlite3, n)] if type(v) is int and v > 255})
_INT64 = (-(1 << 63), (1 << 63) - 1)
_WS = " \t\n\r\f"


def backend() -> str:
    """Which path ``insert_rows`` takes here."""
    return "pysqlite executemany (pure-Python twin)"


def _check(connection, sql, rows, start, on_release):
    """Argument checks shared by both implementations -> (rows as a tuple, row width)."""
    if not isinstance(connection, sqlite3.Connection):
        raise TypeError(f"connection must be a sqlite3.Connection, got {type(connection).__name__}")
    if type(sql) is not str:
        raise TypeError(f"sql must be a str, got {type(sql).__name__}")
    if type(rows) is not list and type(rows) is not tuple:
        raise TypeError(f"rows must be a list or tuple of tuples, got {type(rows).__name__}")
    if type(start) is not int or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    if on_release is not None and not callable(on_release):
        raise TypeError(f"on_release must be callable or None, got {type(on_release).__name__}")
    rows = tuple(rows)       # the compiled side borrows pointers into these rows: pin them
    width = 0
    for i, row in enumerate(rows):
        if type(row) is not tuple:
            raise TypeError(f"row {start + i}: expected a tuple, got {type(row).__name__}")
        if i == 0:
            width = len(row)
        elif len(row) != width:
            raise ValueError(f"row {start + i} has {len(row)} values, row {start} has {width}; "
                             "every row must have one value per parameter")
    return rows, width


def _bad_value(index, col, value):
    """The error for a value that is not None/int/float/str/bytes or cannot be bound."""
    t = type(value)
    where = f"row {index} column {col}"
    if t is int or t is bool:
        return OverflowError(f"{where}: {value} does not fit SQLite's 64-bit INTEGER")
    if t is str:
        return ValueError(f"{where}: text is not encodable as UTF-8 (lone surrogate)")
    return TypeError(f"{where}: cannot bind {t.__name__}; coerce values to None, int, float, str or "
                     "bytes first")


def _values(rows, start):
    lo, hi = _INT64
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            t = type(x)
            if x is None or t is float or t is bytes:
                continue
            if t is int or t is bool:
                if lo <= x <= hi:
                    continue
            elif t is str:
                try:
                    x.encode("utf-8")
                    continue
                except UnicodeEncodeError:
                    pass
            raise _bad_value(start + i, j, x)


def _plain_dml(sql: str) -> bool:
    """One of the statements the compiled path runs itself (others go through pysqlite)."""
    head = sql.lstrip(_WS)[:7].upper()
    return head.startswith(("INSERT", "REPLACE", "UPDATE", "DELETE"))


def _blank(tail: bytes) -> bool:
    return not tail.strip(_WS.encode())


def _error(code, extended, message, row_index):
    """The exception pysqlite raises for SQLite result ``code`` (class chosen as pysqlite does)."""
    primary = code & 0xFF
    if primary in (2, 12):                       # INTERNAL, NOTFOUND
        cls = sqlite3.InternalError
    elif primary == 7:                           # NOMEM
        return MemoryError()
    elif primary in (1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17):
        cls = sqlite3.OperationalError
    elif primary == 18:                          # TOOBIG
        cls = sqlite3.DataError
    elif primary in (19, 20):                    # CONSTRAINT, MISMATCH
        cls = sqlite3.IntegrityError
    elif primary in (21, 25):                    # MISUSE, RANGE
        cls = sqlite3.InterfaceError
    else:
        cls = sqlite3.DatabaseError
    exc = cls(message)
    exc.sqlite_errorcode = extended
    exc.sqlite_errorname = _NAMES.get(extended)
    exc.row_index = row_index
    return exc


def insert_rows(connection, sql, rows, start=0, on_release=None):
    """Execute ``sql`` once per row; return the summed change count; see the stub."""
    rows, width = _check(connection, sql, rows, start, on_release)
    if not rows:
        return 0
    _values(rows, start)
    if on_release is not None:
        on_release()
    pulled = 0

    def feed():
        nonlocal pulled
        for row in rows:
            pulled += 1          # executemany pulls a row only after the previous one finished
            yield row

    try:
        cur = connection.executemany(sql, feed())
    except sqlite3.Error as exc:
        exc.row_index = start + pulled - 1 if pulled else None
        raise
    try:
        return cur.rowcount
    finally:
        cur.close()
