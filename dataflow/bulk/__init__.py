"""Bulk writes and ETL: record bulk writes (``write``, ``edit``, ``ids``), ``db.load`` of any
source (``load``, ``sources``, ``rows``) through the database's path (``postgresql``: COPY
BINARY; ``mysql``: LOAD DATA / packet-sized INSERTs; ``insert``: the SQLite writer and the
generic INSERT path), ``db.export``, and the options all of them check once (``options``)."""

from .load import export, load, load_table

__all__ = ["load", "export", "load_table"]
