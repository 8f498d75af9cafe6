"""The ``dataflow_migrations`` table: one row per applied migration with the model-schema
checksum, the DDL that ran and the reverse DDL that undoes it."""

from __future__ import annotations

import datetime as _dt
import json

from .. import _native
from ..statements import admin
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
    await db.driver.execute(admin.history_insert(d, HISTORY_TABLE), (version, checksum, d.coerce(now, K.DATETIME), json.dumps(fwd),
                                  json.dumps(rev), "applied"))
    return version


async def rows(db, version: str | None = None) -> list[dict]:
    sql = admin.history_select(db.dialect, HISTORY_TABLE, version is not None)
    out = []
    for r in await db.driver.fetch(sql, () if version is None else (version,)):
        out.append({"version": r[0], "checksum": r[1], "applied_at": r[2], "ddl": json.loads(r[3]),
                    "reverse_ddl": json.loads(r[4]), "status": r[5], "rolled_back_at": r[6]})
    return out


async def mark_rolled_back(db, version: str, now=None) -> None:
    d = db.dialect
    now = now or _dt.datetime.now(_dt.timezone.utc)
    await db.driver.execute(admin.history_mark_rolled_back(d, HISTORY_TABLE), (d.coerce(now, K.DATETIME), version))
