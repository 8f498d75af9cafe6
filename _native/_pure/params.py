"""Pure-Python twin of ``_native.params``: value coercion/binding per dialect and row decoding.

Kinds and dialects are small ints so the compiled version can switch on them.  Coercion is
strict (no bool-as-int, no float truncation, range checks, NUL refusal, aware datetimes) and
raises TypeError/ValueError with a message the caller prefixes with the field path.
"""

from __future__ import annotations

import datetime as _dt
import math
import uuid as _uuid
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

import orjson

from . import _plan

INT, FLOAT, BOOL, STR, BYTES, DATETIME, DATE, DECIMAL, UUID, JSON, VECTOR = range(1, 12)
KIND_NAMES = {INT: "int", FLOAT: "float", BOOL: "bool", STR: "str", BYTES: "bytes",
              DATETIME: "datetime", DATE: "date", DECIMAL: "Decimal", UUID: "UUID",
              JSON: "JSON", VECTOR: "vector"}
POSTGRESQL, MYSQL, SQLITE = 1, 2, 3

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
MYSQL_DECIMAL_SCALE = 30
MYSQL_DECIMAL_INT_DIGITS = 35
_UTC = _dt.timezone.utc
# Exact arithmetic for decode normalisation: the default context (28 digits) would round the
# 65-digit values MySQL DECIMAL(65,30) returns, silently.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _tname(v) -> str:
    return type(v).__name__


def _check_text(v: str) -> str:
    if "\x00" in v:
        raise ValueError("NUL character (\\x00) is not allowed in text")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text contains a lone surrogate and is not valid Unicode") from None
    return v


def _check_json(v, depth: int = 0):
    """Reject what JSON cannot carry faithfully: NaN/inf, NUL, non-str keys, odd types."""
    if depth > 64:
        raise ValueError("JSON value nested deeper than 64 levels")
    t = type(v)
    if t is str:
        _check_text(v)
    elif t is float:
        if not math.isfinite(v):
            raise ValueError("NaN and Infinity cannot be stored in JSON")
    elif t is dict:
        for k, item in v.items():
            if type(k) is not str:
                raise TypeError(f"JSON object keys must be str, got {_tname(k)}")
            _check_text(k)
            _check_json(item, depth + 1)
    elif t is list or t is tuple:
        for item in v:
            _check_json(item, depth + 1)
    elif v is None or t is bool or t is int:
        pass
    else:
        raise TypeError(f"{_tname(v)} is not JSON-serializable (use dict, list, str, int, float, bool or None)")


