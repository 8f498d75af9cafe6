"""Pure-Python twin of ``_native.copybin``: rows/columns <-> PostgreSQL COPY BINARY bytes.

The reference the compiled module is tested against, and the fallback when it is not built:
same names, signatures, output bytes, exception types and messages (see copybin.pyi).
"""

from __future__ import annotations

import math
import struct
import uuid as _uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import orjson

from . import _plan

TYPES = ("int2", "int4", "int8", "float4", "float8", "bool", "text", "bytea", "timestamptz",
         "timestamp", "date", "numeric", "uuid", "jsonb", "json", "vector")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

_EPOCH_ORDINAL = 730120  # date(2000, 1, 1).toordinal(): PostgreSQL's epoch
_EPOCH = datetime(2000, 1, 1)
_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(2000, 1, 1)
_NULL = b"\xff\xff\xff\xff"
_MAX_FIELD = 0x7FFFFFFF
_NUMERIC_NAN = struct.pack(">ihhHH", 8, 0, 0, 0xC000, 0)
_INT_FORMATS = frozenset("bBhHiIlLqQ")
_BUFFER_FORMATS = frozenset("bBhHiIlLqQfd?")
_INT_RANGE = {"int2": (-(1 << 15), (1 << 15) - 1, ">ih", 2),
              "int4": (-(1 << 31), (1 << 31) - 1, ">ii", 4),
              "int8": (-(1 << 63), (1 << 63) - 1, ">iq", 8)}


# ----------------------------------------------------------------------------- validation

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


def _labels(types, names):
    if names is None:
        return types
    if isinstance(names, str):
        raise TypeError("names must be a sequence of keys, not str")
    names = tuple(names)
    if len(names) != len(types):
        raise ValueError(f"names has {len(names)} entries for {len(types)} types")
    return names


def _row_error(exc, i, j, label):
    cls = TypeError if isinstance(exc, TypeError) else ValueError
    if j >= 0:
        new = cls(f"row {i}, column {j} ({label}): {exc}")
    else:
        new = cls(f"row {i}: {exc}")
    new.row_index = i
    new.column_index = j if j >= 0 else None
    return new


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


_F4_MAX = 3.4028234663852886e38


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


# ----------------------------------------------------------------------------- row encoding

class _RowEncoder:
    """Per-call state: column encoders resolved once, keys for dict rows, labels for errors."""

    __slots__ = ("encs", "names", "labels", "ncount", "prefix")

    def __init__(self, types, names):
        types = _check_types(types)
        self.labels = _labels(types, names)
        self.names = None if names is None else self.labels
        self.encs = [_ENCODERS[t] for t in types]
        self.ncount = len(types)
        self.prefix = len(types).to_bytes(2, "big")

    def encode(self, row, i, out):
        """Append tuple ``row`` (row index ``i``) to list ``out``; errors carry the row index."""
        j = -1
        try:
            if isinstance(row, (tuple, list)):
                if len(row) != self.ncount:
                    raise ValueError(f"expected {self.ncount} values, got {len(row)}")
                values = row
            elif isinstance(row, dict):
                if self.names is None:
                    raise ValueError("dict rows need names")
                values = [row.get(k) for k in self.names]
            else:
                raise TypeError(f"expected tuple, list or dict row, got {_tname(row)}")
            parts = [self.prefix]
            j = 0
            for enc, v in zip(self.encs, values):
                parts.append(_NULL if v is None else enc(v))
                j += 1
        except (ValueError, TypeError) as exc:
            raise _row_error(exc, i, j, self.labels[j] if j >= 0 else None) from exc
        out.append(b"".join(parts))


def encode_rows(rows, types, names=None, *, header=True, trailer=True):
    enc = _RowEncoder(types, names)
    out = [HEADER] if header else []
    for i, row in enumerate(rows):
        enc.encode(row, i, out)
    if trailer:
        out.append(TRAILER)
    return b"".join(out)


def _column_values(col):
    if isinstance(col, (list, tuple)):
        return col
    try:
        m = memoryview(col)
    except TypeError:
        return list(col)
    with m:
        if m.ndim == 1 and m.format in _BUFFER_FORMATS:
            return m.tolist()
    return list(col)


