"""Read the live schema of a database: columns (type, nullability, default, primary key),
indexes and foreign keys, on PostgreSQL, MySQL/MariaDB and SQLite.

The dialect supplies three catalogue queries with uniform row shapes; this module runs them
and assembles ``TableSchema`` objects.
"""

from __future__ import annotations

from .schema import Column, ForeignKey, Index, TableSchema

HISTORY_TABLE = "dataflow_migrations"


def _b(v) -> bool:
    return bool(v) if not isinstance(v, (bytes, str)) else v not in (b"0", "0", b"", "")


def _s(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


async def discover(db, tables=None, *, include_history: bool = False) -> dict:
    """{table name: TableSchema} for ``tables`` (all tables when None)."""
    tables = list(dict.fromkeys(tables)) if tables is not None else None
    if tables is not None and not tables:
        return {}
    sql = db.dialect.discovery_sql(len(tables) if tables else None)
    params = tuple(tables) if tables else ()
    drv = db.driver
    out: dict[str, TableSchema] = {}
    pk_pos: dict = {}
    for t, col, typ, nullable, default, _ord, autoinc, pk in await drv.fetch(sql["columns"], params):
        t, col, default = _s(t), _s(col), _s(default)
        if default is not None and str(default).upper() == "NULL":
            default = None  # MariaDB spells "no default" on a nullable column as the string NULL
        ts = out.setdefault(t, TableSchema(t))
        ts.columns[col] = Column(col, _s(typ) or "", _b(nullable), default, False, _b(autoinc))
        if pk and int(pk) > 0:
            pk_pos.setdefault(t, []).append((int(pk), col))
    grouped: dict = {}
    for t, name, unique, primary, col, pos in await drv.fetch(sql["indexes"], params):
        t, name = _s(t), _s(name)
        key = (t, name)
        g = grouped.setdefault(key, {"unique": _b(unique), "primary": _b(primary), "cols": []})
        g["cols"].append((int(pos), _s(col)))
    for (t, name), g in grouped.items():
        ts = out.get(t)
        if ts is None:
            continue
        cols = tuple(c for _, c in sorted(g["cols"]))
        if g["primary"]:
            pk_pos.setdefault(t, [])
            if not pk_pos[t]:
                pk_pos[t] = list(enumerate(cols, 1))
            continue
        ts.indexes.append(Index(name, cols, g["unique"], False, name.startswith("sqlite_autoindex_")))
    for t, pairs in pk_pos.items():
        ts = out.get(t)
        if ts is None:
            continue
        for _, c in sorted(pairs):
            if c in ts.columns:
                ts.columns[c] = ts.columns[c].with_(primary_key=True, nullable=False)
    fks: dict = {}
    for t, name, col, ref, refcol, pos in await drv.fetch(sql["foreign_keys"], params):
        t, name = _s(t), _s(name)
        fks.setdefault((t, name), {"ref": _s(ref), "cols": []})["cols"].append((int(pos), _s(col), _s(refcol)))
    for (t, name), g in fks.items():
        if t in out:
            pairs = sorted(g["cols"])
            out[t].foreign_keys.append(ForeignKey(name, tuple(c for _, c, _ in pairs), g["ref"],
                                                  tuple(r for _, _, r in pairs)))
    if "row_security" in sql:
        for t, on in await drv.fetch(sql["row_security"], params):
            if _s(t) in out:
                out[_s(t)].rls = _b(on)
    if not include_history:
        out.pop(HISTORY_TABLE, None)
    return out


async def discover_dict(db, tables=None) -> dict:
    """The public form: {table: {"columns": [...], "indexes": [...], "foreign_keys": [...]}}."""
    return {name: ts.to_dict() for name, ts in sorted((await discover(db, tables)).items())}
