"""_native.params, kind VECTOR: bound form (float32 little-endian bytes on every dialect), refusals
with their messages, decode from blobs and pgvector text, and parity between the two
implementations on random inputs.  Every test runs against both implementations.
"""

from __future__ import annotations

import math
import struct
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.native.conftest import both, load_impl

PG, MY, SL = 1, 2, 3
DIALECTS = (PG, MY, SL)
VECTOR = 11


@pytest.fixture
def p(impl):
    return load_impl("params", impl)


def f32(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("value,expected", [
    ([0.5, 2], f32([0.5, 2.0])),
    ((1, -1.25, 3e38), f32([1, -1.25, 3e38])),
    ([0.1], f32([0.1])),                                   # rounded to float32, as pgvector does
    (np.array([0.25, 4], dtype=np.float32), f32([0.25, 4])),
    (np.array([0.1, 7], dtype=np.float64), f32([0.1, 7])),
    (array("f", [1.5]), f32([1.5])),
    (f32([9.0, -2.0]), f32([9.0, -2.0])),                  # an already packed blob is re-checked
    ([np.float32(1.5), np.int64(2)], f32([1.5, 2.0])),
])
def test_coerce_packs_float32_le(p, value, expected, dialect):
    out = p.coerce(value, VECTOR, dialect)
    assert type(out) is bytes and out == expected


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("value,exc,msg", [
    ([], ValueError, "vector must not be empty"),
    (np.array([], dtype=np.float32), ValueError, "vector must not be empty"),
    ([1.0, math.nan], ValueError, "vector component 1 is not finite: nan"),
    ([math.inf], ValueError, "vector component 0 is not finite: inf"),
    (np.array([1, -np.inf], dtype=np.float32), ValueError, "vector component 1 is not finite: -inf"),
    ([1e39], ValueError, "vector component 0 is out of float32 range: 1e+39"),
    ([1, True], TypeError, "vector component 1 must be a number, not bool"),
    ([1, "2"], TypeError, "vector component 1 must be a number, not str"),
    ("[1,2]", TypeError, "vector must be a sequence of numbers or a float32 buffer, not str"),
    (3.0, TypeError, "vector must be a sequence of numbers or a float32 buffer, not float"),
    ({"a": 1}, TypeError, "vector must be a sequence of numbers or a float32 buffer, not dict"),
    (b"\x00\x00\x80", ValueError, "float32 blob length must be a multiple of 4, got 3 bytes"),
    (np.zeros((2, 2), dtype=np.float32), ValueError, "vector buffer must be 1-dimensional, got 2 dimensions"),
])
def test_coerce_refuses(p, value, exc, msg, dialect):
    with pytest.raises(exc) as info:
        p.coerce(value, VECTOR, dialect)
    assert str(info.value) == msg


def test_coerce_none_passes(p):
    assert p.coerce(None, VECTOR, PG) is None


def test_coerce_row_prefixes_field(p):
    with pytest.raises(ValueError, match=r"^field 'emb': vector component 0 is not finite: nan$"):
        p.coerce_row([1, [math.nan]], (1, VECTOR), SL, ("id", "emb"))
    with pytest.raises(ValueError) as info:
        p.coerce_rows([(1, [1.0]), (2, [])], (1, VECTOR), MY, ("id", "emb"), start_index=10)
    assert str(info.value) == "row 11, field 'emb': vector must not be empty"
    assert info.value.row_index == 11


@pytest.mark.parametrize("dialect", DIALECTS)
def test_needs_decode(p, dialect):
    assert p.needs_decode(VECTOR, dialect) is True


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stored,expected", [
    (f32([0.5, 2.0]), [0.5, 2.0]),
    (bytearray(f32([1.0])), [1.0]),
    (memoryview(f32([-3.0, 0.0])), [-3.0, 0.0]),
    (f32([0.1]), [float(np.float32(0.1))]),
    ("[0.5,2]", [0.5, 2.0]),
    (" [1, -2.5 ,3e2] ", [1.0, -2.5, 300.0]),
    ("[0.1]", [float(np.float32(0.1))]),                  # text rounds through float32 like blobs
    ([1.0, 2.0], [1.0, 2.0]),                              # already decoded: passes through
])
def test_decode(p, stored, expected, dialect):
    out = p.decode(stored, VECTOR, dialect)
    assert type(out) is list and out == expected
    assert all(type(x) is float for x in out)


@pytest.mark.parametrize("stored,exc,msg", [
    (b"\x00\x00\x80", ValueError, "float32 blob length must be a multiple of 4, got 3 bytes"),
    ("1,2", ValueError, "vector text must look like [1,2,3]"),
    ("[]", ValueError, "could not convert string to float: ''"),
    ("[1,x]", ValueError, "could not convert string to float: 'x'"),
    ("[nan]", ValueError, "vector component 0 is not finite: nan"),
])
def test_decode_refuses(p, stored, exc, msg):
    with pytest.raises(exc) as info:
        p.decode(stored, VECTOR, SL)
    assert str(info.value) == msg


@pytest.mark.parametrize("dialect", DIALECTS)
def test_round_trip_rows(p, dialect):
    vals = [0.1, -2.5, 1e-30, 3.4e38]
    flat = p.coerce_rows([(1, vals), (2, None)], (1, VECTOR), dialect, ("id", "emb"))
    rows = [tuple(flat[0:2]), tuple(flat[2:4])]
    out = p.decode_rows(rows, ("id", "emb"), (1, VECTOR), dialect)
    assert out == [{"id": 1, "emb": np.array(vals, dtype=np.float32).tolist()}, {"id": 2, "emb": None}]


# -- parity: random inputs, same result or same exception (type and message) -----------------

def _outcome(fn, *args):
    try:
        r = fn(*args)
    except (TypeError, ValueError) as exc:
        return ("raise", type(exc), str(exc))
    return ("ok", type(r), repr(r))


components = st.one_of(st.floats(width=32), st.floats(), st.integers(-2 ** 70, 2 ** 70), st.booleans(),
                       st.text(max_size=2), st.none())
vectors = st.one_of(st.lists(components, max_size=6), st.lists(components, max_size=6).map(tuple),
                    st.binary(max_size=13), st.text(max_size=6), st.floats(), st.integers())


@settings(max_examples=300, deadline=None)
@given(vectors, st.sampled_from(DIALECTS))
def test_coerce_parity(value, dialect):
    native, python = both("params")
    assert _outcome(native.coerce, value, VECTOR, dialect) == _outcome(python.coerce, value, VECTOR, dialect)


texts = st.one_of(st.text(alphabet="[]0123456789.,-e+ naif", max_size=12),
                  st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=5)
                  .map(lambda v: "[" + ",".join(map(repr, v)) + "]"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, st.binary(max_size=13), st.integers(), st.none()), st.sampled_from(DIALECTS))
def test_decode_parity(stored, dialect):
    native, python = both("params")
    assert _outcome(native.decode, stored, VECTOR, dialect) == _outcome(python.decode, stored, VECTOR, dialect)
