"""Optional features stay out of ``import dataflow``: the fabric, the document store and their
libraries load only when used (both were placeholders raising UnsupportedFeatureError until
they were built: tests/integration/test_documents.py, tests/*/test_fabric*.py)."""

from __future__ import annotations

import subprocess
import sys


def test_import_dataflow_does_not_import_optional_features():
    code = ("import sys, dataflow; from dataflow import DataFlow; DataFlow(':memory:'); "
            "print([m for m in ('dataflow.fabric', 'dataflow.documents', 'dataflow.nodes.mongodb_nodes', "
            "'pymongo', 'mongomock', 'starlette', 'uvicorn', 'httpx', 'redis') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
