# distutils: extra_compile_args = -ffp-contract=off -fno-math-errno
"""Distances and exact top-k over float32 vectors: one pass over memory, no Python per row.

The arithmetic is fixed so the pure-Python twin (``_native/_pure/vector.py``) reproduces it bit
for bit: float32 -> double (products are then exact), 8 lanes over ``j % 8``, a fixed add tree.
``-ffp-contract=off`` keeps compilers that default to FMA contraction (aarch64) from fusing the
L2 ``d*d + s`` (that product is not exact); ``-fno-math-errno`` only drops errno on sqrt.
"""

import math
import numbers
import os
import sys
from array import array
from operator import index

from cpython.bytes cimport PyBytes_AS_STRING
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc, qsort

if sys.byteorder != "little":  # pragma: no cover - the twin handles big-endian hosts
    raise ImportError("_native.vector reads float32 storage in place and needs a little-endian host")

cdef extern from *:
    """
    #include <math.h>
    #include <string.h>

    typedef struct { double d; Py_ssize_t i; int nan; } df_item;

    /* The one summation order both implementations use: lanes j % 8, then this tree. */
    static inline double df_tree(const double *s) {
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }

    /* MADD(x, y, s) = s + x*y.  Both operands are float32 values widened to double, so x*y is
       exact in double and a fused multiply-add rounds once to the very same result: the FMA
       build below is bit-identical to the plain one (and to the twin).  The L2 difference is
       not exact, so L2 never fuses (and -ffp-contract=off forbids the compiler to). */
    #define DF_MADD_PLAIN(x, y, s) ((s) + (x) * (y))

    /* The kernels are written once, on 4-double vectors (GCC/clang vector extensions): lanes
       0-3 and 4-7 of the j % 8 scheme are the two halves.  The baseline build lowers them to
       SSE2 pairs; the AVX2 build below uses one ymm register each.  R rows per call share each
       q load and give the CPU R times the independent add/FMA chains (8 lanes of one row are
       latency-bound); every row still sums in its own fixed order. */
    typedef double df_v4d __attribute__((vector_size(32)));
    typedef float df_v4f __attribute__((vector_size(16)));
    #define DF_LOADF(dst, p) do { df_v4f f_; memcpy(&f_, (p), 16); dst = __builtin_convertvector(f_, df_v4d); } while (0)
    #define DF_LOADD(dst, p) memcpy(&(dst), (p), 32)
    #define DF_SPILL(arr, lo, hi) do { memcpy((arr), &(lo), 32); memcpy((arr) + 4, &(hi), 32); } while (0)
    /* Prefetch the next group of R rows (only a hint, never faults). */
    #define DF_PREFETCH(p, j, ahead) __builtin_prefetch((p) + (j) + (ahead))
    #define DF_VMADD_PLAIN(x, y, s) ((s) + (x) * (y))
    #define DF_R_COS 4
    #define DF_R_L2 4
    #define DF_R_IP 4

    #define DF_KERNELS(SFX, ATTR, MADD, VMADD, LOADF) \\
    static ATTR inline void df_cos_##SFX(const float *const *rp, const double *q, \\
                                         Py_ssize_t dim, double nq, double *out) { \\
        df_v4d s0[DF_R_COS], s1[DF_R_COS], t0[DF_R_COS], t1[DF_R_COS], y0, y1, x0, x1; \\
        double s[8], t[8]; \\
        Py_ssize_t j = 0, main = dim & ~(Py_ssize_t)7; \\
        for (int r = 0; r < DF_R_COS; r++) { s0[r] = s1[r] = t0[r] = t1[r] = (df_v4d){0, 0, 0, 0}; } \\
        for (; j < main; j += 8) { \\
            DF_LOADD(y0, q + j); DF_LOADD(y1, q + j + 4); \\
            for (int r = 0; r < DF_R_COS; r++) { \\
                DF_PREFETCH(rp[r], j, DF_R_COS * dim); \\
                LOADF(x0, rp[r] + j); LOADF(x1, rp[r] + j + 4); \\
                s0[r] = VMADD(x0, y0, s0[r]); s1[r] = VMADD(x1, y1, s1[r]); \\
                t0[r] = VMADD(x0, x0, t0[r]); t1[r] = VMADD(x1, x1, t1[r]); \\
            } \\
        } \\
        for (int r = 0; r < DF_R_COS; r++) { \\
            const float *a = rp[r]; \\
            DF_SPILL(s, s0[r], s1[r]); DF_SPILL(t, t0[r], t1[r]); \\
            for (Py_ssize_t jj = j, l = 0; jj < dim; jj++, l++) { \\
                double x = (double)a[jj]; \\
                s[l] = MADD(x, q[jj], s[l]); t[l] = MADD(x, x, t[l]); \\
            } \\
            out[r] = df_cos_finish(s, t, nq); \\
        } \\
    } \\
    static ATTR inline void df_l2_##SFX(const float *const *rp, const double *q, \\
                                        Py_ssize_t dim, double nq, double *out) { \\
        df_v4d s0[DF_R_L2], s1[DF_R_L2], y0, y1, x0, x1; \\
        double s[8]; \\
        Py_ssize_t j = 0, main = dim & ~(Py_ssize_t)7; \\
        (void)nq; \\
        for (int r = 0; r < DF_R_L2; r++) { s0[r] = s1[r] = (df_v4d){0, 0, 0, 0}; } \\
        for (; j < main; j += 8) { \\
            DF_LOADD(y0, q + j); DF_LOADD(y1, q + j + 4); \\
            for (int r = 0; r < DF_R_L2; r++) { \\
                DF_PREFETCH(rp[r], j, DF_R_L2 * dim); \\
                LOADF(x0, rp[r] + j); LOADF(x1, rp[r] + j + 4); \\
                x0 -= y0; x1 -= y1; \\
                s0[r] += x0 * x0; s1[r] += x1 * x1; \\
            } \\
        } \\
        for (int r = 0; r < DF_R_L2; r++) { \\
            const float *a = rp[r]; \\
            DF_SPILL(s, s0[r], s1[r]); \\
            for (Py_ssize_t jj = j, l = 0; jj < dim; jj++, l++) { \\
                double d = (double)a[jj] - q[jj]; \\
                s[l] += d * d; \\
            } \\
            out[r] = sqrt(df_tree(s)); \\
        } \\
    } \\
    static ATTR inline void df_ip_##SFX(const float *const *rp, const double *q, \\
                                        Py_ssize_t dim, double nq, double *out) { \\
        df_v4d s0[DF_R_IP], s1[DF_R_IP], y0, y1, x0, x1; \\
        double s[8]; \\
        Py_ssize_t j = 0, main = dim & ~(Py_ssize_t)7; \\
        (void)nq; \\
        for (int r = 0; r < DF_R_IP; r++) { s0[r] = s1[r] = (df_v4d){0, 0, 0, 0}; } \\
        for (; j < main; j += 8) { \\
            DF_LOADD(y0, q + j); DF_LOADD(y1, q + j + 4); \\
            for (int r = 0; r < DF_R_IP; r++) { \\
                DF_PREFETCH(rp[r], j, DF_R_IP * dim); \\
                LOADF(x0, rp[r] + j); LOADF(x1, rp[r] + j + 4); \\
                s0[r] = VMADD(x0, y0, s0[r]); s1[r] = VMADD(x1, y1, s1[r]); \\
            } \\
        } \\
        for (int r = 0; r < DF_R_IP; r++) { \\
            const float *a = rp[r]; \\
            DF_SPILL(s, s0[r], s1[r]); \\
            for (Py_ssize_t jj = j, l = 0; jj < dim; jj++, l++) s[l] = MADD((double)a[jj], q[jj], s[l]); \\
            out[r] = -df_tree(s); \\
        } \\
    } \\
    static ATTR void df_scan_all_##SFX(const float *base, const float *const *ptrs, Py_ssize_t n, \\
                                       Py_ssize_t dim, const double *q, double nq, int metric, double *out) { \\
        DF_DISPATCH(SFX, out[i] = d) \\
    } \\
    static ATTR Py_ssize_t df_scan_topk_##SFX(const float *base, const float *const *ptrs, Py_ssize_t n, \\
                                              Py_ssize_t dim, const double *q, double nq, int metric, \\
                                              df_item *heap, Py_ssize_t k) { \\
        Py_ssize_t cnt = 0; \\
        DF_DISPATCH(SFX, df_offer(heap, k, &cnt, d, i)) \\
        return cnt; \\
    }

    /* pgvector's cosine: 1 - dot / sqrt(|a|^2 |q|^2), similarity clamped to [-1, 1]. */
    static inline double df_cos_finish(const double *s, const double *t, double nq) {
        double nn = df_tree(t) * nq;
        if (nn == 0.0) return (double)NAN;
        double sim = df_tree(s) / sqrt(nn);
        if (sim > 1.0) sim = 1.0;
        else if (sim < -1.0) sim = -1.0;
        return 1.0 - sim;
    }

    /* Ranking: numbers ascending, NaN after every number, equal keys by position. */
    static inline int df_less(double da, int na, Py_ssize_t ia, double db, int nb, Py_ssize_t ib) {
        if (na != nb) return na < nb;
        if (!na && da != db) return da < db;
        return ia < ib;
    }

    static int df_cmp(const void *pa, const void *pb) {
        const df_item *a = (const df_item *)pa, *b = (const df_item *)pb;
        return df_less(a->d, a->nan, a->i, b->d, b->nan, b->i) ? -1 : 1;
    }

    /* Max-heap on df_less: the root is the worst of the best k seen so far. */
    static inline void df_sift_down(df_item *h, Py_ssize_t cnt, Py_ssize_t pos) {
        df_item it = h[pos];
        for (;;) {
            Py_ssize_t c = 2 * pos + 1;
            if (c >= cnt) break;
            if (c + 1 < cnt && df_less(h[c].d, h[c].nan, h[c].i, h[c + 1].d, h[c + 1].nan, h[c + 1].i)) c++;
            if (!df_less(it.d, it.nan, it.i, h[c].d, h[c].nan, h[c].i)) break;
            h[pos] = h[c];
            pos = c;
        }
        h[pos] = it;
    }

    static inline void df_sift_up(df_item *h, Py_ssize_t pos) {
        df_item it = h[pos];
        while (pos > 0) {
            Py_ssize_t p = (pos - 1) / 2;
            if (!df_less(h[p].d, h[p].nan, h[p].i, it.d, it.nan, it.i)) break;
            h[pos] = h[p];
            pos = p;
        }
        h[pos] = it;
    }

    static inline void df_offer(df_item *h, Py_ssize_t k, Py_ssize_t *cnt, double d, Py_ssize_t i) {
        int nan = d != d;
        if (*cnt < k) {
            h[*cnt].d = nan ? 0.0 : d; h[*cnt].nan = nan; h[*cnt].i = i;
            df_sift_up(h, (*cnt)++);
        } else if (df_less(d, nan, i, h[0].d, h[0].nan, h[0].i)) {
            h[0].d = nan ? 0.0 : d; h[0].nan = nan; h[0].i = i;
            df_sift_down(h, k, 0);
        }
    }

    #define DF_ROW(i) (ptrs ? ptrs[i] : base + (i) * dim)
    /* Rows in groups of R; a short last group repeats its last row (computed, not reported). */
    #define DF_LOOP(FN, R, BODY) \\
        for (Py_ssize_t i0 = 0; i0 < n; i0 += R) { \\
            double dd[R]; const float *rp[R]; \\
            for (int r = 0; r < R; r++) rp[r] = DF_ROW(i0 + r < n ? i0 + r : n - 1); \\
            FN(rp, q, dim, nq, dd); \\
            for (Py_ssize_t i = i0; i < i0 + R && i < n; i++) { double d = dd[i - i0]; BODY; } \\
        }
    #define DF_DISPATCH(SFX, BODY) switch (metric) { \\
        case 0: DF_LOOP(df_cos_##SFX, DF_R_COS, BODY) break; \\
        case 1: DF_LOOP(df_l2_##SFX, DF_R_L2, BODY) break; \\
        default: DF_LOOP(df_ip_##SFX, DF_R_IP, BODY) break; }

    /* Portable build: SSE2 on x86-64 (2 doubles a vector), whatever the target offers elsewhere. */
    DF_KERNELS(base, , DF_MADD_PLAIN, DF_VMADD_PLAIN, DF_LOADF)

    /* x86-64 with GCC/clang: an AVX2+FMA build of the same kernels, chosen at run time, so the
       wheel stays portable (no -march) yet uses 4-double vectors where the CPU has them. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #define DF_HAVE_AVX2 1
    #include <immintrin.h>
    #define DF_MADD_FMA(x, y, s) __builtin_fma((x), (y), (s))
    #define DF_VMADD_FMA(x, y, s) ((df_v4d)_mm256_fmadd_pd((__m256d)(x), (__m256d)(y), (__m256d)(s)))
    #define DF_LOADF_AVX(dst, p) dst = (df_v4d)_mm256_cvtps_pd(_mm_loadu_ps(p))
    DF_KERNELS(avx2, __attribute__((target("avx2,fma"))), DF_MADD_FMA, DF_VMADD_FMA, DF_LOADF_AVX)
    static int df_use_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    #define DF_HAVE_AVX2 0
    static int df_use_avx2(void) { return 0; }
    #endif

    static int df_avx2 = -1;   /* -1: not probed; set once from df_set_kernel */

    static const char *df_set_kernel(int allow_simd) {
        df_avx2 = allow_simd && df_use_avx2();
        return df_avx2 ? "avx2+fma" : "baseline";
    }

    static void df_scan_all(const float *base, const float *const *ptrs, Py_ssize_t n, Py_ssize_t dim,
                            const double *q, double nq, int metric, double *out) {
    #if DF_HAVE_AVX2
        if (df_avx2) { df_scan_all_avx2(base, ptrs, n, dim, q, nq, metric, out); return; }
    #endif
        df_scan_all_base(base, ptrs, n, dim, q, nq, metric, out);
    }

    static Py_ssize_t df_scan_topk(const float *base, const float *const *ptrs, Py_ssize_t n, Py_ssize_t dim,
                                   const double *q, double nq, int metric, df_item *heap, Py_ssize_t k) {
        Py_ssize_t cnt;
    #if DF_HAVE_AVX2
        if (df_avx2) cnt = df_scan_topk_avx2(base, ptrs, n, dim, q, nq, metric, heap, k);
        else
    #endif
        cnt = df_scan_topk_base(base, ptrs, n, dim, q, nq, metric, heap, k);
        qsort(heap, (size_t)cnt, sizeof(df_item), df_cmp);
        return cnt;
    }
    """
    ctypedef struct df_item:
        double d
        Py_ssize_t i
        int nan
    double df_tree(const double *s) nogil
    void df_scan_all(const float *base, const float *const *ptrs, Py_ssize_t n, Py_ssize_t dim,
                     const double *q, double nq, int metric, double *out) nogil
    Py_ssize_t df_scan_topk(const float *base, const float *const *ptrs, Py_ssize_t n, Py_ssize_t dim,
                            const double *q, double nq, int metric, df_item *heap, Py_ssize_t k) nogil
    const char *df_set_kernel(int allow_simd)


