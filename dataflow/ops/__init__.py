"""The SQL store (``table.py``: one model's operations, the ``dataflow.store.Store`` protocol
on SQL) and the single-row upsert it uses."""
