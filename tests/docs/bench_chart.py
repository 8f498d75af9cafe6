"""Draw docs/img/benchmarks.svg from the table in docs/performance.md (the chart and the table
can then never disagree): one bar per ratio, DataFlow's time over the row's baseline, log scale.

    python tests/docs/bench_chart.py        # rewrites the SVG (needs matplotlib, the [bench] extra)

``test_chart_matches_table`` checks the committed SVG names every ratio of the table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "performance.md"
SVG = ROOT / "docs" / "img" / "benchmarks.svg"


def _variants(case: str, n: int) -> list[str]:
    """``"read (PostgreSQL / SQLite)"``, 2 -> ``["read (PostgreSQL)", "read (SQLite)"]``."""
    parts = case.split(" / ")
    if len(parts) != n:
        return [f"{case} [{i + 1}]" for i in range(n)]
    prefix, first = re.match(r"(.*[(:,]\s*|)(.*)", parts[0]).groups()
    last, suffix = re.match(r"([^),]*)(.*)", parts[-1]).groups()
    return [f"{prefix}{v}{suffix}" for v in (first, *parts[1:-1], last)]


def ratios() -> list[tuple[str, float]]:
    """(label, ratio) for the time ratios of the table: the ``N.NN×`` that open a ``;``-separated
    part of the last column (a ratio after a name is that peer's time over ours, and
    requests/s rows are throughput: neither is a time of ours over a baseline)."""
    out = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("|") or cells[0] in ("case", "---"):
            continue
        if "requests/s" in cells[2]:
            continue
        case = re.sub(r"[`*]", "", cells[0])
        head = cells[2].split(";")[0]
        found = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)×", re.match(r"[\d.×/ ]*", head).group(0))]
        if not found:
            continue
        labels = [case] if len(found) == 1 else _variants(case, len(found))
        out.extend(zip(labels, found))
    return out


def main() -> int:
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "dataflow-docs"     # stable ids: a rerun gives the same file
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    rows = ratios()
    labels = [(c if len(c) <= 80 else c[:77] + "...") for c, _ in rows]
    values = [x for _, x in rows]
    fig, ax = plt.subplots(figsize=(11, 0.34 * len(rows) + 1.4))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, values, color="#3f51b5")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    for yi, x in zip(y, values):
        ax.text(x, yi, f" {x:.2f}×", va="center", fontsize=8)
    ax.set_xlim(min(values + [1.0]) / 1.5, max(values + [1.0]) * 3)
    ax.set_xlabel("DataFlow time / baseline time, same run (log scale; < 1 is faster than the baseline)")
    SVG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(SVG, bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(f"wrote {SVG.relative_to(ROOT)} ({len(rows)} ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