METRICS = ("cosine", "l2", "ip")

#: Which compiled kernel runs: "avx2+fma" (x86-64 CPUs that have it) or "baseline".  Both give
#: identical bits; DATAFLOW_VECTOR_BASELINE=1 forces the baseline (used by tests to compare them).
KERNEL = df_set_kernel(not os.environ.get("DATAFLOW_VECTOR_BASELINE")).decode()


def _use_kernel(simd):
    """Test hook: select the AVX2+FMA kernel (when the CPU has it) or the baseline; returns KERNEL."""
    global KERNEL
    KERNEL = df_set_kernel(bool(simd)).decode()
    return KERNEL

_FLOAT32 = ("f", "<f", "=f", "@f")
_FLOAT64 = ("d", "<d", "=d", "@d")
_BYTES = ("B", "b", "c", "@B", "=B", "<B", ">B", "!B", "@b", "=b", "<b", ">b", "!b")
_NAN = float("nan")


# -- argument parsing (kept textually in step with _pure/vector.py) ----------------------------

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
    """float32 little-endian bytes -> array('f') (host is little-endian)."""
    if len(data) % 4:
        raise ValueError(f"float32 blob length must be a multiple of 4, got {len(data)} bytes")
    out = array("f")
    out.frombytes(data)
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
    """Validate ``vec`` and return its components as array('f') (rounded to float32)."""
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


