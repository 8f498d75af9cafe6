"""The documentation examples' summary line: how many blocks ran, how many were skipped and why."""

from . import runner


def pytest_terminal_summary(terminalreporter):
    o, skips = runner.OUTCOMES, runner.SKIPS
    ran = o["ran python"] + o["ran shell"]
    if not ran and not skips and not o["failed"]:
        return
    reasons = "; ".join(f"{n} x {why}" for why, n in sorted(skips.items())) or "none"
    terminalreporter.write_line(
        f"doc examples: {ran} blocks ran ({o['ran python']} python, {o['ran shell']} shell), "
        f"{o['failed']} failed, {sum(skips.values())} skipped [{reasons}]; "
        f"{o['display']} display or output fences (text, json, ...) are not code")
