"""The load/export progress bar (tqdm, imported only when a bar is shown) and the 0-based row
wording of BulkLoadError messages."""

from __future__ import annotations

import io
import subprocess
import sys

from dataflow.bulk.progress import Progress
from dataflow.errors import BulkLoadError

import pytest


@pytest.fixture(autouse=True)
def _draw_every_update(monkeypatch):
    monkeypatch.setattr(Progress, "MININTERVAL", 0)


def _draw(**kw) -> str:
    out = io.StringIO()
    bar = Progress("Person load", enabled=True, stream=out, **kw)
    bar.update(500)
    bar.close()
    return out.getvalue()


def test_known_row_total_shows_total_percent_rate_and_eta():
    text = _draw(total=1000)
    assert "Person load" in text and "50%" in text and "1.00k" in text   # percent and total
    assert "rows/s" in text and "<" in text                             # rate and elapsed<ETA
    assert "100%" not in text


def test_unknown_total_is_a_plain_counter():
    text = _draw(total=None)
    assert "500 rows" in text and "rows/s" in text and "%" not in text


def test_file_size_drives_the_bar(tmp_path):
    out = io.StringIO()
    pos = [0]
    bar = Progress("Person load", None, True, out, size=4096, position=lambda: pos[0])
    pos[0] = 1024
    bar.update(10)
    assert "25%" in out.getvalue()
    bar.close()
    assert "B/s" in out.getvalue() and "100%" in out.getvalue() and "10 rows" in out.getvalue()


def test_failed_close_says_so():
    out = io.StringIO()
    bar = Progress("Person load", 100, True, out)
    bar.update(7)
    bar.close(ok=False)
    assert "failed" in out.getvalue()


def test_tqdm_is_imported_only_when_a_bar_is_shown():
    code = ("import sys, io, dataflow; from dataflow.bulk.progress import Progress; "
            "b = Progress('x', 10, False, io.StringIO()); b.update(5); b.close(); "
            "print('tqdm' in sys.modules); Progress('x', 10, True, io.StringIO()).close(); "
            "print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_bulk_load_error_says_row_indexes_are_zero_based():
    assert str(BulkLoadError("bulk_create row 5: bad value", failed_index=5)) == \
        "bulk_create row 5 (0-based): bad value"
    # said once, even when a message is wrapped again
    inner = BulkLoadError("load row 3, column 'age': not an int", failed_index=3)
    assert str(BulkLoadError(f"load: {inner}", failed_index=3)).count("0-based") == 1
    # a number that only starts with the index is not it; no row in the text: appended
    assert str(BulkLoadError("row 55 failed", failed_index=5)) == "row 55 failed (row 5, 0-based)"
    assert str(BulkLoadError("failed", failed_index=None)) == "failed"