cdef class _Rows:
    """Row pointers into caller memory (kept alive by ``keep``); no copy for aligned buffers."""
    cdef const float *base
    cdef const float **ptrs
    cdef Py_ssize_t n
    cdef list keep

    def __dealloc__(self):
        if self.ptrs != NULL:
            free(self.ptrs)


cdef const float *_aligned_ptr(_Rows rows, object data) except? NULL:
    cdef const unsigned char[::1] view = data
    cdef const unsigned char *p = &view[0]
    if (<uintptr_t>p) & 3:
        data = bytes(data)  # copies into a bytes object, whose payload is aligned
        view = data
        p = &view[0]
    rows.keep.append(data)
    return <const float *>p


cdef _Rows _matrix_rows(matrix, Py_ssize_t dim):
    """Point at every row of any accepted matrix form; same checks/messages as the twin."""
    cdef _Rows rows = _Rows.__new__(_Rows)
    cdef Py_ssize_t step = dim * 4, i, nrows
    rows.keep = []
    if isinstance(matrix, (list, tuple)):
        nrows = len(matrix)
        rows.ptrs = <const float **>malloc(max(nrows, 1) * sizeof(float *))
        if rows.ptrs == NULL:
            raise MemoryError()
        for i in range(nrows):
            row = matrix[i]
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
                rows.keep.append(data)
            if len(<bytes>data) != step:
                raise ValueError(f"matrix row {i} has {len(<bytes>data)} bytes; expected {step} (dim {dim} float32)")
            rows.ptrs[i] = <const float *>PyBytes_AS_STRING(data)
        rows.keep.append(matrix)
        rows.n = nrows
        return rows
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
        nrows, mdim = mv.shape
        if mdim != dim:
            raise ValueError(f"matrix has dimension {mdim}; expected {dim}")
    elif mv.ndim == 1:
        if mv.nbytes % step:
            raise ValueError(f"matrix buffer has {mv.nbytes} bytes, not a multiple of {step} (dim {dim} float32)")
        nrows = mv.nbytes // step
    else:
        raise ValueError(f"matrix buffer must be 1- or 2-dimensional, got {mv.ndim} dimensions")
    rows.n = nrows
    if nrows:
        rows.base = _aligned_ptr(rows, mv.cast("B"))
    return rows


