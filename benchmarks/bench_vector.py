"""Exact top-10 over 100,000 x 384 float32: _native.vector against single-threaded numpy.

numpy runs in a subprocess started with OPENBLAS/OMP/MKL_NUM_THREADS=1 (the env must be set
before numpy loads BLAS), so both sides use one core.  The python twin runs on a slice and is
scaled to the full size (noted in its row).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

N, DIM, K, SEED = 100_000, 384, 10, 20240601
TWIN_ROWS = {True: 200, False: 1000}

_NUMPY_CHILD = r"""
import json, sys, time
import numpy as np
N, DIM, K, SEED, REPS = (int(x) for x in sys.argv[1:6])
rng = np.random.default_rng(SEED)
M = rng.standard_normal((N, DIM), dtype=np.float32)
q = rng.standard_normal(DIM, dtype=np.float32)

def top(d):
    i = np.argpartition(d, K)[:K]
    return i[np.argsort(d[i], kind="stable")]

norms = np.linalg.norm(M, axis=1)
sq = np.einsum("ij,ij->i", M, M)
cases = {
    "cosine": {
        "numpy, norms precomputed": lambda: top(1 - (M @ q) / (norms * np.linalg.norm(q))),
        "numpy, norms computed in call": lambda: top(1 - (M @ q) / (np.linalg.norm(M, axis=1) * np.linalg.norm(q))),
    },
    "l2": {
        "numpy, |m|^2 precomputed": lambda: top(np.sqrt(np.maximum(sq + q @ q - 2 * (M @ q), 0))),
        "numpy, direct sqrt(sum((m-q)^2))": lambda: top(np.sqrt(((M - q) ** 2).sum(axis=1))),
    },
    "ip": {
        "numpy, -(M @ q)": lambda: top(-(M @ q)),
    },
}
out = {}
for metric, group in cases.items():
    for name, fn in group.items():
        fn()
        ts = []
        for _ in range(REPS):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        out.setdefault(metric, {})[name] = sorted(ts)[len(ts) // 2]
print(json.dumps(out))
"""

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import median_of as _median
except ImportError:  # pragma: no cover
    from timing import median_of as _median

BASELINES = {"cosine": "numpy, norms precomputed", "l2": "numpy, |m|^2 precomputed", "ip": "numpy, -(M @ q)"}


def _numpy_single_thread(reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _NUMPY_CHILD, str(N), str(DIM), str(K), str(SEED), str(reps)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def run(quick: bool) -> list[dict]:
    import numpy as np

    from dataflow import _native

    reps = 5 if quick else 15
    rng = np.random.default_rng(SEED)
    M = rng.standard_normal((N, DIM), dtype=np.float32)
    q = rng.standard_normal(DIM, dtype=np.float32)
    numpy_times = _numpy_single_thread(reps)
    twin = _native.load("vector", "python")
    try:
        native = _native.load("vector", "native")
    except ImportError:
        native = None
    rows = TWIN_ROWS[quick]
    out = []
    for metric in ("cosine", "l2", "ip"):
        group = f"vector top-10 {metric} 100k\u00d7384"
        base = BASELINES[metric] + " (1 BLAS thread)"
        if native is not None and str(getattr(native, "__file__", "")).endswith((".so", ".pyd")):
            kernels = ["avx2+fma", "baseline"] if native.KERNEL == "avx2+fma" else [native.KERNEL]
            for simd, kernel in zip((True, False), kernels):
                native._use_kernel(simd)
                t = _median(lambda: native.topk(M, q, K, metric), reps)
                out.append({"group": group, "case": f"_native.vector.topk [{kernel}]", "median_s": t,
                            "baseline": base, "note": "1 thread, one pass, GIL released"})
            native._use_kernel(True)
        for name, t in numpy_times[metric].items():
            case = name + " (1 BLAS thread)"
            out.append({"group": group, "case": case, "median_s": t, "baseline": None if case == base else base,
                        "note": "argpartition + argsort"})
        t = _median(lambda: twin.topk(M[:rows], q, K, metric), 1 if quick else 3) * (N / rows)
        out.append({"group": group, "case": "python twin", "median_s": t, "baseline": base,
                    "note": f"measured on {rows} rows, scaled x{N // rows}"})
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    entries = run(quick)
    times = {(e["group"], e["case"]): e["median_s"] for e in entries}
    for e in entries:
        ratio = ""
        if e["baseline"]:
            ratio = f"{e['median_s'] / times[(e['group'], e['baseline'])]:.2f}x"
        print(f"{e['group']:<32} {e['case']:<50} {e['median_s'] * 1e3:10.2f} ms {ratio:>8}  {e['note']}")
