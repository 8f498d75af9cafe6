"""Pure-Python twin of ``_native.vector``: distances and exact top-k over float32 vectors.

Reproduces the compiled kernel bit for bit: every float32 component becomes a double, products
are exact in double, and sums use the same 8 lanes (``j % 8``) combined in the same fixed tree.
"""

from __future__ import annotations

import math
import numbers
import sys
from array import array
from functools import reduce
from heapq import nsmallest
from operator import add, index, mul

METRICS = ("cosine", "l2", "ip")

#: Which kernel runs; the compiled module says "avx2+fma" or "baseline" (all give identical bits).
KERNEL = "python"

_LITTLE = sys.byteorder == "little"
_FLOAT32 = ("f", "<f", "=f", "@f") if _LITTLE else ("f", ">f", "!f", "=f", "@f")
_FLOAT64 = ("d", "<d", "=d", "@d") if _LITTLE else ("d", ">d", "!d", "=d", "@d")
_BYTES = ("B", "b", "c", "@B", "=B", "<B", ">B", "!B", "@b", "=b", "<b", ">b", "!b")
_NAN = float("nan")


# -- argument parsing (kept textually in step with vector.pyx) ---------------------------------

def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of 'cosine', 'l2', 'ip', not {metric!r}")


def _check_dim(dim, what="dim"):
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{what} must be an integer, not {type(dim).__name__}")
    dim = index(dim)
    if dim <= 0:
        raise ValueError(f"{what} must be positive, got {dim}")
    return dim


def _le_float32(data):
    """float32 little-endian bytes -> array('f') in host order."""
    if len(data) % 4:
        raise ValueError(f"float32 blob length must be a multiple of 4, got {len(data)} bytes")
    out = array("f")
    out.frombytes(data)
    if not _LITTLE:
        out.byteswap()
    return out


def _sequence_values(vec, what):
    if isinstance(vec, (str, dict, set, frozenset)) or not hasattr(vec, "__iter__"):
        raise TypeError(f"{what} must be a sequence of numbers or a float32 buffer, not {type(vec).__name__}")
    vals = []
    append = vals.append
    for i, x in enumerate(vec):
        t = type(x)
        if t is float or t is int:
            pass
        elif isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise TypeError(f"{what} component {i} must be a number, not {type(x).__name__}")
        try:
            append(float(x))
        except OverflowError:
            raise ValueError(f"{what} component {i} is out of float32 range: {x!r}") from None
    return vals


def _vector_values(vec, dim, what):
    """Validate ``vec`` and return its components as array('f') (rounded to float32).

    Checks, in order: type (per component), empty, dimension, finite, float32 range.
    """
    try:
        mv = memoryview(vec)
    except TypeError:
        mv = None
    doubles = None
    if mv is not None:
        fmt = mv.format
        if mv.ndim != 1:
            raise ValueError(f"{what} buffer must be 1-dimensional, got {mv.ndim} dimensions")
        if fmt in _FLOAT32:
            f32 = array("f")
            f32.frombytes(mv.tobytes())
        elif fmt in _BYTES:
            f32 = _le_float32(mv.tobytes())
        elif fmt in _FLOAT64:
            f32 = None
            doubles = array("d")
            doubles.frombytes(mv.tobytes())
        else:
            f32 = None
            doubles = _sequence_values(vec, what)
    else:
        f32 = None
        doubles = _sequence_values(vec, what)
    src = f32 if f32 is not None else doubles
    n = len(src)
    if n == 0:
        raise ValueError(f"{what} must not be empty")
    if dim is not None and n != dim:
        raise ValueError(f"{what} has dimension {n}; expected {dim}")
    for i, x in enumerate(src):
        if x != x or x in (math.inf, -math.inf):
            raise ValueError(f"{what} component {i} is not finite: {x!r}")
    if f32 is None:
        f32 = array("f", src)
        for i, x in enumerate(f32):
            if x in (math.inf, -math.inf):
                raise ValueError(f"{what} component {i} is out of float32 range: {src[i]!r}")
    return f32


def _row_format(fmt):
    return fmt in _FLOAT32 or fmt in _BYTES


