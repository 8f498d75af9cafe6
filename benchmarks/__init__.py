"""Benchmarks, not tests: ``python -m benchmarks`` prints a table of medians and ratios.

Each ``bench_*.py`` exposes ``run(quick: bool) -> list[dict]`` with rows ``{"group", "case",
"median_s", "baseline", "note"}``; the baseline is the case of the same group that a ratio
divides by.  Peers run in the same invocation so ratios compare like with like on one machine.
"""
