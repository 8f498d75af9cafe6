"""Shared test configuration: which native implementation is active, and server URLs."""

from dataflow import _native


def pytest_report_header(config):
    lines = [f"dataflow native core: {_native.IMPLEMENTATION} ({_native.REASON})"]
    # the files actually loaded, so a run can never test an uncompiled folder by mistake
    for name in _native.MODULES:
        lines.append(f"  {name}: {_native.load(name).__file__}")
    return lines
