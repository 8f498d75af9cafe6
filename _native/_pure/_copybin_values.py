"""COPY BINARY's wire pieces for the copybin twin: the type names, the stream header and trailer,
and one encoder per type (each returns the whole field: 4-byte length + payload).

The mirror of ``_native/copybin_values.pxi`` (plus the names and framing ``copybin.pyx`` defines
first).  Kept out of ``copybin.py`` so that its row, column and plan encoders and the decoder in
``_copybin_decode.py`` share these without a circular import.
"""

from __future__ import annotations

import math
import struct
import uuid as _uuid
from datetime import date, datetime
from decimal import Decimal

import orjson

TYPES = ("int2", "int4", "int8", "float4", "float8", "bool", "text", "bytea", "timestamptz",
         "timestamp", "date", "numeric", "uuid", "jsonb", "json", "vector")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

_EPOCH_ORDINAL = 730120  # date(2000, 1, 1).toordinal(): PostgreSQL's epoch
_NULL = b"\xff\xff\xff\xff"
_MAX_FIELD = 0x7FFFFFFF
_NUMERIC_NAN = struct.pack(">ihhHH", 8, 0, 0, 0xC000, 0)
_INT_RANGE = {"int2": (-(1 << 15), (1 << 15) - 1, ">ih", 2),
              "int4": (-(1 << 31), (1 << 31) - 1, ">ii", 4),
              "int8": (-(1 << 63), (1 << 63) - 1, ">iq", 8)}


def _check_types(types):
    if isinstance(types, str):
        raise TypeError("types must be a sequence of type names, not str")
    types = tuple(types)
    if not types:
        raise ValueError("types must not be empty")
    if len(types) > 32767:
        raise ValueError("too many columns (at most 32767)")
    for t in types:
        if t not in TYPES:
            raise ValueError(f"unknown type {t!r}; supported: {', '.join(TYPES)}")
    return types


def _tname(v):
    return type(v).__name__


# ----------------------------------------------------------------------------- value encoders
# Each returns the whole field: 4-byte length + payload.

def _make_int(name):
    lo, hi, fmt, size = _INT_RANGE[name]
    pack = struct.Struct(fmt).pack

    def enc(v):
        if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):
            raise TypeError(f"expected int for {name}, got {_tname(v)}")
        if v < lo or v > hi:
            raise ValueError(f"value out of range for {name}")
        return pack(size, v)
    return enc


def _as_double(v, name):
    if type(v) is float:
        return v
    if isinstance(v, float):
        return float(v)
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            raise ValueError(f"value out of range for {name}") from None
    raise TypeError(f"expected float or int for {name}, got {_tname(v)}")


_pack_f8 = struct.Struct(">id").pack
_pack_f4 = struct.Struct(">if").pack


def _enc_float8(v):
    return _pack_f8(8, _as_double(v, "float8"))


def _enc_float4(v):
    x = _as_double(v, "float4")
    try:
        return _pack_f4(4, x)
    except OverflowError:
        raise ValueError("value out of range for float4") from None


def _enc_bool(v):
    if v is True:
        return b"\x00\x00\x00\x01\x01"
    if v is False:
        return b"\x00\x00\x00\x01\x00"
    raise TypeError(f"expected bool for bool, got {_tname(v)}")


def _utf8(v):
    try:
        b = v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text is not encodable as UTF-8: {exc.reason} at position {exc.start}") from None
    if b"\x00" in b:
        raise ValueError("NUL character not allowed in text")
    return b


def _field(b):
    if len(b) > _MAX_FIELD:
        raise ValueError("value too large for COPY (2 GiB or more)")
    return len(b).to_bytes(4, "big") + b


def _enc_text(v):
    if not isinstance(v, str):
        raise TypeError(f"expected str for text, got {_tname(v)}")
    return _field(_utf8(v))


def _enc_bytea(v):
    if isinstance(v, (bytes, bytearray)):
        return _field(bytes(v))
    if isinstance(v, memoryview):
        if not v.c_contiguous:
            raise ValueError("memoryview for bytea must be C-contiguous")
        return _field(v.tobytes())
    raise TypeError(f"expected bytes, bytearray or memoryview for bytea, got {_tname(v)}")


def _dt_micros(v):
    return ((v.toordinal() - _EPOCH_ORDINAL) * 86400 + v.hour * 3600 + v.minute * 60
            + v.second) * 1_000_000 + v.microsecond


_pack_i8 = struct.Struct(">iq").pack
_pack_i4 = struct.Struct(">ii").pack


def _enc_timestamptz(v):
    if not isinstance(v, datetime):
        raise TypeError(f"expected datetime for timestamptz, got {_tname(v)}")
    off = v.utcoffset()
    if off is None:
        raise ValueError("naive datetime for timestamptz; attach a tzinfo (e.g. datetime.timezone.utc)")
    us = _dt_micros(v) - ((off.days * 86400 + off.seconds) * 1_000_000 + off.microseconds)
    return _pack_i8(8, us)