def _matrix_bytes(matrix, dim):
    """Return (n, dim, little-endian float32 bytes of all rows) for any accepted matrix form.

    ``dim`` is the requested or query dimension; a 2-D buffer carries its own.
    """
    if isinstance(matrix, (list, tuple)):
        step = dim * 4
        parts = []
        for i, row in enumerate(matrix):
            if type(row) is bytes:
                data = row
            else:
                try:
                    mv = memoryview(row)
                except TypeError:
                    mv = None
                if mv is None or mv.ndim != 1 or not _row_format(mv.format):
                    raise TypeError(f"matrix row {i} must be a float32 blob (bytes) or 1-D float32 buffer, not {type(row).__name__}")
                data = mv.tobytes()
                if not _LITTLE and mv.format in _FLOAT32:
                    a = array("f")
                    a.frombytes(data)
                    a.byteswap()
                    data = a.tobytes()
            if len(data) != step:
                raise ValueError(f"matrix row {i} has {len(data)} bytes; expected {step} (dim {dim} float32)")
            parts.append(data)
        return len(parts), dim, b"".join(parts)
    try:
        mv = memoryview(matrix)
    except TypeError:
        raise TypeError("matrix must be a float32 buffer (2-D array, or 1-D buffer / bytes with dim) "
                        f"or a list of float32 blobs, not {type(matrix).__name__}") from None
    fmt = mv.format
    if fmt not in _FLOAT32 and not (mv.ndim == 1 and fmt in _BYTES):
        raise TypeError(f"matrix must hold float32, got buffer format {fmt!r}; convert with .astype('float32')")
    if not mv.c_contiguous:
        raise ValueError("matrix buffer must be C-contiguous")
    if mv.ndim == 2:
        n, mdim = mv.shape
        if mdim != dim:
            raise ValueError(f"matrix has dimension {mdim}; expected {dim}")
    elif mv.ndim == 1:
        step = dim * 4
        if mv.nbytes % step:
            raise ValueError(f"matrix buffer has {mv.nbytes} bytes, not a multiple of {step} (dim {dim} float32)")
        n = mv.nbytes // step
    else:
        raise ValueError(f"matrix buffer must be 1- or 2-dimensional, got {mv.ndim} dimensions")
    data = mv.tobytes()
    if not _LITTLE and fmt in _FLOAT32:
        a = array("f")
        a.frombytes(data)
        a.byteswap()
        data = a.tobytes()
    return n, dim, data


def _matrix_dim(matrix):
    """The dimension a 2-D buffer declares, else None."""
    if isinstance(matrix, (list, tuple)):
        return None
    try:
        mv = memoryview(matrix)
    except TypeError:
        return None
    if mv.ndim == 2:
        return mv.shape[1]
    return None


def _prepare(matrix, query, metric, dim):
    """Shared argument handling: returns (n, dim, float32 rows as array('f'), query as doubles)."""
    _check_metric(metric)
    dim = _check_dim(dim)
    mdim = _matrix_dim(matrix)
    if dim is not None and mdim is not None and dim != mdim:
        raise ValueError(f"matrix has dimension {mdim}; expected {dim}")
    want = dim if dim is not None else mdim
    q32 = _vector_values(query, want, "query vector")
    dim = len(q32)
    n, dim, data = _matrix_bytes(matrix, dim)
    q = [float(x) for x in q32]
    if metric == "cosine" and _tree(_lanes_sq(q)) == 0.0:
        raise ValueError("cosine distance is undefined for a zero query vector")
    rows = array("f")
    rows.frombytes(data)
    if not _LITTLE:
        rows.byteswap()
    return n, dim, rows, q


# -- the arithmetic (must match vector.pyx's C kernel exactly) ----------------------------------

def _tree(s):
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


def _lanes_dot(a, b):
    return [reduce(add, map(mul, a[l::8], b[l::8]), 0.0) for l in range(8)]


def _lanes_sq(a):
    return [reduce(add, map(mul, a[l::8], a[l::8]), 0.0) for l in range(8)]


def _lanes_diff_sq(a, b):
    out = []
    for l in range(8):
        s = 0.0
        for x, y in zip(a[l::8], b[l::8]):
            d = x - y
            s += d * d
        out.append(s)
    return out


def _distance_fn(metric, q):
    if metric == "cosine":
        nq = _tree(_lanes_sq(q))

        def dist(row):
            dot = _tree(_lanes_dot(row, q))
            nn = _tree(_lanes_sq(row)) * nq
            if nn == 0.0:
                return _NAN
            sim = dot / math.sqrt(nn)
            if sim > 1.0:
                sim = 1.0
            elif sim < -1.0:
                sim = -1.0
            return 1.0 - sim
    elif metric == "l2":
        def dist(row):
            return math.sqrt(_tree(_lanes_diff_sq(row, q)))
    else:
        def dist(row):
            return -_tree(_lanes_dot(row, q))
    return dist


def _scan(n, dim, rows, q, metric):
    dist = _distance_fn(metric, q)
    for i in range(n):
        yield dist(rows[i * dim:(i + 1) * dim].tolist())


# -- public API --------------------------------------------------------------------------------

def validate(vec, dim=None):
    dim = _check_dim(dim)
    _vector_values(vec, dim, "vector")


def pack(vec):
    f32 = _vector_values(vec, None, "vector")
    if not _LITTLE:
        f32.byteswap()
    return f32.tobytes()


def unpack(blob):
    try:
        mv = memoryview(blob)
    except TypeError:
        raise TypeError(f"blob must be bytes-like, not {type(blob).__name__}") from None
    return _le_float32(mv.tobytes()).tolist()


def distances(matrix, query, metric="cosine", dim=None):
    n, dim, rows, q = _prepare(matrix, query, metric, dim)
    return array("d", _scan(n, dim, rows, q, metric))


def topk(matrix, query, k, metric="cosine", dim=None):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, not {type(k).__name__}")
    k = index(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    n, dim, rows, q = _prepare(matrix, query, metric, dim)
    # NaN (zero-norm rows under cosine) after every number; equal distances by position.
    keyed = ((1, 0.0, i) if d != d else (0, d, i) for i, d in enumerate(_scan(n, dim, rows, q, metric)))
    best = nsmallest(k, keyed)
    return [i for _, _, i in best], [_NAN if nan else d for nan, d, _ in best]
