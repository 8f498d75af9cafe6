"""The ``dataflow_migrations`` table: one row per applied migration with the model-schema
checksum, the DDL that ran and the reverse DDL that undoes it."""

from __future__ import annotations

import datetime as _dt
import json

from dataflow import _native

from .discover import HISTORY_TABLE

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

IRREVERSIBLE = "-- irreversible: "


def new_version(now: _dt.datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S%f")


async def ensure(db) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MySQL: "already exists" note
        await db.driver.execute(db.dialect.history_table_sql(HISTORY_TABLE))


def render(ops) -> tuple[list, list]:
    """(forward DDL, reverse DDL in the order that undoes the operations)."""
    fwd, rev = [], []
    for op in ops:
        for sql, params in op.statements:
            fwd.append(sql + (f" -- params: {list(map(repr, params))}" if params else ""))
    for op in reversed(ops):
        rev.extend(op.reverse if op.reverse else [IRREVERSIBLE + str(op)])
    return fwd, rev


async def record(db, checksum: str, ops, now=None) -> str:
    d = db.dialect
    now = now or _dt.datetime.now(_dt.timezone.utc)
    version = new_version(now)
    fwd, rev = render(ops)
    cols = ("version", "checksum", "applied_at", "ddl", "reverse_ddl", "status")
    sql = (f"INSERT INTO {d.quote(HISTORY_TABLE)} ({', '.join(d.quote(c) for c in cols)}) "
           f"VALUES ({', '.join(d.placeholders(len(cols)))})")
    await db.driver.execute(sql, (version, checksum, d.coerce(now, K.DATETIME), json.dumps(fwd),
                                  json.dumps(rev), "applied"))
    return version


async def rows(db, version: str | None = None) -> list[dict]:
    d = db.dialect
    q = d.quote
    sql = (f"SELECT {q('version')}, {q('checksum')}, {q('applied_at')}, {q('ddl')}, {q('reverse_ddl')}, "
           f"{q('status')}, {q('rolled_back_at')} FROM {q(HISTORY_TABLE)}")
    params = ()
    if version is not None:
        sql += f" WHERE {q('version')} = {d.placeholder(1)}"
        params = (version,)
    out = []
    for r in await db.driver.fetch(sql + f" ORDER BY {q('version')}", params):
        out.append({"version": r[0], "checksum": r[1], "applied_at": r[2], "ddl": json.loads(r[3]),
                    "reverse_ddl": json.loads(r[4]), "status": r[5], "rolled_back_at": r[6]})
    return out


async def mark_rolled_back(db, version: str, now=None) -> None:
    d = db.dialect
    q = d.quote
    now = now or _dt.datetime.now(_dt.timezone.utc)
    p1, p2 = d.placeholders(2)
    await db.driver.execute(f"UPDATE {q(HISTORY_TABLE)} SET {q('status')} = 'rolled_back', "
                            f"{q('rolled_back_at')} = {p1} WHERE {q('version')} = {p2}",
                            (d.coerce(now, K.DATETIME), version))