def coerce(value, kind: int, dialect: int):
    """Check ``value`` against ``kind`` and convert it to what ``dialect``'s driver binds.

    ``None`` passes through (NOT NULL is the database's job).
    """
    if value is None:
        return None
    t = type(value)
    if kind == INT:
        if t is not int:
            if isinstance(value, int) and t is not bool:
                value = int(value)
            else:
                raise TypeError(f"expected int, got {_tname(value)}")
        if value < INT64_MIN or value > INT64_MAX:
            raise ValueError("integer out of range for a 64-bit column")
        return value
    if kind == STR:
        if t is not str:
            raise TypeError(f"expected str, got {_tname(value)}")
        return _check_text(value)
    if kind == FLOAT:
        if t is float:
            pass
        elif t is int:
            try:
                value = float(value)
            except OverflowError:
                raise ValueError("integer too large to convert to float") from None
        else:
            raise TypeError(f"expected float, got {_tname(value)}")
        if dialect != POSTGRESQL and not math.isfinite(value):
            raise ValueError("NaN and Infinity cannot be stored faithfully on this database")
        return value
    if kind == BOOL:
        if t is not bool:
            raise TypeError(f"expected bool, got {_tname(value)}")
        if dialect == POSTGRESQL:
            return value
        return 1 if value else 0
    if kind == DATETIME:
        if not isinstance(value, _dt.datetime):
            raise TypeError(f"expected datetime, got {_tname(value)}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime (no tzinfo); attach a timezone, e.g. datetime.now(timezone.utc)")
        if dialect == POSTGRESQL:
            return value
        try:
            utc = value.astimezone(_UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("datetime out of range when converted to UTC") from None
        if dialect == MYSQL:
            return utc
        return utc.isoformat(timespec="microseconds") + "+00:00"
    if kind == JSON:
        _check_json(value)
        return orjson.dumps(value).decode()
    if kind == DECIMAL:
        if t is int:
            value = Decimal(value)
        elif not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal or int, got {_tname(value)} (floats are inexact; use Decimal)")
        if not value.is_finite():
            if dialect == POSTGRESQL and value.is_nan():
                return value
            raise ValueError("non-finite Decimal cannot be stored on this database")
        if dialect == MYSQL:
            sign, digits, exp = value.as_tuple()
            if exp < -MYSQL_DECIMAL_SCALE:
                raise ValueError(f"Decimal has more than {MYSQL_DECIMAL_SCALE} digits after the point")
            if len(digits) + exp > MYSQL_DECIMAL_INT_DIGITS:
                raise ValueError(f"Decimal has more than {MYSQL_DECIMAL_INT_DIGITS} digits before the point")
            return value
        if dialect == SQLITE:
            return str(value)
        return value
    if kind == UUID:
        if isinstance(value, _uuid.UUID):
            u = value
        elif t is str:
            try:
                u = _uuid.UUID(value)
            except ValueError:
                raise ValueError("not a valid UUID string") from None
        else:
            raise TypeError(f"expected UUID, got {_tname(value)}")
        if dialect == POSTGRESQL:
            return u
        return str(u)
    if kind == DATE:
        if t is _dt.datetime or not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
            raise TypeError(f"expected date, got {_tname(value)}")
        if dialect == SQLITE:
            return value.isoformat()
        return value
    if kind == BYTES:
        if t is bytes:
            return value
        if t is bytearray or t is memoryview:
            return bytes(value)
        raise TypeError(f"expected bytes, got {_tname(value)}")
    if kind == VECTOR:
        # float32 little-endian on every dialect: the BLOB stored by SQLite/MySQL (and by
        # PostgreSQL without pgvector); the pgvector codec turns it into `vector` on the wire.
        return _vector().pack(value)
    raise ValueError(f"unknown kind {kind!r}")


def coerce_row(values, kinds, dialect: int, names) -> list:
    """Coerce one row; errors are prefixed with the field name: ``field 'age': expected int``."""
    out = []
    for i in range(len(kinds)):
        try:
            out.append(coerce(values[i], kinds[i], dialect))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"field {names[i]!r}: {exc}") from None
    return out


def coerce_rows(rows, kinds, dialect: int, names, start_index: int = 0) -> list:
    """Coerce many rows (sequences aligned with ``kinds``) into one flat parameter list.

    Errors say ``row {i}, field 'x': ...`` and carry ``.row_index`` (i counts from
    ``start_index``) so bulk loaders can report the failing row exactly.
    """
    out = []
    width = len(kinds)
    for r, row in enumerate(rows):
        if len(row) != width:
            exc = ValueError(f"row {start_index + r}: expected {width} values, got {len(row)}")
            exc.row_index = start_index + r
            raise exc
        for i in range(width):
            try:
                out.append(coerce(row[i], kinds[i], dialect))
            except (TypeError, ValueError) as exc:
                err = type(exc)(f"row {start_index + r}, field {names[i]!r}: {exc}")
                err.row_index = start_index + r
                raise err from None
    return out


def decode(value, kind: int, dialect: int):
    """Turn what ``dialect``'s driver returned for ``kind`` back into the Python type."""
    if value is None:
        return None
    if kind == BOOL:
        return bool(value)
    if kind == DATETIME:
        if type(value) is str:
            value = _dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value
    if kind == JSON:
        if type(value) is str or type(value) is bytes:
            return orjson.loads(value)
        return value
    if kind == UUID:
        if type(value) is _uuid.UUID:
            return value
        return _uuid.UUID(str(value))
    if kind == DATE:
        if type(value) is str:
            return _dt.date.fromisoformat(value)
        return value
    if kind == DECIMAL:
        if type(value) is not Decimal:
            value = Decimal(str(value)) if type(value) is not float else Decimal(repr(value))
        if dialect == MYSQL:
            # DECIMAL(65,30) pads 30 fractional digits: drop the padding, keep the value.
            if value == value.to_integral_value():
                return value.quantize(Decimal(1), context=_EXACT)
            return value.normalize(_EXACT)
        return value
    if kind == FLOAT:
        return float(value)
    if kind == BYTES:
        # only buffers become bytes: bytes(<int>) would allocate that many zero bytes
        t = type(value)
        return bytes(value) if t is bytearray or t is memoryview else value
    if kind == VECTOR:
        return _decode_vector(value)
    return value


