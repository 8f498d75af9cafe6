"""The data fabric: external sources and derived data products, served over HTTP.

Configuration classes are importable without the ``[fabric]`` extra; the runtime, the sources'
clients and the Starlette app load when ``db.source``/``db.start``/``db.fabric_app`` need them.
``import dataflow`` imports none of this.  Contract: the project's spec/fabric.md.
"""

from .config import (ApiKeyAuth, BasicAuth, BearerAuth, CircuitBreakerConfig, CloudSourceConfig,
                     DatabaseSourceConfig, FileSourceConfig, OAuth2Auth, RestSourceConfig,
                     StalenessPolicy, StreamSourceConfig, WebhookConfig)
from .coordination import CoordinationConfig

__all__ = ["ApiKeyAuth", "BasicAuth", "BearerAuth", "CircuitBreakerConfig", "CloudSourceConfig", "CoordinationConfig",
           "DatabaseSourceConfig", "FileSourceConfig", "OAuth2Auth", "RestSourceConfig", "StalenessPolicy",
           "StreamSourceConfig", "WebhookConfig", "FabricRuntime"]


def __getattr__(name: str):
    if name == "FabricRuntime":
        from .runtime import FabricRuntime
        return FabricRuntime
    raise AttributeError(f"module 'dataflow.fabric' has no attribute {name!r}")