cdef class _Query:
    cdef double *q
    cdef Py_ssize_t dim
    cdef double nq

    def __dealloc__(self):
        if self.q != NULL:
            free(self.q)


cdef _prepare(matrix, query, metric, dim):
    """Shared argument handling: returns (_Rows, _Query, metric code)."""
    cdef _Query qq = _Query.__new__(_Query)
    cdef Py_ssize_t j
    cdef double lanes[8]
    _check_metric(metric)
    dim = _check_dim(dim)
    mdim = _matrix_dim(matrix)
    if dim is not None and mdim is not None and dim != mdim:
        raise ValueError(f"matrix has dimension {mdim}; expected {dim}")
    want = dim if dim is not None else mdim
    q32 = _vector_values(query, want, "query vector")
    qq.dim = len(q32)
    rows = _matrix_rows(matrix, qq.dim)
    qq.q = <double *>malloc(qq.dim * sizeof(double))
    if qq.q == NULL:
        raise MemoryError()
    cdef float[::1] qv = q32
    for j in range(qq.dim):
        qq.q[j] = <double>qv[j]
    for j in range(8):
        lanes[j] = 0.0
    for j in range(qq.dim):
        lanes[j % 8] += qq.q[j] * qq.q[j]
    qq.nq = df_tree(lanes)
    if metric == "cosine" and qq.nq == 0.0:
        raise ValueError("cosine distance is undefined for a zero query vector")
    return rows, qq, METRICS.index(metric)


