"""Value binding per dialect and row decoding: the contract of ``_native.params``.

Both implementations (``_native/params.pyx`` and ``_native/_pure/params.py``) honour it: same
names, signatures, results, exception types and messages.  It knows nothing about DataFlow: a
value, a kind code and a dialect code in; the value the driver should bind out, or
``TypeError``/``ValueError`` whose message the caller prefixes with the field path.  It exists
because every write binds every value and every read decodes every value, so it must be strict
(never truncate, never shift a time zone, never round) and cheap.

Kinds and dialects are small ints so the compiled version can switch on them in C.  Other
objects are compared with ``==`` (``1.0`` is INT); an unknown kind is a ValueError on coerce and
a pass-through on decode; an unknown dialect behaves as "not PostgreSQL, not MySQL".

Example::

    from dataflow._native import load
    params = load("params")
    params.coerce_row([7, "Ann", True], (params.INT, params.STR, params.BOOL), params.SQLITE,
                      ("id", "name", "active"))            # -> [7, "Ann", 1]
"""

from collections.abc import Iterable, Sequence
from typing import Any, Final

INT: Final = 1
FLOAT: Final = 2
BOOL: Final = 3
STR: Final = 4
BYTES: Final = 5
DATETIME: Final = 6
DATE: Final = 7
DECIMAL: Final = 8
UUID: Final = 9
JSON: Final = 10
VECTOR: Final = 11
#: Kind code -> the Python type name used in messages and docs.
KIND_NAMES: dict[int, str]
POSTGRESQL: Final = 1
MYSQL: Final = 2
SQLITE: Final = 3
#: Integer columns are 64-bit on every dialect; outside this range is a ValueError, not a wrap.
INT64_MIN: Final[int]
INT64_MAX: Final[int]
#: MySQL DECIMAL(65,30): more fractional / integer digits than these is refused, not rounded.
MYSQL_DECIMAL_SCALE: Final = 30
MYSQL_DECIMAL_INT_DIGITS: Final = 35

def coerce(value: Any, kind: int, dialect: int) -> Any:
    """Check ``value`` against ``kind`` and convert it to what ``dialect``'s driver binds.

    ``None`` passes through (NOT NULL is the database's job).  Strict on purpose, because the
    server or driver would otherwise guess:

    - INT: ``int`` (int subclasses such as IntEnum become int); ``bool``/``float``/``str`` are
      TypeError; outside int64 is ValueError.
    - FLOAT: ``float`` or ``int``; NaN/inf are ValueError except on PostgreSQL (SQLite would
      store NaN as NULL); an int too large for a double is ValueError.
    - BOOL: ``bool`` only; bound as 1/0 off PostgreSQL.
    - STR: exact ``str``; NUL is ValueError (PostgreSQL refuses it, others truncate or keep it
      inconsistently); lone surrogates are ValueError (not encodable as UTF-8).
    - BYTES: ``bytes``, ``bytearray``, ``memoryview`` -> ``bytes``.
    - DATETIME: aware ``datetime`` only (naive is ValueError: the client's local zone must never
      leak in).  PostgreSQL binds it as given (TIMESTAMPTZ keeps the instant); MySQL gets naive
      UTC; SQLite gets ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` so text order is time order.  An
      instant outside years 1..9999 in UTC is ValueError.
    - DATE: ``date`` but not ``datetime``; ISO text on SQLite.
    - DECIMAL: ``Decimal`` or ``int`` (floats are inexact: TypeError); NaN only on PostgreSQL;
      MySQL refuses more than 30 fractional or 35 integer digits; SQLite binds ``str(value)``.
    - UUID: ``uuid.UUID`` or a string ``uuid.UUID`` accepts; canonical lowercase text off
      PostgreSQL.
    - JSON: dict/list/tuple/str/int/float/bool/None only, nested at most 64 deep, str keys, no
      NaN/inf, no NUL or surrogates anywhere; bound as compact JSON text (orjson).
    - VECTOR: a sequence of real numbers (not bools) or a 1-D float32/float64 buffer (numpy
      array; ``bytes`` are read as a float32 little-endian blob) -> ``bytes``, float32
      little-endian, on every dialect -- the compact BLOB on SQLite/MySQL and on PostgreSQL
      without pgvector; with pgvector the connection's ``vector`` codec sends the same bytes as
      ``vector(n)`` (``dataflow.vector.pgcodec``).  Empty, NaN/inf or out-of-float32-range
      components are ValueError, a non-number component TypeError (``_native.vector.pack``'s
      checks and messages).  The dimension is the model's business, checked before coerce.

    >>> coerce(True, BOOL, SQLITE)
    1
    """

