"""Rendering of a benchmark run: the Markdown table, the JSON document and the PNG of ratios.

Kept apart from the runner so the output formats can change without touching discovery or
timing, and so a README can regenerate its table from a saved JSON (``python -m benchmarks
--from-json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def fmt_time(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} µs"
    return f"{s * 1e9:.0f} ns"


def fmt_ratio(x: float) -> str:
    return f"{x:.0f}×" if x >= 100 else f"{x:.2f}×" if x >= 0.1 else f"{x:.2g}×"


def add_ratios(results: list[dict]) -> None:
    """Set ``ratio`` (median / its baseline's median) and the target verdict on every row."""
    by_case = {(r["group"], r["case"]): r for r in results}
    for r in results:
        r["ratio"] = None
        base = by_case.get((r["group"], r.get("baseline"))) if r.get("baseline") else None
        if base and r.get("median_s") is not None and base.get("median_s"):
            r["ratio"] = r["median_s"] / base["median_s"]
        verdicts = []
        if r.get("target_ratio") is not None and r["ratio"] is not None:
            ok = r["ratio"] <= r["target_ratio"]
            verdicts.append(f"target ≤ {r['target_ratio']:g}×: {'met' if ok else 'MISSED'}")
        if r.get("target_s") is not None and r.get("median_s") is not None:
            ok = r["median_s"] <= r["target_s"]
            verdicts.append(f"target ≤ {fmt_time(r['target_s'])}: {'met' if ok else 'MISSED'}")
        r["verdict"] = "; ".join(verdicts)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']} ({m['platform']}); "
        f"date {doc['date']}; native core: {doc['implementation']} ({doc['reason']}); "
        f"{'--quick' if doc['quick'] else 'full run'}",
        "",
        "| group | case | median | ratio vs baseline | note |",
        "|---|---|---:|---:|---|",
    ]
    for r in doc["results"]:
        if r.get("median_s") is None:
            ratio = r.get("status", "failed")
        elif r.get("ratio") is not None:
            ratio = fmt_ratio(r["ratio"])
        else:
            ratio = "baseline" if any(o.get("baseline") == r["case"] and o["group"] == r["group"]
                                      for o in doc["results"]) else ""
        note = "; ".join(x for x in (r.get("note", ""), r.get("verdict", "")) if x)
        lines.append(f"| {_cell(r['group'])} | {_cell(r['case'])} | {fmt_time(r.get('median_s'))} | "
                     f"{ratio} | {_cell(note)} |")
    mods = doc.get("modules", {})
    bad = [f"{name}: {info['status']} ({info.get('reason', '')})" for name, info in mods.items()
           if info.get("status") != "ok"]
    if bad:
        lines += ["", "Modules not run or failed: " + "; ".join(bad)]
    return "\n".join(lines)


def write_json(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


#: Bar colours by verdict: a ratio is good or bad only against a target; most rows have none.
COLORS = {"met": "#2a9d8f", "missed": "#e76f51", "none": "#8d99ae"}


def target_status(r: dict) -> str:
    """'met' when every target of the row is met, 'missed' when one is not, 'none' without targets."""
    checks = []
    if r.get("target_ratio") is not None and r.get("ratio") is not None:
        checks.append(r["ratio"] <= r["target_ratio"])
    if r.get("target_s") is not None and r.get("median_s") is not None:
        checks.append(r["median_s"] <= r["target_s"])
    if not checks:
        return "none"
    return "met" if all(checks) else "missed"


def bar_label(r: dict) -> str:
    """The text next to a bar: the ratio, or for a peer row how many times slower/faster the peer is.

    A peer row's baseline is this project, so its ratio is peer time / our time."""
    x = r["ratio"]
    if not r.get("peer"):
        return fmt_ratio(x)
    if x >= 1:
        return f"peer {fmt_ratio(x)} slower"
    return f"peer {fmt_ratio(1 / x)} faster"


def bar_style(r: dict) -> tuple[str, str]:
    """(colour, label) of the bar for row ``r``."""
    return COLORS[target_status(r)], bar_label(r)


def write_png(doc: dict, path: Path) -> str:
    """Horizontal bars of every ratio on a log axis; returns a note ('' when written)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"PNG skipped: matplotlib is not installed ({exc}); pip install matplotlib"
    rows = [r for r in doc["results"] if r.get("ratio")]
    if not rows:
        return "PNG skipped: no ratios to plot"
    labels = [f"{_short(r['group'], 42)} — {_short(r['case'], 46)}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    styles = [bar_style(r) for r in rows]
    colors = [c for c, _ in styles]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(rows) + 1.6))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colors)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    for yi, x, (_, text) in zip(y, ratios, styles):
        ax.text(x, yi, " " + text, va="center", fontsize=7)
    lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
    ax.set_xlim(lo / 1.5, hi * 4)
    m = doc["machine"]
    ax.set_title(f"DataFlow benchmarks — time / baseline of its group (green: target met, red: target missed, grey: no target; peer rows: peer time / ours)\n{m['cpu']}, {m['cores']} cores, "
                 f"Python {m['python']}, {doc['date']}, native core: {doc['implementation']}", fontsize=9)
    ax.set_xlabel("ratio vs baseline (log scale)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return ""