# -- public API (contract and reasons in vector.pyi) ----------------------------------------------

def validate(vec, dim=None):
    dim = _check_dim(dim)
    _vector_values(vec, dim, "vector")


def pack(vec):
    return _vector_values(vec, None, "vector").tobytes()


def unpack(blob):
    try:
        mv = memoryview(blob)
    except TypeError:
        raise TypeError(f"blob must be bytes-like, not {type(blob).__name__}") from None
    return _le_float32(mv.tobytes()).tolist()


def distances(matrix, query, metric="cosine", dim=None):
    rows, qq, code = _prepare(matrix, query, metric, dim)
    cdef _Rows r = rows
    cdef _Query q = qq
    cdef int c = code
    out = array("d", bytes(8 * r.n))
    if r.n == 0:
        return out
    cdef double[::1] ov = out
    cdef double *op = &ov[0]
    with nogil:
        df_scan_all(r.base, r.ptrs, r.n, q.dim, q.q, q.nq, c, op)
    return out


def topk(matrix, query, k, metric="cosine", dim=None):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, not {type(k).__name__}")
    k = index(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    rows, qq, code = _prepare(matrix, query, metric, dim)
    cdef _Rows r = rows
    cdef _Query q = qq
    cdef int c = code
    cdef Py_ssize_t kk = min(k, r.n), cnt, i
    if kk == 0:
        return [], []
    cdef df_item *heap = <df_item *>malloc(kk * sizeof(df_item))
    if heap == NULL:
        raise MemoryError()
    try:
        with nogil:
            cnt = df_scan_topk(r.base, r.ptrs, r.n, q.dim, q.q, q.nq, c, heap, kk)
        idx = [heap[i].i for i in range(cnt)]
        dist = [_NAN if heap[i].nan else heap[i].d for i in range(cnt)]
    finally:
        free(heap)
    return idx, dist