def encode_columns(columns, types, *, header=True, trailer=True):
    types = _check_types(types)
    cols = [_column_values(c) for c in columns]
    if len(cols) != len(types):
        raise ValueError(f"got {len(cols)} columns for {len(types)} types")
    n = len(cols[0])
    for j, c in enumerate(cols):
        if len(c) != n:
            raise ValueError(f"all columns must have the same length: column 0 has {n}, column {j} has {len(c)}")
    return encode_rows(zip(*cols), types, header=header, trailer=trailer)


def iter_chunks(rows, types, names=None, chunk_bytes=1 << 20):
    enc = _RowEncoder(types, names)
    if type(chunk_bytes) is not int or chunk_bytes < 1:
        raise ValueError("chunk_bytes must be a positive int")
    return _chunks(enc, iter(rows), chunk_bytes)


def _chunks(enc, it, chunk_bytes):
    out = [HEADER]
    size = len(HEADER)
    i = 0
    for row in it:
        enc.encode(row, i, out)
        size += len(out[-1])
        i += 1
        if size >= chunk_bytes:
            yield b"".join(out)
            out = []
            size = 0
    out.append(TRAILER)
    yield b"".join(out)


# ----------------------------------------------------------------------------- decoding

def _need(n, size, t):
    if size != n:
        raise ValueError(f"expected {n} bytes for {t}, got {size}")


def _dec_numeric(b):
    if len(b) < 8:
        raise ValueError(f"expected at least 8 bytes for numeric, got {len(b)}")
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHH", b)
    if ndigits < 0 or len(b) != 8 + 2 * ndigits:
        raise ValueError("malformed numeric")
    if sign == 0xC000:
        return Decimal("NaN")
    if sign == 0xD000:
        return Decimal("Infinity")
    if sign == 0xF000:
        return Decimal("-Infinity")
    if sign not in (0, 0x4000):
        raise ValueError("malformed numeric")
    if ndigits == 0:
        return Decimal((0, (0,), -dscale))
    groups = struct.unpack_from(f">{ndigits}h", b, 8)
    for g in groups:
        if g < 0 or g > 9999:
            raise ValueError("malformed numeric")
    s = "".join(["%04d" % g for g in groups])
    exp = (weight - ndigits + 1) * 4
    if exp < -dscale:
        s = s[:len(s) - (-dscale - exp)]
    elif exp > -dscale:
        s += "0" * (exp + dscale)
    s = s.lstrip("0") or "0"
    return Decimal((1 if sign == 0x4000 else 0, tuple(map(int, s)), -dscale))


def _dec_value(t, b):
    size = len(b)
    if t == "int2":
        _need(2, size, t)
        return int.from_bytes(b, "big", signed=True)
    if t == "int4":
        _need(4, size, t)
        return int.from_bytes(b, "big", signed=True)
    if t == "int8":
        _need(8, size, t)
        return int.from_bytes(b, "big", signed=True)
    if t == "float4":
        _need(4, size, t)
        return struct.unpack(">f", b)[0]
    if t == "float8":
        _need(8, size, t)
        return struct.unpack(">d", b)[0]
    if t == "bool":
        _need(1, size, t)
        return b != b"\x00"
    if t == "text":
        return b.decode("utf-8")
    if t == "bytea":
        return bytes(b)
    if t == "timestamptz" or t == "timestamp":
        _need(8, size, t)
        us = int.from_bytes(b, "big", signed=True)
        if us == (1 << 63) - 1 or us == -(1 << 63):
            raise ValueError("infinite timestamp cannot be represented as datetime")
        try:
            return (_EPOCH_UTC if t == "timestamptz" else _EPOCH) + timedelta(microseconds=us)
        except OverflowError:
            raise ValueError("timestamp out of range for datetime") from None
    if t == "date":
        _need(4, size, t)
        days = int.from_bytes(b, "big", signed=True)
        if days == (1 << 31) - 1 or days == -(1 << 31):
            raise ValueError("infinite date cannot be represented as date")
        try:
            return _EPOCH_DATE + timedelta(days=days)
        except OverflowError:
            raise ValueError("date out of range for date") from None
    if t == "numeric":
        return _dec_numeric(b)
    if t == "uuid":
        _need(16, size, t)
        return _uuid.UUID(bytes=bytes(b))
    if t == "json":
        return orjson.loads(b)
    if t == "jsonb":
        if size < 1 or b[0] != 1:
            raise ValueError("unsupported jsonb version")
        return orjson.loads(b[1:])
    # vector
    if size < 4:
        raise ValueError(f"expected at least 4 bytes for vector, got {size}")
    dim = int.from_bytes(b[:2], "big", signed=True)
    if dim < 0 or size != 4 + 4 * dim:
        raise ValueError("malformed vector")
    return list(struct.unpack(f">{dim}f", b[4:]))


