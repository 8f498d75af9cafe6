"""Values to and from MySQL's text protocol: parameter literals and result converters.

aiomysql interpolates parameters on the client (pymysql's escape functions) and parses result
text with pymysql's converters.  Both are right, and slow for the types every row of a model
carries: pymysql formats a datetime with ``str.format`` over eight fields (3.5 us) and parses one
with a regular expression (3.4 us), where ``datetime.isoformat`` / ``fromisoformat`` do the same
in C (0.1-0.5 us).  A model row has two managed timestamps, so this is ~7 us of every point read
and every create (issue 22's profile).  The text on the wire and the values handed back are the
same as pymysql's; anything this module has no fast path for goes to pymysql's own functions.
"""

from __future__ import annotations

import datetime as _dt

from pymysql import converters as _c
from pymysql.constants import FIELD_TYPE

_datetime_from = _dt.datetime.fromisoformat
_date_from = _dt.date.fromisoformat


def _datetime(text: str):
    """DATETIME/TIMESTAMP text (``YYYY-MM-DD HH:MM:SS[.ffffff]``) -> naive datetime; what
    fromisoformat refuses (zero dates, out of range) is pymysql's to answer (it returns the text)."""
    try:
        return _datetime_from(text)
    except ValueError:
        return _c.convert_datetime(text)


def _date(text: str):
    try:
        return _date_from(text)
    except ValueError:
        return _c.convert_date(text)


#: the ``conv`` every connection of the driver is opened with
DECODERS = {**_c.decoders, FIELD_TYPE.DATETIME: _datetime, FIELD_TYPE.TIMESTAMP: _datetime,
            FIELD_TYPE.DATE: _date}


def _lit_str(con, v):
    return "'" + con.escape_string(v) + "'"  # honours NO_BACKSLASH_ESCAPES, like con.escape


def _lit_int(con, v):
    return int.__repr__(v)


def _lit_bool(con, v):
    return "1" if v else "0"


def _lit_datetime(con, v):
    if v.tzinfo is not None:
        return con.escape(v)  # pymysql drops the offset: keep its exact behaviour
    return "'" + v.isoformat(" ") + "'"  # pymysql's format: microseconds only when non-zero


def _lit_date(con, v):
    return "'" + v.isoformat() + "'"


def _lit_none(con, v):
    return "NULL"


def _lit_float(con, v):
    return _c.escape_float(v)


_LITERAL = {str: _lit_str, int: _lit_int, bool: _lit_bool, float: _lit_float, type(None): _lit_none,
            _dt.datetime: _lit_datetime, _dt.date: _lit_date}


def literal(con, v) -> str:
    """``v`` as SQL text for connection ``con`` (exact types only; subclasses and every other
    type through ``con.escape``, pymysql's own)."""
    f = _LITERAL.get(type(v))
    return con.escape(v) if f is None else f(con, v)


def interpolate(con, sql: str, params) -> str:
    """``sql`` with its ``%s`` markers replaced by the literals of ``params`` -- what aiomysql's
    ``cursor.execute(sql, params)`` sends (``%%`` becomes ``%``); without params ``sql`` is sent
    as it is, as the cursor does."""
    if not params:
        return sql
    return sql % tuple([literal(con, v) for v in params])
