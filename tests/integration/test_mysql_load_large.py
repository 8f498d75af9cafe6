"""MariaDB ``db.load`` past 16 MiB of LOAD DATA stream (issue 14, item 4).

aiomysql sent the LOCAL INFILE stream in 2**24-1-byte packets, which the protocol reads as
"continued", so the server joined them past max_allowed_packet and dropped the connection for
any file of 16 MiB or more (~107,000 rows of this model).  One million rows must load."""

from __future__ import annotations

import pytest

from dataflow import DataFlow

from .conftest import _backend_url

N = 1_000_000


async def test_load_data_one_million_rows(tmp_path, tables):
    db = DataFlow(_backend_url("mysql", tmp_path))
    tname = tables("loadbig")

    @db.model
    class LoadBig:
        name: str
        email: str
        age: int = 0
        score: float = 0.0
        note: str = ""
        __tablename__ = tname

    rows = ({"name": f"user{i}", "email": f"user{i}@example.com", "age": i % 90, "score": i * 0.5,
             "note": "x" * 60} for i in range(N))
    try:
        report = await db.load("LoadBig", rows, progress=False)
        assert report["path"] == "load_data" and report["rows"] == N
        (count, _last), = await db.execute_raw(f"SELECT COUNT(*), MAX(email) FROM {tname} WHERE age = 89")
        assert count == len(range(89, N, 90))
        assert (await db.execute_raw(f"SELECT COUNT(*) FROM {tname}"))[0][0] == N
    finally:
        await db.execute_raw(f"DROP TABLE IF EXISTS {tname}")
        await db.close_async()