def coerce_row(values: Sequence[Any], kinds: Sequence[int], dialect: int, names: Sequence[str]) -> list[Any]:
    """Coerce one row (``values[i]`` against ``kinds[i]``).

    Errors keep their type and are prefixed with the field name so the caller can report it
    without knowing positions: ``TypeError("field 'age': expected int, got str")``.
    """

def coerce_rows(rows: Iterable[Sequence[Any]], kinds: Sequence[int], dialect: int,
                names: Sequence[str], start_index: int = 0) -> list[Any]:
    """Coerce many rows into one flat parameter list (for a multi-row ``VALUES``).

    Errors say ``row {i}, field 'x': ...`` (a wrong row width: ``row {i}: expected n values, got
    m``) and carry ``.row_index`` (counting from ``start_index``) so bulk loaders can report the
    failing input row exactly.  Exceptions raised by the ``rows`` iterable itself propagate.
    """

def decode(value: Any, kind: int, dialect: int) -> Any:
    """Turn what ``dialect``'s driver returned for ``kind`` back into the Python type.

    ``None`` stays ``None``.  Datetimes come back aware (naive driver values are UTC, as they were
    stored); MySQL decimals lose DECIMAL(65,30)'s zero padding exactly (never rounded); JSON text
    is parsed; UUID text becomes ``uuid.UUID``.  VECTOR: a float32 blob (bytes/bytearray/memoryview)
    or pgvector text ``[1,2,3]`` becomes a list of float (text rounded through float32 so both
    give the same floats); other types pass through.  Undecodable text raises the parser's error.
    """

def needs_decode(kind: int, dialect: int) -> bool:
    """Whether values of ``kind`` come back from ``dialect`` in a type that needs converting.

    ``decode_rows`` skips the rest, so reads pay only for the columns that need work.
    """

def decode_rows(rows: Iterable[Sequence[Any]], names: Sequence[str], kinds: Sequence[int],
                dialect: int) -> list[dict[str, Any]]:
    """Positional rows (tuples, ``sqlite3.Row``, asyncpg ``Record``) -> dicts keyed by ``names``.

    One pass with a plan computed once per call (which columns need decoding); ``None`` values
    are kept as ``None``; errors from decoding propagate unchanged.
    """

def _check_text(v: str) -> str:
    """Return ``v``; ValueError if it holds NUL (checked first) or a lone surrogate.

    Shared with ``_native.filters`` so text is refused the same way in filters and writes.
    """

def _check_json(v: Any, depth: int = 0) -> None:
    """Reject what JSON cannot carry faithfully: NaN/inf, NUL/surrogates, non-str keys, odd types,
    nesting deeper than 64 (``depth`` counts the levels already above ``v``).

    Shared with ``_native.filters`` (``$contains`` values).  Refusing here, before orjson, keeps
    the message the same whichever serializer runs.
    """

def coerce_plan(items: list[Any], kinds: Sequence[int], dialect: int, sources: Sequence[Any],
                defaults: Sequence[Any], width: int, start: int = 0, *,
                shapes: Sequence[tuple[type, ...] | None] | None = None) -> tuple[list[tuple[Any, ...]], int]:
    """Coerce source items straight from a per-column plan, stopping at the first item off the plan.

    The plan is the one of ``copybin.encode_plan``: column ``j`` takes the item's value at
    ``sources[j]`` (a position when ``width >= 0`` and items are tuples of exactly ``width``
    values; a key when ``width < 0`` and items are dicts), else ``defaults[j]`` (``("value", v)``,
    ``("call", f)`` or None for no default); ``shapes[j]`` (optional) are the exact types a
    non-None value taken from an item must have.  Values are coerced as by ``coerce``.

    Returns ``(rows, stop)``: one tuple of driver values per item of ``items[start:stop]`` and
    the index of the first item not taken (``len(items)`` when all were).  An item that is off the
    plan, misses a key without default, has an unknown key, whose factory raises or whose value
    ``coerce`` rejects stops it without raising: the caller reports it the slow, exact way.
    Bad arguments raise ValueError/TypeError.
    """

def tsv_rows(rows: Iterable[Sequence[Any]], kinds: Sequence[int]) -> bytes:
    """Rows of values as ``coerce(..., MYSQL)`` returns them -> ``LOAD DATA`` text, UTF-8.

    One line per row, fields separated by TAB, each line ending in LF; None is ``\\N``.  str and
    JSON (str) values have ``\\``, TAB, LF, CR and NUL backslash-escaped (a non-str is TypeError);
    float is ``repr``; bytes/vector are lowercase hex (load them through ``UNHEX``); datetime is
    ``isoformat(" ")``; Decimal is ``format(v, "f")``; everything else ``str(v)``.  A row whose
    length is not ``len(kinds)`` is ValueError ``"row {i}: expected {w} values, got {n}"``.
    Exists so the LOAD DATA file is written without a Python string per value.
    """
