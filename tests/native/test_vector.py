"""_native.vector: both implementations against a numpy reference, and against each other."""

import math
import struct
from array import array

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both, load_impl

METRICS = ("cosine", "l2", "ip")


@pytest.fixture
def vec(impl):
    return load_impl("vector", impl)


# -- reference --------------------------------------------------------------------------------

def ref_distances(m, q, metric):
    """float64 numpy, row by row through the same code path (identical rows -> identical values)."""
    m64 = np.asarray(m, dtype=np.float64)
    q64 = np.asarray(q, dtype=np.float32).astype(np.float64)
    dots = (m64 * q64).sum(axis=1)
    if metric == "ip":
        return -dots
    if metric == "l2":
        return np.sqrt(((m64 - q64) ** 2).sum(axis=1))
    norms = np.sqrt((m64 * m64).sum(axis=1)) * np.sqrt((q64 * q64).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.clip(dots / norms, -1.0, 1.0)
    return 1.0 - sim


def ref_topk(m, q, k, metric):
    d = ref_distances(m, q, metric)
    nan = np.isnan(d)
    order = np.lexsort((np.arange(len(d)), np.where(nan, 0.0, d), nan))
    idx = order[:k]
    return idx.tolist(), d[idx]


def random_matrix(rng, n, dim, dup=True, zeros=True):
    m = rng.standard_normal((n, dim)).astype(np.float32)
    if dup and n >= 6:
        m[n // 2] = m[1]
        m[n - 1] = m[1]
        m[3] = m[2]
    if zeros and n >= 5:
        m[4] = 0.0
        m[0] = 0.0
    return m


def bits(xs):
    return struct.pack(f"<{len(xs)}d", *xs)


# -- correctness against numpy ----------------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,dim,k", [(50, 8, 5), (97, 37, 10), (40, 3, 100), (200, 384, 10), (7, 1, 3)])
def test_topk_matches_numpy(vec, metric, n, dim, k):
    rng = np.random.default_rng(n * 1000 + dim)
    m = random_matrix(rng, n, dim)
    q = rng.standard_normal(dim)
    idx, dist = vec.topk(m, q, k, metric)
    ridx, rdist = ref_topk(m, q, k, metric)
    assert idx == ridx
    assert len(dist) == min(k, n)
    np.testing.assert_allclose(np.array(dist), rdist, rtol=0, atol=1e-6)
    assert dist == sorted(dist, key=lambda d: (math.isnan(d), 0 if math.isnan(d) else d))


@pytest.mark.parametrize("metric", METRICS)
def test_distances_match_numpy(vec, metric):
    rng = np.random.default_rng(7)
    m = random_matrix(rng, 60, 21)
    q = rng.standard_normal(21)
    d = vec.distances(m, q, metric)
    assert isinstance(d, array) and d.typecode == "d" and len(d) == 60
    np.testing.assert_allclose(np.array(d), ref_distances(m, q, metric), rtol=0, atol=1e-6)


def test_ties_by_position_and_zero_rows_last(vec):
    m = np.array([[0, 0], [1, 0], [2, 0], [0, 0], [1, 0], [0, 1]], dtype=np.float32)
    idx, dist = vec.topk(m, [1, 0], 6, "cosine")
    assert idx == [1, 2, 4, 5, 0, 3]
    assert dist[:3] == [0.0, 0.0, 0.0] and dist[3] == 1.0
    assert math.isnan(dist[4]) and math.isnan(dist[5])
    assert vec.topk(m, [1, 0], 2, "cosine") == ([1, 2], [0.0, 0.0])
    assert vec.topk(m, [1, 0], 6, "l2")[0] == [1, 4, 0, 2, 3, 5]


def test_pgvector_semantics(vec):
    m = [vec.pack([3, 4]), vec.pack([-3, -4]), vec.pack([6, 8])]
    assert list(vec.distances(m, [3, 4], "l2")) == [0.0, 10.0, 5.0]
    assert list(vec.distances(m, [3, 4], "ip")) == [-25.0, 25.0, -50.0]
    assert list(vec.distances(m, [3, 4], "cosine")) == [0.0, 2.0, 0.0]


def test_k_greater_than_n_and_empty_matrix(vec):
    m = np.eye(3, dtype=np.float32)
    assert vec.topk(m, [1, 0, 0], 10)[0] == [0, 1, 2]
    assert vec.topk([], [1, 0, 0], 3) == ([], [])
    assert len(vec.distances(np.zeros((0, 3), np.float32), [1, 0, 0])) == 0


# -- input forms --------------------------------------------------------------------------------

def test_all_input_forms_agree(vec):
    rng = np.random.default_rng(3)
    m = random_matrix(rng, 30, 12)
    q = rng.standard_normal(12)
    blobs = [vec.pack(row) for row in m]
    assert blobs[5] == m[5].astype("<f4").tobytes()
    forms = [m, m.ravel(), m.tobytes(), blobs, tuple(blobs), b"".join(blobs), bytearray(m.tobytes()),
             array("f", m.ravel().tolist()), memoryview(m.tobytes())]
    q_forms = [q, q.tolist(), q.astype(np.float32), vec.pack(q), array("f", q.tolist())]
    for metric in METRICS:
        want = vec.topk(m, q, 7, metric)
        wd = bits(vec.distances(m, q, metric))
        for f in forms:
            assert vec.topk(f, q, 7, metric, dim=12) == want
            assert bits(vec.distances(f, q, metric, dim=12)) == wd
        for qf in q_forms:
            assert vec.topk(m, qf, 7, metric) == want
    # 1-D forms infer dim from the query
    assert vec.topk(m.tobytes(), q, 7) == vec.topk(m, q, 7)
    # list of float32 arrays as rows
    assert vec.topk(list(m), q, 7) == vec.topk(m, q, 7)


def test_pack_unpack_roundtrip(vec):
    assert vec.pack([1.0, 2.0]) == b"\x00\x00\x80?\x00\x00\x00@"
    assert vec.unpack(vec.pack([1.5, -2, 3])) == [1.5, -2.0, 3.0]
    assert vec.unpack(b"") == []
    assert vec.unpack(vec.pack([0.1]))[0] == float(np.float32(0.1))
    assert vec.pack(np.array([1, 2], dtype=np.float64)) == vec.pack([1, 2])
    assert vec.pack(np.array([1, 2], dtype=np.int64)) == vec.pack([1, 2])
    assert vec.pack((np.float32(1), 2)) == vec.pack([1, 2])


# -- validation (same type and message in both) ----------------------------------------------

BAD = [
    (lambda v: v.validate([]), ValueError, "vector must not be empty"),
    (lambda v: v.validate([1.0, float("nan")]), ValueError, "vector component 1 is not finite: nan"),
    (lambda v: v.validate([float("inf")]), ValueError, "vector component 0 is not finite: inf"),
    (lambda v: v.validate([1e39]), ValueError, "vector component 0 is out of float32 range: 1e+39"),
    (lambda v: v.validate([1, 2, 3], dim=4), ValueError, "vector has dimension 3; expected 4"),
    (lambda v: v.validate([1, True]), TypeError, "vector component 1 must be a number, not bool"),
    (lambda v: v.validate([1, "2"]), TypeError, "vector component 1 must be a number, not str"),
    (lambda v: v.validate("12"), TypeError, "vector must be a sequence of numbers or a float32 buffer, not str"),
    (lambda v: v.validate(3), TypeError, "vector must be a sequence of numbers or a float32 buffer, not int"),
    (lambda v: v.validate([1], dim=0), ValueError, "dim must be positive, got 0"),
    (lambda v: v.validate([1], dim=1.0), TypeError, "dim must be an integer, not float"),
    (lambda v: v.pack([]), ValueError, "vector must not be empty"),
    (lambda v: v.pack([10 ** 400]), ValueError, "vector component 0 is out of float32 range: " + repr(10 ** 400)),
    (lambda v: v.unpack(b"abc"), ValueError, "float32 blob length must be a multiple of 4, got 3 bytes"),
    (lambda v: v.unpack(5), TypeError, "blob must be bytes-like, not int"),
    (lambda v: v.distances(np.eye(2, dtype=np.float32), [1, 0], "dot"), ValueError,
     "metric must be one of 'cosine', 'l2', 'ip', not 'dot'"),
    (lambda v: v.topk(np.eye(2, dtype=np.float32), [1, 0], 0), ValueError, "k must be positive, got 0"),
    (lambda v: v.topk(np.eye(2, dtype=np.float32), [1, 0], 1.5), TypeError, "k must be an integer, not float"),
    (lambda v: v.topk(np.eye(2, dtype=np.float32), [0, 0], 1), ValueError,
     "cosine distance is undefined for a zero query vector"),
    (lambda v: v.topk(np.eye(2, dtype=np.float32), [1, 0, 0], 1), ValueError,
     "query vector has dimension 3; expected 2"),
    (lambda v: v.topk(np.eye(2, dtype=np.float32), [1, 0], 1, dim=3), ValueError,
     "matrix has dimension 2; expected 3"),
    (lambda v: v.topk(np.eye(2), [1, 0], 1), TypeError,
     "matrix must hold float32, got buffer format 'd'; convert with .astype('float32')"),
    (lambda v: v.topk(np.eye(4, dtype=np.float32)[:, :2], [1, 0], 1), ValueError, "matrix buffer must be C-contiguous"),
    (lambda v: v.topk(b"\0" * 12, [1, 0], 1), ValueError, "matrix buffer has 12 bytes, not a multiple of 8 (dim 2 float32)"),
    (lambda v: v.topk([b"\0" * 8, b"\0" * 4], [1, 0], 1), ValueError,
     "matrix row 1 has 4 bytes; expected 8 (dim 2 float32)"),
    (lambda v: v.topk([b"\0" * 8, [1.0, 0.0]], [1, 0], 1), TypeError,
     "matrix row 1 must be a float32 blob (bytes) or 1-D float32 buffer, not list"),
    (lambda v: v.topk(42, [1, 0], 1), TypeError,
     "matrix must be a float32 buffer (2-D array, or 1-D buffer / bytes with dim) or a list of float32 blobs, not int"),
    (lambda v: v.topk(np.zeros((2, 2, 2), np.float32), [1, 0], 1), ValueError,
     "matrix buffer must be 1- or 2-dimensional, got 3 dimensions"),
    (lambda v: v.distances(np.eye(2, dtype=np.float32), [1, float("nan")]), ValueError,
     "query vector component 1 is not finite: nan"),
    (lambda v: v.distances(np.eye(2, dtype=np.float32), np.eye(2)), ValueError,
     "query vector buffer must be 1-dimensional, got 2 dimensions"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_validation_errors(vec, case):
    call, exc, msg = BAD[case]
    with pytest.raises(exc) as info:
        call(vec)
    assert type(info.value) is exc
    assert str(info.value) == msg


def test_validate_accepts(vec):
    assert vec.validate([1, 2.5, np.float32(3)], dim=3) is None
    assert vec.validate(np.ones(4, np.float32)) is None
    assert vec.METRICS == ("cosine", "l2", "ip")


# -- parity: native and twin give identical bits --------------------------------------------

def test_native_kernels_identical():
    native, python = both("vector")
    rng = np.random.default_rng(11)
    for dim in (1, 7, 8, 9, 31, 384):
        m = random_matrix(rng, 41, dim) * np.float32(rng.choice([1e-20, 1.0, 1e15]))
        q = rng.standard_normal(dim)
        results = []
        for simd in (True, False):
            native._use_kernel(simd)
            results.append([bits(native.distances(m, q, metric)) for metric in METRICS])
        native._use_kernel(True)
        results.append([bits(python.distances(m, q, metric)) for metric in METRICS])
        assert results[0] == results[1] == results[2], dim


def outcome(fn, *args, **kw):
    try:
        res = fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - parity covers every exception
        return ("raise", type(exc), str(exc))
    if isinstance(res, array):
        return ("ok", bits(res))
    idx, dist = res
    return ("ok", idx, bits(dist))


small_values = st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0, -3.25, 1e-3, 1e20])
float32s = st.one_of(small_values, st.floats(-1e6, 1e6, width=32))


@st.composite
def matrices(draw):
    dim = draw(st.integers(1, 19))
    n = draw(st.integers(0, 12))
    rows = draw(st.lists(st.lists(float32s, min_size=dim, max_size=dim), min_size=n, max_size=n))
    if rows and draw(st.booleans()):
        rows = rows + [rows[0]] * draw(st.integers(1, 3))          # exact ties
    m = np.array(rows, dtype=np.float32).reshape(len(rows), dim)
    q = draw(st.lists(float32s, min_size=dim, max_size=dim))
    return m, q


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=matrices(), k=st.integers(-1, 20), metric=st.sampled_from(METRICS + ("bad",)),
       form=st.sampled_from(["2d", "blobs", "bytes"]))
def test_parity_hypothesis(data, k, metric, form):
    native, python = both("vector")
    m, q = data
    dim = m.shape[1]
    mat = {"2d": m, "blobs": [r.tobytes() for r in m], "bytes": m.tobytes()}[form]
    assert outcome(native.topk, mat, q, k, metric, dim=dim) == outcome(python.topk, mat, q, k, metric, dim=dim)
    assert outcome(native.distances, mat, q, metric, dim=dim) == outcome(python.distances, mat, q, metric, dim=dim)


@settings(max_examples=150, deadline=None)
@given(vec=st.one_of(
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 40, 10 ** 40),
                       st.booleans(), st.text(max_size=1), st.none()), max_size=5),
    st.binary(max_size=13), st.integers(), st.text(max_size=3)),
    dim=st.one_of(st.none(), st.integers(-1, 5)))
def test_parity_validation_hypothesis(vec, dim):
    native, python = both("vector")
    assert outcome_plain(native.validate, vec, dim) == outcome_plain(python.validate, vec, dim)
    assert outcome_plain(native.pack, vec) == outcome_plain(python.pack, vec)
    if isinstance(vec, bytes):
        assert outcome_plain(native.unpack, vec) == outcome_plain(python.unpack, vec)


def outcome_plain(fn, *args):
    try:
        res = fn(*args)
    except Exception as exc:  # noqa: BLE001
        return ("raise", type(exc), str(exc))
    if isinstance(res, list):
        return ("ok", struct.pack(f"<{len(res)}d", *res))
    return ("ok", res)
