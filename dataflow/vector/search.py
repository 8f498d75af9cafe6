"""Nearest-neighbour search over a model's vector field, with the normal filter language.

pgvector: one statement -- ``WHERE <filter> ORDER BY emb <=> $1 LIMIT k`` with the query vector
as a bind parameter, so an HNSW/IVFFlat index can serve it.  Elsewhere (SQLite, MySQL/MariaDB,
PostgreSQL without pgvector): the filtered candidates' float32 blobs are read and ranked by
``_native.vector.topk`` -- an exact search, ties broken by id.
"""

from __future__ import annotations

from .. import _native
from ..errors import ValidationError
import dataflow.vector.setup as S

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_vector = _native.load("vector")
_params = K  # the same module, bound once
METRICS = ("cosine", "l2", "ip")
MAX_K = 100_000
DISTANCE_KEY = "distance"


def vector_fields(model) -> list[str]:
    return [n for n, f in model.fields.items() if f.kind == K.VECTOR]


def resolve_column(model, column_name=None) -> tuple[str, int]:
    """The vector field to search: ``column_name``, else "embedding", else the only one."""
    vecs = vector_fields(model)
    if column_name is None:
        if "embedding" in vecs:
            column_name = "embedding"
        elif len(vecs) == 1:
            column_name = vecs[0]
        elif not vecs:
            raise ValidationError(f"{model.name} has no vector field; declare one as Vector(n)")
        else:
            raise ValidationError(f"{model.name} has several vector fields {vecs}; pass column_name")
    f = model.fields.get(column_name) if type(column_name) is str else None
    if f is None:
        raise ValidationError(f"{model.name}: unknown column_name {column_name!r}; vector fields: {vecs}")
    if f.kind != K.VECTOR:
        raise ValidationError(f"{model.name}.{column_name} is not a vector field; vector fields: {vecs}")
    return column_name, f.dim


def check_metric(distance) -> str:
    if distance not in METRICS:
        raise ValidationError(f"distance must be one of 'cosine', 'l2', 'ip', not {distance!r}")
    return distance


def check_k(k) -> int:
    if type(k) is not int:
        raise ValidationError(f"k must be an int, got {type(k).__name__}")
    if k <= 0 or k > MAX_K:
        raise ValidationError(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def check_query(model, column: str, dim: int, query_vector, metric: str) -> bytes:
    """Validate the query vector against the field; return it as a float32 blob."""
    where = f"{model.name}.{column} query_vector"
    if query_vector is None:
        raise ValidationError(f"{where} is required")
    try:
        _vector.validate(query_vector, dim)
        blob = _vector.pack(query_vector)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: {exc}") from None
    if metric == "cosine" and not any(_vector.unpack(blob)):
        raise ValidationError(f"{where}: cosine distance is undefined for a zero vector")
    return blob


def backend(db) -> str:
    """"pgvector" or "client" once initialized (detected by DataFlow._prepare_vectors)."""
    return getattr(db, "vector_backend", None) or S.CLIENT


async def search(table, query_vector, k=10, distance="cosine", filter=None, column_name=None,
                 return_distance=True, vector_format="list") -> dict:
    """The ``k`` rows nearest to ``query_vector`` among those matching ``filter``.

    Returns ``{"results": [row + {"distance": d}], "count": n, "distance_metric": distance}``,
    nearest first.  ``vector_format="numpy"`` returns vector fields as float32 arrays.

    >>> await search(table, [0.1, 0.2, 0.3], k=5, filter={"category": "news"})
    """
    m = table.model
    distance = check_metric(distance)
    k = check_k(k)
    column, dim = resolve_column(m, column_name)
    blob = check_query(m, column, dim, query_vector, distance)
    if vector_format not in ("list", "numpy"):
        raise ValidationError(f"vector_format must be 'list' or 'numpy', not {vector_format!r}")
    await table.ready()
    db = table.db
    if backend(db) == S.PGVECTOR:
        rows, dists = await _pgvector(table, column, blob, k, distance, filter)
    else:
        rows, dists = await _client(table, column, dim, blob, k, distance, filter)
    if vector_format == "numpy":
        import numpy as np
        vecs = vector_fields(m)
        for r in rows:
            for n in vecs:
                if r[n] is not None:
                    r[n] = np.asarray(r[n], dtype=np.float32)
    if return_distance:
        for r, d in zip(rows, dists):
            r[DISTANCE_KEY] = d
    return {"results": rows, "count": len(rows), "distance_metric": distance}


async def _pgvector(table, column, blob, k, metric, filt):
    sql, params = table.st.vector_nearest(column, metric, k, filt)
    recs = await table.db.driver.fetch(sql, [blob, *params])
    cols = table.columns
    rows = _params.decode_rows(recs, cols, table.kinds, table.code)
    n = len(cols)
    return rows, [float(r[n]) for r in recs]


async def _client(table, column, dim, blob, k, metric, filt):
    d, st = table.dialect, table.st
    sql, params = st.vector_candidates(column, filt)
    drv = table.db.driver
    cands = await drv.fetch(sql, params)
    if not cands:
        return [], []
    try:
        idx, dists = _vector.topk([r[1] for r in cands], blob, k, metric, dim)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{table.model.name}.{column}: a stored vector does not fit Vector({dim}): {exc}") from None
    ids = [cands[i][0] for i in idx]
    by_id = {}
    step = max(1, d.max_params - 1)
    cols = table.columns
    for s in range(0, len(ids), step):
        sql, params = st.rows_by_ids(ids[s:s + step])
        recs = await drv.fetch(sql, params)
        for r in _params.decode_rows(recs, cols, table.kinds, table.code):
            by_id[_key(r["id"])] = r
    rows, out_d = [], []
    for i, dist in zip(ids, dists):
        r = by_id.get(_key(_params.decode(i, table.model.id_kind, table.code)))
        if r is not None:                  # deleted between the two reads: skip it
            rows.append(r)
            out_d.append(dist)
    return rows, out_d


def _key(v):
    return str(v)