def decode(data, types):
    types = _check_types(types)
    data = bytes(data)
    total = len(data)
    if total < 19 or data[:11] != HEADER[:11]:
        raise ValueError("not a PostgreSQL COPY BINARY stream (bad signature)")
    ext = int.from_bytes(data[15:19], "big")
    pos = 19 + ext
    if pos > total:
        raise ValueError("truncated COPY BINARY data in header extension")
    ncols = len(types)
    rows = []
    i = 0
    while True:
        if pos + 2 > total:
            raise ValueError(f"truncated COPY BINARY data at offset {pos}: missing trailer")
        count = int.from_bytes(data[pos:pos + 2], "big", signed=True)
        pos += 2
        if count == -1:
            if pos != total:
                raise ValueError(f"unexpected data after COPY BINARY trailer at offset {pos}")
            return rows
        if count != ncols:
            raise ValueError(f"tuple {i} has {count} fields, expected {ncols}")
        row = []
        for j in range(ncols):
            if pos + 4 > total:
                raise ValueError(f"truncated COPY BINARY data at offset {pos}")
            size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
            pos += 4
            if size == -1:
                row.append(None)
                continue
            if size < 0 or pos + size > total:
                raise ValueError(f"truncated COPY BINARY data at offset {pos}")
            t = types[j]
            try:
                row.append(_dec_value(t, data[pos:pos + size]))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"tuple {i}, column {j} ({t}): {exc}") from exc
            pos += size
        rows.append(tuple(row))
        i += 1


# ----------------------------------------------------------------------------- planned items

def _json_ok(v, depth=0):
    """True when ``v`` is JSON the checked write paths accept (see ``encode_plan``)."""
    if depth > 64:
        return False
    t = type(v)
    if t is str:
        if "\x00" in v:
            return False
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if t is float:
        return math.isfinite(v)
    if t is dict:
        return all(type(k) is str and _json_ok(k, depth) and _json_ok(item, depth + 1) for k, item in v.items())
    if t is list or t is tuple:
        return all(_json_ok(item, depth + 1) for item in v)
    return v is None or t is bool or t is int


def encode_plan(items, types, sources, defaults, width, start=0, *, header=False, shapes=None):
    types = _check_types(types)
    enc = _RowEncoder(types, None)
    ncols = enc.ncount
    srcs, defs, shp = _plan.check_args(ncols, "types", sources, defaults, width, shapes, items, start)
    encs = enc.encs
    jsons = [t in ("json", "jsonb") for t in types]

    def put(j, v):
        if v is None:
            return _NULL
        if jsons[j]:
            if not _json_ok(v):
                raise _plan.Skip
            return encs[j](orjson.dumps(v))
        return encs[j](v)

    def taken(j, v):
        if shp is not None and v is not None and shp[j] is not None and type(v) not in shp[j]:
            raise _plan.Skip
        return put(j, v)

    def filled(j):
        f = defs[j]
        if f is None:
            raise _plan.Skip
        return put(j, f[1]() if f[0] == "call" else f[1])

    prefix = enc.prefix
    out = [HEADER] if header else []
    stop = _plan.walk(items, start, srcs, width, taken, filled, lambda parts: prefix + b"".join(parts), out)
    return b"".join(out), stop