def _enc_timestamp(v):
    if not isinstance(v, datetime):
        raise TypeError(f"expected datetime for timestamp, got {_tname(v)}")
    if v.tzinfo is not None:
        raise ValueError("aware datetime for timestamp; use timestamptz or drop the tzinfo")
    return _pack_i8(8, _dt_micros(v))


def _enc_date(v):
    if not isinstance(v, date) or isinstance(v, datetime):
        raise TypeError(f"expected date for date, got {_tname(v)}")
    return _pack_i4(4, v.toordinal() - _EPOCH_ORDINAL)


def _enc_numeric(v):
    if isinstance(v, Decimal):
        sign, digits, exp = v.as_tuple()
    elif isinstance(v, int) and not isinstance(v, bool):
        sign, digits, exp = Decimal(v).as_tuple()
    else:
        raise TypeError(f"expected Decimal or int for numeric, got {_tname(v)}")
    if exp == "F":
        raise ValueError("Infinity is not supported for numeric")
    if exp == "n" or exp == "N":
        return _NUMERIC_NAN
    dscale = -exp if exp < 0 else 0
    if dscale > 0x3FFF:
        raise ValueError("value out of range for numeric")
    n = len(digits)
    lead = 0
    while lead < n and digits[lead] == 0:
        lead += 1
    if lead == n:
        return struct.pack(">ihhHH", 8, 0, 0, 0, dscale)
    trail = 0
    while digits[n - 1 - trail] == 0:
        trail += 1
    p_min = exp + trail
    p_max = exp + n - 1 - lead
    weight = p_max // 4
    if weight > 0x7FFF:
        raise ValueError("value out of range for numeric")
    ngroups = weight - p_min // 4 + 1
    groups = [0] * ngroups
    p = p_max
    for k in range(lead, n - trail):
        groups[weight - p // 4] += digits[k] * (1, 10, 100, 1000)[p % 4]
        p -= 1
    payload = struct.pack(f">hhHH{ngroups}h", ngroups, weight, 0x4000 if sign else 0, dscale, *groups)
    return _field(payload)


def _enc_uuid(v):
    if isinstance(v, _uuid.UUID):
        return b"\x00\x00\x00\x10" + v.bytes
    if isinstance(v, str):
        return b"\x00\x00\x00\x10" + _uuid.UUID(v).bytes
    raise TypeError(f"expected UUID or str for uuid, got {_tname(v)}")


def _json_bytes(v):
    if isinstance(v, str):
        return _utf8(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    try:
        return orjson.dumps(v)
    except TypeError as exc:
        raise TypeError(f"cannot serialize {_tname(v)} as JSON: {exc}") from None


def _enc_json(v):
    return _field(_json_bytes(v))


def _enc_jsonb(v):
    return _field(b"\x01" + _json_bytes(v))


def _vector_values(v):
    if isinstance(v, (list, tuple)):
        vals = []
        for x in v:
            if isinstance(x, float):
                vals.append(float(x))
            elif isinstance(x, int) and not isinstance(x, bool):
                try:
                    vals.append(float(x))
                except OverflowError:
                    raise ValueError("vector element out of range for float4") from None
            else:
                raise TypeError(f"vector elements must be float or int, got {_tname(x)}")
        return vals
    try:
        m = memoryview(v)
    except TypeError:
        raise TypeError(f"expected list, tuple or float32/float64 buffer for vector, got {_tname(v)}") from None
    with m:
        if m.ndim != 1 or m.format not in ("f", "d"):
            raise TypeError(f"vector buffer must be 1-D float32 or float64, got format {m.format!r} with {m.ndim} dimensions")
        if not m.c_contiguous:
            raise ValueError("vector buffer must be contiguous")
        return m.tolist()


def _enc_vector(v):
    vals = _vector_values(v)
    n = len(vals)
    if n == 0:
        raise ValueError("vector must have at least 1 dimension")
    if n > 16000:
        raise ValueError("vector has more than 16000 dimensions")
    for x in vals:
        if x != x:
            raise ValueError("NaN not allowed in vector")
        if x in (math.inf, -math.inf):
            raise ValueError("infinite value not allowed in vector")
    try:
        payload = struct.pack(f">hh{n}f", n, 0, *vals)
    except OverflowError:
        raise ValueError("vector element out of range for float4") from None
    return _field(payload)


_ENCODERS = {
    "int2": _make_int("int2"), "int4": _make_int("int4"), "int8": _make_int("int8"),
    "float4": _enc_float4, "float8": _enc_float8, "bool": _enc_bool, "text": _enc_text,
    "bytea": _enc_bytea, "timestamptz": _enc_timestamptz, "timestamp": _enc_timestamp,
    "date": _enc_date, "numeric": _enc_numeric, "uuid": _enc_uuid, "jsonb": _enc_jsonb,
    "json": _enc_json, "vector": _enc_vector,
}
