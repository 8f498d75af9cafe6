"""Shared test configuration: which native implementation is active, and server URLs."""

import _native


def pytest_report_header(config):
    return [f"dataflow native core: {_native.IMPLEMENTATION} ({_native.REASON})"]