def _decode_vector(value):
    """float32 blob (or pgvector text ``[1,2,3]``) -> list of float; other types pass through."""
    t = type(value)
    if t is bytes or t is bytearray or t is memoryview:
        return _vector().unpack(value)
    if t is str:
        text = value.strip()
        if len(text) < 2 or text[0] != "[" or text[-1] != "]":
            raise ValueError("vector text must look like [1,2,3]")
        # Round through float32 so text and blob reads give the same floats.
        return _vector().unpack(_vector().pack([float(x) for x in text[1:-1].split(",")]))
    return value


_VECTOR_MODULE = None


def _vector():
    """The vector twin (imported on first use: most rows have no vectors)."""
    global _VECTOR_MODULE
    if _VECTOR_MODULE is None:
        from . import vector
        _VECTOR_MODULE = vector
    return _VECTOR_MODULE


def needs_decode(kind: int, dialect: int) -> bool:
    """Whether values of ``kind`` come back from ``dialect`` in a type that needs converting."""
    if kind in (INT, STR):
        return False
    if kind == VECTOR:
        return True
    if dialect == POSTGRESQL:
        return kind in (JSON, UUID)
    if dialect == MYSQL:
        return kind not in (BYTES, DATE)
    return True


def decode_rows(rows, names, kinds, dialect: int) -> list:
    """Rows (positional sequences) -> list of dicts with Python values, one pass."""
    plan = [(i, names[i], kinds[i] if needs_decode(kinds[i], dialect) else 0) for i in range(len(names))]
    out = []
    for row in rows:
        d = {}
        for i, name, kind in plan:
            v = row[i]
            d[name] = decode(v, kind, dialect) if kind and v is not None else v
        out.append(d)
    return out


# -- planned items -------------------------------------------------------------------------------
def coerce_plan(items, kinds, dialect, sources, defaults, width, start=0, *, shapes=None):
    """Source items + a per-column plan -> (list of coerced row tuples, stop); see the stub."""
    d = dialect
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind codes, not str")
    ks = tuple(kinds)
    ncols = len(ks)
    for k in ks:
        if not any(k == x for x in KIND_NAMES):
            raise ValueError(f"unknown kind {k!r}")
    srcs, defs, shp = _plan.check_args(ncols, "kinds", sources, defaults, width, shapes, items, start)

    def taken(j, v):
        if shp is not None and v is not None and shp[j] is not None and type(v) not in shp[j]:
            raise _plan.Skip
        return None if v is None else coerce(v, ks[j], d)

    consts = {}

    def filled(j):
        """-> the coerced default of column j (a constant is coerced once per call)."""
        df = defs[j]
        if df is None:
            raise _plan.Skip
        if df[0] == "call":
            v = df[1]()
            return None if v is None else coerce(v, ks[j], d)
        if j not in consts:
            consts[j] = None if df[1] is None else coerce(df[1], ks[j], d)
        return consts[j]

    out = []
    stop = _plan.walk(items, start, srcs, width, taken, filled, tuple, out)
    return out, stop


# -- LOAD DATA text ------------------------------------------------------------------------------
_TSV_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"})


def _tsv_value(v, kind):
    if type(v) is str and not v.isascii():
        v.encode("utf-8")   # a lone surrogate raises here, naming its position in the value
    if kind == STR or kind == JSON:
        if type(v) is not str:
            raise TypeError(f"expected str for {KIND_NAMES[kind]}, got {_tname(v)}")
        return v.translate(_TSV_ESC)
    if kind == FLOAT:
        return repr(v)
    if kind == BYTES or kind == VECTOR:
        return v.hex() if isinstance(v, (bytes, bytearray)) else bytes(v).hex()
    if kind == DATETIME:
        return v.isoformat(" ")
    if kind == DECIMAL:
        return format(v, "f") if isinstance(v, Decimal) else str(v)
    return str(v)


def tsv_rows(rows, kinds) -> bytes:
    """Rows of ``coerce(..., MYSQL)`` values -> LOAD DATA text (UTF-8 bytes); see the stub."""
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind codes, not str")
    ks = tuple(kinds)
    w = len(ks)
    codes = []
    for k in ks:
        code = next((x for x in KIND_NAMES if k == x), None)
        if code is None:
            raise ValueError(f"unknown kind {k!r}")
        codes.append(code)
    lines = []
    for i, row in enumerate(rows):
        if len(row) != w:
            raise ValueError(f"row {i}: expected {w} values, got {len(row)}")
        lines.append("\t".join(["\\N" if v is None else _tsv_value(v, k) for v, k in zip(row, codes)]) + "\n")
    return "".join(lines).encode("utf-8")
