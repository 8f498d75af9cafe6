"""The compact binary form of cached results in Redis: msgpack with ext types for the values
rows hold (aware datetimes, dates, Decimal, UUID), so a hit decodes to the same Python types
a database read gives.  Never pickle: whoever can write to the Redis could run code."""

from __future__ import annotations

import datetime as _dt
import struct
import uuid as _uuid
from decimal import Decimal

_DT, _DATE, _DEC, _UUID, _NONE = 1, 2, 3, 4, 5
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_UTC = _dt.timezone.utc


def _default(v):
    import msgpack
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            raise TypeError("naive datetime in a cached row")
        d = v - _EPOCH
        return msgpack.ExtType(_DT, struct.pack(">qi", d.days * 86400 + d.seconds, d.microseconds))
    if isinstance(v, _dt.date):
        return msgpack.ExtType(_DATE, struct.pack(">i", v.toordinal()))
    if isinstance(v, Decimal):
        return msgpack.ExtType(_DEC, str(v).encode())
    if isinstance(v, _uuid.UUID):
        return msgpack.ExtType(_UUID, v.bytes)
    if isinstance(v, (tuple, set, frozenset)):
        return list(v)
    raise TypeError(f"cannot cache a value of type {type(v).__name__}")


def _ext(code, data):
    import msgpack
    if code == _DT:
        s, us = struct.unpack(">qi", data)
        return _EPOCH + _dt.timedelta(seconds=s, microseconds=us)
    if code == _DATE:
        return _dt.date.fromordinal(struct.unpack(">i", data)[0])
    if code == _DEC:
        return Decimal(data.decode())
    if code == _UUID:
        return _uuid.UUID(bytes=data)
    if code == _NONE:
        return None
    return msgpack.ExtType(code, data)


def dumps(value) -> bytes:
    import msgpack
    return msgpack.packb(value, default=_default, use_bin_type=True, datetime=False)


def loads(data: bytes):
    import msgpack
    return msgpack.unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)
