"""The benchmark chart colours bars by target verdict and labels peer rows from the peer's side."""

import pytest

from benchmarks import report


def _doc(rows):
    report.add_ratios(rows)
    return {"results": rows, "date": "2026-01-01", "implementation": "native",
            "machine": {"cpu": "test", "cores": 1, "python": "3.x", "platform": "test"}}


def _rows():
    return [
        {"group": "g", "case": "raw", "median_s": 1.0, "baseline": None},
        {"group": "g", "case": "ours, target met", "median_s": 1.1, "baseline": "raw", "target_ratio": 1.2},
        {"group": "g", "case": "ours, target missed", "median_s": 1.5, "baseline": "raw", "target_ratio": 1.2},
        {"group": "g", "case": "ours, no target, slower", "median_s": 3.0, "baseline": "raw"},
        {"group": "p", "case": "ours", "median_s": 0.01, "baseline": None},
        {"group": "p", "case": "peer much slower", "median_s": 1.35, "baseline": "ours", "peer": True},
        {"group": "p", "case": "peer faster", "median_s": 0.005, "baseline": "ours", "peer": True},
        {"group": "t", "case": "import", "median_s": 0.5, "baseline": None, "target_s": 0.1},
    ]


def test_colour_by_target_not_by_ratio_above_one():
    by_case = {r["case"]: r for r in _doc(_rows())["results"]}
    style = {c: report.bar_style(r) for c, r in by_case.items() if r.get("ratio")}
    assert style["ours, target met"] == (report.COLORS["met"], "1.10×")
    assert style["ours, target missed"] == (report.COLORS["missed"], "1.50×")
    assert style["ours, no target, slower"] == (report.COLORS["none"], "3.00×")
    # 135x: the peer is slower; no target, so not red
    assert style["peer much slower"] == (report.COLORS["none"], "peer 135× slower")
    assert style["peer faster"] == (report.COLORS["none"], "peer 2.00× faster")
    assert report.target_status(by_case["import"]) == "missed"


def test_png_uses_the_chosen_colours(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    path = tmp_path / "chart.png"
    assert report.write_png(_doc(_rows()), path) == ""
    pixels = {tuple(round(c * 255) for c in px[:3]) for row in matplotlib.image.imread(path) for px in row}
    for colour in report.COLORS.values():
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in pixels, colour
