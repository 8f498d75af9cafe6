"""Features the well-known project documents that are not built yet (MongoDB):
their import paths exist, and every name or entry point used raises UnsupportedFeatureError
saying what is missing -- never ModuleNotFoundError / AttributeError."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from dataflow.errors import UnsupportedFeatureError


def test_mongodb_nodes_module_imports_and_its_names_raise():
    mod = importlib.import_module("dataflow.nodes.mongodb_nodes")
    for name in ("DocumentInsertNode", "AggregateNode", "DocumentFindNode"):
        with pytest.raises(UnsupportedFeatureError, match=f"MongoDB.*{name}|{name}.*MongoDB"):
            getattr(mod, name)
    with pytest.raises(UnsupportedFeatureError, match="MongoDB"):
        exec("from dataflow.nodes.mongodb_nodes import DocumentInsertNode, AggregateNode", {})
    assert not hasattr(mod, "__wrapped__")      # dunder look-ups stay ordinary AttributeErrors


def test_mongodb_adapter_raises():
    from dataflow.adapters import MongoDBAdapter
    with pytest.raises(UnsupportedFeatureError, match="MongoDB"):
        MongoDBAdapter("mongodb://localhost:27017/ecommerce")


def test_import_dataflow_does_not_import_the_placeholders():
    code = ("import sys, dataflow; from dataflow import DataFlow; DataFlow(':memory:'); "
            "print([m for m in ('dataflow.fabric', 'dataflow.nodes.mongodb_nodes', 'starlette', 'uvicorn', 'httpx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
