"""Readers for everything ``db.load`` accepts, each streamed in batches of constant size:
sync/async iterables of dicts or tuples, CSV/TSV/JSONL files (optionally gzipped), dicts of
columns, numpy structured arrays, pandas DataFrames and Arrow tables (when installed).

A reader yields ``("rows", items, n)`` or ``("cols", {name: column}, n)``; it never builds
table rows itself (that is ``rows.RowPlan``).  An exception raised by the source becomes a
``BulkLoadError`` whose ``failed_index`` is the index of the item it failed to produce.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os

import orjson

from ..errors import BulkLoadError, ValidationError

_FORMATS = ("csv", "tsv", "jsonl")


class Source:
    """One opened source: ``kind`` ("rows"/"cols"), ``first`` (first item, or None),
    ``columns`` (column names when the source names them), ``parse`` (None, "text", "json")."""

    kind = "rows"
    first = None
    columns = None
    parse = None
    total = None
    #: a file's size in bytes and a callable -> bytes read so far (drive the progress bar)
    size = None
    position = None

    def batches(self, size: int):  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


def _source_error(index, exc) -> BulkLoadError:
    return BulkLoadError(f"the source raised while producing row {index}: {type(exc).__name__}: {exc}",
                         failed_index=index, cause=exc)


class IterSource(Source):
    def __init__(self, it, first, parse=None, columns=None, closer=None, total=None):
        self._it = it
        self.first = first
        self.parse = parse
        self.columns = columns
        self._closer = closer
        self.total = total

    async def batches(self, size):
        it = self._it
        index = 0
        if self.first is not None:
            pending = [self.first]
        else:
            pending = []
        while True:
            batch = pending
            pending = []
            append = batch.append
            try:
                for item in itertools.islice(it, size - len(batch)):
                    append(item)
            except BulkLoadError:
                raise
            except Exception as exc:
                raise _source_error(index + len(batch), exc) from exc
            if not batch:
                return
            yield "rows", batch, len(batch)
            index += len(batch)
            if len(batch) < size:
                return

    def close(self):
        if self._closer is not None:
            self._closer()


class AsyncIterSource(Source):
    def __init__(self, ait, first):
        self._ait = ait
        self.first = first

    async def batches(self, size):
        index = 0
        batch = [self.first]
        done = False
        while not done:
            try:
                while len(batch) < size:
                    batch.append(await self._ait.__anext__())
            except StopAsyncIteration:
                done = True
            except BulkLoadError:
                raise
            except Exception as exc:
                raise _source_error(index + len(batch), exc) from exc
            if batch:
                yield "rows", batch, len(batch)
                index += len(batch)
            batch = []

    def close(self):
        aclose = getattr(self._ait, "aclose", None)
        if aclose is not None:
            import asyncio
            try:
                asyncio.get_running_loop().create_task(aclose())
            except RuntimeError:
                pass


class ColumnSource(Source):
    kind = "cols"

    def __init__(self, cols: dict, chunks=None):
        self._cols = cols
        self.columns = list(cols)
        lens = {len(c) for c in cols.values()}
        if len(lens) > 1:
            raise ValidationError(f"the columns have different lengths: "
                                  f"{ {k: len(v) for k, v in cols.items()} }")
        self.total = lens.pop() if lens else 0
        self._chunks = chunks

    async def batches(self, size):
        if self._chunks is not None:
            for cols, n in self._chunks(size):
                yield "cols", cols, n
            return
        n = self.total
        for s in range(0, n, size):
            e = min(n, s + size)
            yield "cols", {k: _norm_column(v[s:e]) for k, v in self._cols.items()}, e - s


def _norm_column(c):
    """numpy datetimes/strings/objects -> Python values; numeric buffers stay buffers."""
    dt = getattr(c, "dtype", None)
    if dt is None:
        return c if isinstance(c, list) else list(c)
    k = dt.kind
    if k in "iufb" and c.ndim == 1:
        return c if c.flags.c_contiguous else c.copy()
    if k == "M":
        import datetime as _dt
        utc = _dt.timezone.utc
        vals = c.astype("datetime64[us]").tolist()
        return [None if v is None else v.replace(tzinfo=utc) for v in vals]
    return c.tolist()


# ---------------------------------------------------------------------------------- files
def _open_text(path):
    p = os.fspath(path)
    if p.endswith(".gz"):
        return gzip.open(p, "rt", encoding="utf-8", newline="")
    return open(p, "r", encoding="utf-8", newline="")


def _file_progress(src, path, fh):
    """Give ``src`` the file's size and a reader of the byte position in the file itself
    (the compressed bytes of a .gz): the progress bar shows percent and ETA from them."""
    inner = getattr(fh, "buffer", None)
    raw = getattr(inner, "fileobj", None) or getattr(inner, "raw", None)   # GzipFile / BufferedReader
    try:
        if raw is not None:
            src.size, src.position = os.path.getsize(os.fspath(path)), raw.tell
    except OSError:
        pass
    return src


def detect_format(path, format=None) -> str:
    if format is not None:
        f = format.lower()
        if f not in _FORMATS:
            raise ValidationError(f"unknown format {format!r}; use one of {', '.join(_FORMATS)}")
        return f
    p = os.fspath(path).lower()
    if p.endswith(".gz"):
        p = p[:-3]
    for ext, f in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".jsonl", "jsonl"),
                   (".ndjson", "jsonl"), (".json", "jsonl")):
        if p.endswith(ext):
            return f
    raise ValidationError(f"cannot tell the format of {os.fspath(path)!r} from its name; pass format="
                          f"'csv', 'tsv' or 'jsonl'")


def open_file(path, *, format=None, delimiter=None, header=True, columns=None) -> Source:
    fmt = detect_format(path, format)
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise ValidationError(f"cannot open {os.fspath(path)!r}: {exc}") from exc
    if fmt == "jsonl":
        def items():
            for line in fh:
                if line.strip():
                    v = orjson.loads(line)
                    yield tuple(v) if isinstance(v, list) else v
        it = items()
        first = _peek(it)
        return _file_progress(IterSource(it, first, parse="json", columns=columns, closer=fh.close), path, fh)
    reader = csv.reader(fh, delimiter=delimiter or ("\t" if fmt == "tsv" else ","), strict=True)
    names = columns
    if header:
        try:
            hdr = next(reader)
        except StopIteration:
            hdr = []
        except csv.Error as exc:
            fh.close()
            raise ValidationError(f"{os.fspath(path)}: bad header: {exc}") from exc
        names = list(columns) if columns is not None else [h.strip() for h in hdr]
    it = map(tuple, reader)
    first = _peek(it)
    return _file_progress(IterSource(it, first, parse="text", columns=names, closer=fh.close), path, fh)


def _peek(it):
    try:
        return next(it)
    except StopIteration:
        return None
    except Exception as exc:
        raise _source_error(0, exc) from exc


# ---------------------------------------------------------------------------------- dispatch
def open_source(source, *, format=None, delimiter=None, header=True, columns=None) -> Source:
    """Whatever the caller passed -> a Source."""
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, os.PathLike)):
        return open_file(source, format=format, delimiter=delimiter, header=header, columns=columns)
    if isinstance(source, (bytes, bytearray)):
        raise ValidationError("pass a path or an iterable of rows, not bytes")
    if isinstance(source, dict):
        return ColumnSource(dict(source))
    mod = type(source).__module__ or ""
    if mod.startswith("numpy") and getattr(getattr(source, "dtype", None), "names", None):
        return ColumnSource({n: source[n] for n in source.dtype.names})
    if mod.startswith("pandas") and hasattr(source, "columns") and hasattr(source, "iloc"):
        return _pandas(source)
    if mod.startswith("pyarrow") and hasattr(source, "to_batches"):
        return _arrow(source)
    if hasattr(source, "__aiter__"):
        raise TypeError("async iterables are opened with open_async_source")
    if hasattr(source, "__iter__"):
        it = iter(source)
        total = len(source) if hasattr(source, "__len__") else None
        return IterSource(it, _peek(it), columns=columns, total=total)
    raise ValidationError(f"cannot load from {type(source).__name__}; pass an iterable of dicts or tuples, a "
                          f"file path, a dict of columns, a numpy structured array or a DataFrame")


async def open_async_source(source) -> Source:
    ait = source.__aiter__()
    try:
        first = await ait.__anext__()
    except StopAsyncIteration:
        return IterSource(iter(()), None)
    except Exception as exc:
        raise _source_error(0, exc) from exc
    return AsyncIterSource(ait, first)


def _pandas(df) -> Source:
    cols = {}
    for name in df.columns:
        s = df[name]
        k = s.dtype.kind
        if k in "iufb":
            cols[str(name)] = s.to_numpy()
        elif k == "M":
            vals = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
            cols[str(name)] = [None if v is None or v != v else v.to_pydatetime() for v in vals.astype(object)]
        else:
            cols[str(name)] = [None if _is_na(v) else v for v in s.astype(object).tolist()]
    return ColumnSource(cols)


def _is_na(v):
    return v is None or (type(v) is float and v != v) or type(v).__name__ in ("NAType", "NaTType")


def _arrow(tbl) -> Source:
    names = list(tbl.schema.names)
    src = ColumnSource.__new__(ColumnSource)
    src._cols = None
    src.columns = names
    src.total = tbl.num_rows

    def chunks(size):
        for b in tbl.to_batches(max_chunksize=size):
            yield {n: b.column(i).to_pylist() for i, n in enumerate(names)}, b.num_rows

    src._chunks = chunks
    return src


# ---------------------------------------------------------------------------------- express
__all__ = ["Source", "open_source", "open_async_source", "open_file", "detect_format"]
