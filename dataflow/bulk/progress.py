"""A one-line progress bar on stderr for loads and exports: rows, rows/s, percent when known.

Shown when stderr is a terminal (``progress=True`` forces it, ``False`` hides it); redrawn at
most five times a second so it never costs the load anything measurable.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.label = label
        self.total = total
        self.rows = 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, n: int) -> None:
        self.rows += n
        if self.enabled:
            now = time.perf_counter()
            if now - self._last >= 0.2:
                self._last = now
                self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        dt = max(now - self.t0, 1e-9)
        rate = self.rows / dt
        pct = ""
        if self.total:
            frac = min(1.0, self.rows / self.total)
            filled = int(frac * 24)
            pct = f" [{'#' * filled}{'.' * (24 - filled)}] {frac * 100:5.1f}%"
        self.stream.write(f"\r{self.label}: {self.rows:,} rows{pct}  {rate:,.0f} rows/s  {dt:.1f}s{end}")
        self.stream.flush()

    def close(self, ok: bool = True) -> None:
        if self.enabled:
            self._draw(time.perf_counter(), "\n" if ok else "  (failed)\n")
