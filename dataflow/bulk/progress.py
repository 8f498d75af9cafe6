"""The progress bar of loads and exports (``db.load``, ``db.export``, the CLI), drawn by tqdm on
stderr: total, percent, rate and ETA when the total is known (a file's size in bytes, or a row
count), a plain counter with the rate otherwise.

Shown when stderr is a terminal (``progress=True`` forces it, ``False`` hides it).  tqdm is
imported only when a bar is shown, never at ``import dataflow``; a hidden bar only counts rows.
"""

from __future__ import annotations

import sys


class Progress:
    """``update(rows)`` per batch, ``close(ok)`` at the end.  ``total``: rows expected;
    ``size`` + ``position()``: a file's size and how far into it the reader is (bytes), which
    drive the bar when given (a file's row count is not known before reading it)."""

    #: seconds between redraws (a redraw per batch at most, never per row)
    MININTERVAL = 0.2

    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None, stream=None, *,
                 size: int | None = None, position=None):
        self.stream = stream or sys.stderr
        self.enabled = self.shown(enabled, self.stream)
        self.label = label
        self.total = total
        self.rows = 0
        self.size, self.position = (size, position) if size and position is not None else (None, None)
        self._bar = self._open() if self.enabled else None

    @staticmethod
    def shown(enabled: bool | None, stream=None) -> bool:
        """Whether a bar is drawn: ``enabled``, else when ``stream`` (stderr) is a terminal."""
        if enabled is None:
            isatty = getattr(stream or sys.stderr, "isatty", None)
            return bool(isatty and isatty())
        return bool(enabled)

    @classmethod
    def for_source(cls, label: str, src, enabled: bool | None = None) -> "Progress":
        """The bar of a load from ``src`` (a ``sources.Source``): by bytes for files, else rows."""
        return cls(label, src.total, enabled, size=getattr(src, "size", None),
                   position=getattr(src, "position", None))

    def _open(self):
        from tqdm import tqdm  # only here: a bar is being shown

        common = {"desc": self.label, "file": self.stream, "mininterval": self.MININTERVAL, "dynamic_ncols": True,
                  "leave": True}
        if self.size:
            return tqdm(total=self.size, unit="B", unit_scale=True, unit_divisor=1024, **common)
        # k/M suffixes only where they help: "10/10", "3.00k/3.00k"; a counter counts "1234 rows"
        scale = bool(self.total and self.total >= 1000)
        return tqdm(total=self.total or None, unit=" rows", unit_scale=scale, **common)

    def update(self, n: int) -> None:
        self.rows += n
        bar = self._bar
        if bar is None:
            return
        if self.size:
            try:
                done = min(self.position(), self.size)
            except (OSError, ValueError):   # the reader already closed its file
                done = self.size
            bar.set_postfix_str(f"{self.rows:,} rows", refresh=False)
            if done > bar.n:
                bar.update(done - bar.n)
        else:
            bar.update(n)

    def close(self, ok: bool = True) -> None:
        bar = self._bar
        if bar is None:
            return
        self._bar = None
        if ok and self.size and bar.n < self.size:
            bar.update(self.size - bar.n)
        if not ok:
            bar.set_postfix_str(f"{self.rows:,} rows, failed", refresh=False)
        bar.close()
