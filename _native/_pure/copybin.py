"""Pure-Python twin of ``_native.copybin``: rows/columns <-> PostgreSQL COPY BINARY bytes.

The reference the compiled module is tested against, and the fallback when it is not built:
same names, signatures, output bytes, exception types and messages (see copybin.pyi).
Here: row, column and plan encoding.  The type names, framing and value encoders are in
``_copybin_values.py``, decoding in ``_copybin_decode.py``; every public name is importable from here.
"""

from __future__ import annotations

import math

import orjson

from . import _plan
from ._copybin_decode import decode
from ._copybin_values import _ENCODERS, _NULL, HEADER, TRAILER, TYPES, _check_types, _tname

__all__ = ["TYPES", "HEADER", "TRAILER", "encode_rows", "encode_columns", "iter_chunks", "decode", "encode_plan"]

_BUFFER_FORMATS = frozenset("bBhHiIlLqQfd?")


# ----------------------------------------------------------------------------- validation

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
