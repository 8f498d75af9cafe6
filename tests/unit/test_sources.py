"""dataflow.bulk.sources and rows without a database: formats, peeking, source errors, parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip

import pytest

from dataflow.bulk.rows import TEXT_PARSERS, _parse_bool, _parse_datetime
from dataflow.bulk.sources import detect_format, open_source
from dataflow.errors import BulkLoadError, ValidationError
from dataflow._native._pure import params as K


async def _collect(src, size=2):
    return [(k, list(p) if k == "rows" else p, n) async for k, p, n in src.batches(size)]


def test_detect_format():
    assert detect_format("a.csv") == "csv" and detect_format("a.tsv.gz") == "tsv"
    assert detect_format("a.ndjson") == "jsonl" and detect_format("x", "JSONL") == "jsonl"
    with pytest.raises(ValidationError):
        detect_format("a.xlsx")


def test_csv_header_and_gzip(tmp_path):
    p = tmp_path / "a.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write('name,qty\n"x,y",1\nz,2\nw,3\n')
    src = open_source(str(p))
    assert src.columns == ["name", "qty"] and src.parse == "text" and src.first == ("x,y", "1")
    out = asyncio.run(_collect(src))
    assert [b[1] for b in out] == [[("x,y", "1"), ("z", "2")], [("w", "3")]]
    src.close()


def test_jsonl_and_iterables(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n')
    src = open_source(str(p))
    assert src.parse == "json" and asyncio.run(_collect(src, 10))[0][1] == [{"a": 1}, {"a": 2}]
    assert asyncio.run(_collect(open_source(iter([]))) ) == []


def test_source_raising_names_index():
    def gen():
        yield 1
        yield 2
        yield 3
        raise OSError("gone")
    with pytest.raises(BulkLoadError) as ei:
        asyncio.run(_collect(open_source(gen()), 2))
    assert ei.value.failed_index == 3 and "gone" in str(ei.value)


def test_columns_must_agree():
    with pytest.raises(ValidationError):
        open_source({"a": [1, 2], "b": [1]})
    src = open_source({"a": [1, 2, 3]})
    assert [n for _, _, n in asyncio.run(_collect(src, 2))] == [2, 1]


def test_numpy_structured():
    np = pytest.importorskip("numpy")
    arr = np.array([(1, 2.0)], dtype=[("a", "i8"), ("b", "f8")])
    src = open_source(arr)
    assert src.kind == "cols" and src.columns == ["a", "b"]


def test_text_parsers():
    assert _parse_bool("Yes") is True and _parse_bool("0") is False
    with pytest.raises(ValueError):
        _parse_bool("maybe")
    assert _parse_datetime("2024-01-02T03:04:05Z") == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert _parse_datetime("2024-01-02 03:04:05").tzinfo is dt.timezone.utc
    assert TEXT_PARSERS[K.BYTES]("\\x00ff") == b"\x00\xff"
    assert TEXT_PARSERS[K.JSON]('{"a": [1]}') == {"a": [1]}
