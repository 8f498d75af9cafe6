"""Source handles, one module per kind; ``make_source`` picks the class for a config."""

from __future__ import annotations

from ...errors import UnsupportedFeatureError


def make_source(name: str, config):
    kind = config.kind
    if kind == "rest":
        from .rest import RestSource
        return RestSource(name, config)
    if kind == "file":
        from .file import FileSource
        return FileSource(name, config)
    raise UnsupportedFeatureError(
        f"source {name!r}: {type(config).__name__} sources are not available in this version "
        f"(REST and file sources are)")
