"""The Data Fabric (external sources, data products, their HTTP endpoints): not built yet.

The module imports, so code written for the well-known project fails at the first name it uses
with an ``UnsupportedFeatureError`` saying what is missing (``RestSourceConfig``, ``BearerAuth``,
``db.source(...)``, ``@db.product(...)``, ``await db.start()``), never with an ImportError or an
AttributeError that reads like a bug.
"""

from __future__ import annotations

from ..errors import UnsupportedFeatureError


def _unavailable(what: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(
        f"{what}: the Data Fabric (external data sources, data products and their endpoints: "
        f"dataflow.fabric, db.source, db.product, db.start) is not available in this version; "
        f"models, workflows and the express API work without it")


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise _unavailable(f"dataflow.fabric.{name}")
