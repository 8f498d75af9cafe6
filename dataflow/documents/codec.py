"""Model values <-> BSON, one field kind at a time.

Caller values are checked by the same coercion as on SQL (``_native.params`` for the
PostgreSQL code, which yields plain Python values), then stored as: ints and floats as BSON
numbers, ``bool``, ``str``, ``bytes`` (binary subtype 0), ``Decimal`` as Decimal128 (refused
when it has more than 34 significant digits: it would not come back equal), ``UUID`` as binary
subtype 4, JSON values as embedded documents/arrays, vectors as arrays of float32-rounded
numbers.  Datetimes are stored as UTC ISO-8601 text with microseconds (``2024-01-01T00:00:00.000001+00:00``,
text order is time order) and dates as ``YYYY-MM-DD``: a BSON date holds milliseconds only,
which would change the value and what filters match; every read gives aware UTC datetimes back.
"""

from __future__ import annotations

import datetime as _dt
import uuid as _uuid
from decimal import Decimal, Inexact, InvalidOperation

import orjson
from bson import Binary, Decimal128

from .. import _native

K = _native.load("params")
NATIVE = K.POSTGRESQL     # the coercion code whose results are plain Python values
_UTC = _dt.timezone.utc
_coerce = K.coerce


def encode(value, kind):
    """A caller's value -> the BSON value stored (TypeError/ValueError when it does not fit)."""
    if value is None:
        return None
    return from_native(_coerce(value, kind, NATIVE), kind)


def from_native(v, kind):
    """A value coerced for ``NATIVE`` (as ``db.load``'s row plans produce them) -> BSON."""
    if v is None:
        return None
    if kind == K.DATETIME:
        return v.astimezone(_UTC).isoformat(timespec="microseconds")
    if kind == K.DATE:
        return v.isoformat()
    if kind == K.DECIMAL:
        return _decimal128(v)
    if kind == K.UUID:
        return Binary.from_uuid(v if isinstance(v, _uuid.UUID) else _uuid.UUID(str(v)))
    if kind == K.JSON:
        return orjson.loads(v) if isinstance(v, (str, bytes)) else v
    if kind == K.VECTOR:
        return _native.load("vector").unpack(v) if isinstance(v, (bytes, bytearray, memoryview)) else list(v)
    return v


def _decimal128(v: Decimal):
    try:
        return Decimal128(v)
    except (Inexact, InvalidOperation, ArithmeticError):
        raise ValueError("Decimal has more than 34 significant digits or an exponent outside "
                         "Decimal128's range; MongoDB cannot store it exactly") from None


def decode(v, kind):
    """A stored BSON value -> the field's Python type."""
    if v is None:
        return None
    if kind == K.DATETIME:
        if isinstance(v, str):
            return _dt.datetime.fromisoformat(v)
        return v if v.tzinfo is not None else v.replace(tzinfo=_UTC)
    if kind == K.DATE:
        if isinstance(v, str):
            return _dt.date.fromisoformat(v)
        return v.date() if isinstance(v, _dt.datetime) else v
    if kind == K.DECIMAL:
        return v.to_decimal() if isinstance(v, Decimal128) else Decimal(str(v))
    if kind == K.UUID:
        if isinstance(v, _uuid.UUID):
            return v
        if isinstance(v, Binary):
            return v.as_uuid()
        return _uuid.UUID(str(v))
    if kind == K.BYTES:
        return bytes(v)
    if kind == K.FLOAT:
        return float(v)
    if kind == K.INT:
        return int(v)
    return v


#: BSON ``$type`` of each kind as stored (for partial unique indexes over nullable fields)
BSON_TYPE = {K.INT: "number", K.FLOAT: "number", K.BOOL: "bool", K.STR: "string", K.BYTES: "binData",
             K.DATETIME: "string", K.DATE: "string", K.DECIMAL: "decimal", K.UUID: "binData",
             K.JSON: None, K.VECTOR: "array"}
