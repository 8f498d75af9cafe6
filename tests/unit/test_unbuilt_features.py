"""Features the well-known project documents that are not built yet (the Data Fabric): their
import paths exist, and every name or entry point used raises UnsupportedFeatureError saying
what is missing -- never ModuleNotFoundError / AttributeError.  (MongoDB was here until it was
built: tests/integration/test_documents.py.)"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys

import pytest

from dataflow import DataFlow
from dataflow.errors import UnsupportedFeatureError


def test_fabric_module_imports_and_its_names_raise():
    mod = importlib.import_module("dataflow.fabric")
    with pytest.raises(UnsupportedFeatureError, match="RestSourceConfig.*Data Fabric"):
        exec("from dataflow.fabric import RestSourceConfig, BearerAuth, StalenessPolicy", {})
    with pytest.raises(UnsupportedFeatureError, match="Data Fabric"):
        mod.FileSourceConfig
    assert not hasattr(mod, "__wrapped__")


def test_db_source_product_start_raise():
    db = DataFlow(":memory:")
    try:
        with pytest.raises(UnsupportedFeatureError, match=r"db\.source\('crm'.*Data Fabric"):
            db.source("crm", object(), poll_interval=60)
        with pytest.raises(UnsupportedFeatureError, match=r"db\.product\('dashboard'"):
            @db.product("dashboard", depends_on=["User", "crm"])
            async def dashboard(ctx):
                return {}
        with pytest.raises(UnsupportedFeatureError, match=r"db\.start\(\)"):
            asyncio.run(db.start(host="127.0.0.1", port=8000))
    finally:
        db.close()


def test_import_dataflow_does_not_import_the_placeholders():
    code = ("import sys, dataflow; from dataflow import DataFlow; DataFlow(':memory:'); "
            "print([m for m in ('dataflow.fabric', 'dataflow.nodes.mongodb_nodes', 'dataflow.documents') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
