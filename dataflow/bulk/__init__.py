"""Bulk loading and export: PostgreSQL COPY BINARY, MySQL LOAD DATA / packet-sized INSERTs,
SQLite executemany, file and array sources, a progress bar, and the ``load``/``export`` CLI."""

from .load import export, load, load_table

__all__ = ["load", "export", "load_table"]
