"""The committed benchmark chart shows the ratios of the table on docs/performance.md."""

from .bench_chart import SVG, ratios


def test_chart_matches_table():
    rows = ratios()
    assert len(rows) >= 10, "the performance table lost its ratios"
    svg = SVG.read_text(encoding="utf-8")
    missing = [f"{case}: {x:.2f}×" for case, x in rows if f"{x:.2f}×" not in svg]
    assert not missing, (f"docs/img/benchmarks.svg is older than the table ({', '.join(missing)}); "
                         f"run python tests/docs/bench_chart.py")
