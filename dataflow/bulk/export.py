"""``db.export``: a model's rows to CSV/TSV/JSONL (optionally gzipped) or Parquet (pyarrow),
read in keyset pages by id so memory stays constant on any table size.

Values are written so ``db.load`` reads them back to equal values: ISO-8601 timestamps with
offset, dates ISO, Decimal as text, UUID text, bytes as ``\\x``-hex, JSON as JSON text (CSV)
or nested JSON (JSONL).  In CSV, NULL is an empty field.
"""

from __future__ import annotations

import csv
import gzip
import os
import time
import uuid as _uuid
from decimal import Decimal

import orjson
from dataflow import _native

from ..errors import ValidationError
from .progress import Progress
from .sources import detect_format

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

PAGE = 10_000


def _text(kind):
    if kind == K.JSON or kind == K.VECTOR:
        return lambda v: orjson.dumps(v).decode()
    if kind == K.BYTES:
        return lambda v: "\\x" + bytes(v).hex()
    if kind == K.BOOL:
        return lambda v: "true" if v else "false"
    if kind == K.FLOAT:
        return repr
    if kind in (K.DATETIME, K.DATE):
        return lambda v: v.isoformat()
    return str


def _json_default(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, _uuid.UUID):
        return str(v)
    raise TypeError(f"cannot write {type(v).__name__} to JSON")


async def _pages(table, filt, fields, page):
    last = None
    while True:
        f = filt or {}
        if last is not None:
            f = {"$and": [filt, {"id": {"$gt": last}}]} if filt else {"id": {"$gt": last}}
        rows = await table.list(f, page, 0, "id", None, fields)
        if not rows:
            return
        yield rows
        if len(rows) < page:
            return
        last = rows[-1]["id"]


async def export_table(table, path, *, filter=None, format=None, fields=None, progress=None,
                       include_managed=False, batch_size=PAGE) -> dict:
    """Write the rows matching ``filter`` to ``path``; returns ``{"rows", "seconds", "path", "format"}``.

    ``fields`` picks columns (default: the settable fields, plus created_at/updated_at when
    ``include_managed``).  The format comes from ``format`` or the file name.
    """
    m = table.model
    p = os.fspath(path)
    fmt = (format or "").lower() or ("parquet" if p.lower().endswith(".parquet") else detect_format(p))
    if fmt not in ("csv", "tsv", "jsonl", "parquet"):
        raise ValidationError(f"unknown export format {fmt!r}; use csv, tsv, jsonl or parquet")
    names = list(fields) if fields else [n for n in m.columns if include_managed or n in m.user_fields]
    if "id" not in names:
        fetch = ["id"] + names
    else:
        fetch = names
    kinds = [table.kind_of[n] for n in names]
    t0 = time.perf_counter()
    await table.ready()
    # a shown bar gets its total (one COUNT); a hidden one costs nothing
    total = await table.count(filter) if Progress.shown(progress) else None
    bar = Progress(f"{m.name} export", total, progress)
    n = 0
    ok = False
    try:
        if fmt == "parquet":
            n = await _parquet(table, p, filter, names, fetch, kinds, batch_size, bar)
        else:
            opener = (lambda: gzip.open(p, "wt", encoding="utf-8", newline="")) if p.endswith(".gz") else (
                lambda: open(p, "w", encoding="utf-8", newline=""))
            with opener() as fh:
                if fmt == "jsonl":
                    async for rows in _pages(table, filter, fetch, batch_size):
                        fh.write(b"\n".join(orjson.dumps({k: r[k] for k in names}, default=_json_default)
                                                for r in rows).decode())
                        fh.write("\n")
                        n += len(rows)
                        bar.update(len(rows))
                else:
                    w = csv.writer(fh, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
                    w.writerow(names)
                    conv = [_text(k) for k in kinds]
                    async for rows in _pages(table, filter, fetch, batch_size):
                        w.writerows([["" if r[k] is None else c(r[k]) for k, c in zip(names, conv)] for r in rows])
                        n += len(rows)
                        bar.update(len(rows))
        ok = True
    finally:
        bar.close(ok)
    dt = time.perf_counter() - t0
    return {"rows": n, "seconds": dt, "rows_per_second": n / dt if dt > 0 else 0.0, "path": p, "format": fmt}


async def _parquet(table, p, filt, names, fetch, kinds, page, bar):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValidationError("Parquet export needs pyarrow: pip install pyarrow") from None
    writer = None
    n = 0
    try:
        async for rows in _pages(table, filt, fetch, page):
            cols = {}
            for name, k in zip(names, kinds):
                vals = [r[name] for r in rows]
                if k in (K.JSON, K.VECTOR):
                    vals = [None if v is None else orjson.dumps(v).decode() for v in vals]
                elif k == K.UUID:
                    vals = [None if v is None else str(v) for v in vals]
                cols[name] = vals
            batch = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(p, batch.schema)
            writer.write_table(batch.cast(writer.schema))
            n += len(rows)
            bar.update(len(rows))
        if writer is None:
            pq.write_table(pa.table({name: [] for name in names}), p)
    finally:
        if writer is not None:
            writer.close()
    return n

