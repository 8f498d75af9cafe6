"""COPY BINARY bytes -> rows, for the copybin twin (``decode``; the mirror of
``_native/copybin_decode.pxi``).  Re-exported by ``copybin.py``.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import orjson

from ._copybin_values import HEADER, _check_types

_EPOCH = datetime(2000, 1, 1)
_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(2000, 1, 1)


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
