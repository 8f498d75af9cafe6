"""VectorSearchNode and CreateVectorIndexNode: workflow nodes over any DataFlow's vector fields.

Not bound to one model: the node finds its table from ``model`` (a class or name) or
``table_name``, and its DataFlow from ``db_instance`` (the instance or its name), from the
model class, or as the only live DataFlow defining that model.
"""

from __future__ import annotations

from ..errors import UnsupportedFeatureError, ValidationError
from ..models.naming import is_identifier, shorten, snake_case
from ..nodes import registry
from ..nodes.base import Node, Param
import dataflow.vector.search as S
import dataflow.vector.setup as B

HNSW_M = (2, 100)
HNSW_EF_CONSTRUCTION = (4, 1000)
IVFFLAT_LISTS = (1, 32768)


def resolve_table(model=None, table_name=None, db_instance=None):
    """-> the Table for ``model`` / ``table_name`` on the right DataFlow.  ``table_name`` may
    also be the model's name or its singular snake case; an unknown one lists the tables."""
    if (model is None) == (table_name is None):
        raise ValidationError("pass exactly one of 'model' and 'table_name'")
    db = db_instance
    if db is None and isinstance(model, type):
        db = getattr(model, "__dataflow_db__", None)
    if isinstance(db, str):
        found = registry.LIVE.get(db)
        if found is None:
            raise ValidationError(f"no live DataFlow named {db!r}")
        db = found
    candidates = [db] if db is not None else _live()
    tables = [t for d in candidates for t in d._tables.values()]
    if model is not None:
        name = model if isinstance(model, str) else model.__name__
        hits = [t for t in tables if t.model.name == name]
    else:
        # the table name itself; else, as the well-known project's examples write it, the
        # model's name in singular snake case ("knowledge_base" for KnowledgeBase, table
        # knowledge_bases) or the model's name
        hits = [t for t in tables if t.model.table == table_name] or [
            t for t in tables if table_name in (t.model.name, snake_case(t.model.name))]
    if not hits:
        what = f"table {table_name!r}" if table_name is not None else f"model {model!r}"
        known = sorted(f"{t.model.table} (model {t.model.name})" for t in tables)
        known = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
        raise ValidationError(f"no DataFlow defines {what}; "
                              + (f"the tables there are: {known}" if known else "no model is defined yet")
                              + "; define it with @db.model (or pass db_instance)")
    if len(hits) > 1:
        raise ValidationError("several DataFlow instances define it; pass db_instance (the instance or its name)")
    return hits[0]


def _live():
    return list(registry.LIVE.values())


class VectorSearchNode(Node):
    """Nearest rows to ``query_vector``: ``{"results", "count", "distance_metric"}``.

    ``filter`` is the normal filter language; on pgvector it runs in the same statement.
    """

    strict = True
    parameters = {
        "model": Param(object, default=None), "table_name": Param(str, default=None),
        "query_vector": Param(object, required=True), "k": Param(int, default=10),
        "distance": Param(str, default=None), "filter": Param(dict, default=None),
        "column_name": Param(str, default=None), "return_distance": Param(bool, default=True),
        "vector_format": Param(str, default="list"), "db_instance": Param(object, default=None),
    }

    async def run(self, ctx, model=None, table_name=None, query_vector=None, k=10, distance=None,
                  filter=None, column_name=None, return_distance=True, vector_format="list",
                  db_instance=None):
        t = resolve_table(model, table_name, db_instance)
        if distance is None:
            distance = getattr(t.db.adapter, "default_distance", None) or "cosine"
        return await S.search(t, query_vector, k, distance, filter, column_name, return_distance, vector_format)


class CreateVectorIndexNode(Node):
    """An approximate index on a vector field (pgvector): HNSW (``m``, ``ef_construction``) or
    IVFFlat (``lists``), for one ``distance``.  Elsewhere searches are exact scans and no index
    is created (``{"created": False, "reason": ...}``)."""

    strict = True
    parameters = {
        "model": Param(object, default=None), "table_name": Param(str, default=None),
        "column_name": Param(str, default=None), "index_type": Param(str, default="hnsw"),
        "distance": Param(str, default=None), "m": Param(int, default=16),
        "ef_construction": Param(int, default=64), "lists": Param(int, default=100),
        "index_name": Param(str, default=None), "db_instance": Param(object, default=None),
    }

    async def run(self, ctx, model=None, table_name=None, column_name=None, index_type="hnsw", distance=None,
                  m=16, ef_construction=64, lists=100, index_name=None, db_instance=None):
        t = resolve_table(model, table_name, db_instance)
        if distance is None:
            distance = getattr(t.db.adapter, "default_distance", None) or "cosine"
        return await create_index(t, column_name, index_type, distance, m, ef_construction, lists, index_name)


def _int_in(name, v, lo, hi):
    if type(v) is not int or not lo <= v <= hi:
        raise ValidationError(f"{name} must be an int between {lo} and {hi}, got {v!r}")
    return v


async def create_index(t, column_name=None, index_type="hnsw", distance="cosine", m=16, ef_construction=64,
                       lists=100, index_name=None) -> dict:
    """Create (if missing) a pgvector index; returns what was done."""
    model = t.model
    column, _ = S.resolve_column(model, column_name)
    S.check_metric(distance)
    if index_type == "hnsw":
        opts = {"m": _int_in("m", m, *HNSW_M),
                "ef_construction": _int_in("ef_construction", ef_construction, *HNSW_EF_CONSTRUCTION)}
        if ef_construction < 2 * m:
            raise ValidationError(f"ef_construction ({ef_construction}) must be at least 2 * m ({2 * m})")
    elif index_type == "ivfflat":
        opts = {"lists": _int_in("lists", lists, *IVFFLAT_LISTS)}
    else:
        raise ValidationError(f"index_type must be 'hnsw' or 'ivfflat', not {index_type!r}")
    name = index_name or shorten(f"ix_{model.table}_{column}_{index_type}_{distance}", 63)
    if not is_identifier(name):
        raise ValidationError(f"index_name {name!r} must be letters, digits and underscores")
    await t.ready()
    out = {"index_name": name, "index_type": index_type, "distance_metric": distance, "table": model.table,
           "column": column, "options": opts}
    if S.backend(t.db) != B.PGVECTOR:
        return {**out, "created": False,
                "reason": "no pgvector on this database: searches are exact client-side scans, no index applies"}
    sql = t.db.dialect.vector_index_sql(name, model.table, column, index_type, distance, opts)
    try:
        await t.db.driver.execute(sql)
    except UnsupportedFeatureError:
        raise
    return {**out, "created": True}


registry.register(VectorSearchNode)
registry.register(CreateVectorIndexNode)
