"""The whole DataFlow exception hierarchy, in one place and importing nothing.

One root (``DataFlowError``) plus builtin mixins so ``except ValueError`` keeps working for
callers that do not know us.  Driver errors are translated into these in ``dataflow.drivers``
only, with the original kept as ``.orig``.  ``retryable`` is the only thing runtimes retry on.
"""

from __future__ import annotations


class DataFlowError(Exception):
    """Root of every error DataFlow raises on purpose."""

    retryable = False


class ConfigurationError(DataFlowError, ValueError):
    """A DataFlow(...) argument, URL, environment variable or missing extra is wrong."""


class ModelDefinitionError(DataFlowError, TypeError):
    """A @db.model class cannot be turned into a table (bad annotation, key, option)."""


class ValidationError(DataFlowError, ValueError):
    """A value or parameter given to a node / express call is not acceptable."""


class FilterError(ValidationError):
    """A filter dict is malformed, names an unknown field or uses an unknown operator."""


class TenantRequiredError(ValidationError):
    """A tenant-scoped model was used with no tenant bound."""


class UnsupportedFeatureError(DataFlowError, NotImplementedError):
    """The requested feature does not exist on this dialect / configuration."""


class NotFoundError(DataFlowError, LookupError):
    """A row looked up by id does not exist."""


class WorkflowError(DataFlowError):
    """A workflow is malformed: unknown node type, duplicate id, cycle, missing input."""


class NodeExecutionError(WorkflowError):
    """A node failed while the workflow ran; ``node_id`` names it and the cause is chained."""

    def __init__(self, message: str, node_id: str | None = None, cause: BaseException | None = None):
        super().__init__(message)
        self.node_id = node_id
        self.cause = cause

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.cause, "retryable", False))


class DatabaseError(DataFlowError):
    """The database refused or failed a statement; ``orig`` is the driver's exception."""

    #: the server's SQLSTATE where the driver reports one (PostgreSQL), else None
    sqlstate: str | None = None
    #: COPY failures: the 0-based row of that COPY the server names (None: it names none)
    copy_row: int | None = None

    def __init__(self, message: str, orig: BaseException | None = None):
        super().__init__(message)
        self.orig = orig


class DatabaseConnectionError(DatabaseError, ConnectionError):
    """No connection could be had (server down, pool timeout, connection lost)."""

    retryable = True


class OutcomeUnknownError(DatabaseConnectionError):
    """The connection was lost after COMMIT was sent: the write may or may not have landed."""

    retryable = False


class IntegrityError(DatabaseError):
    """A constraint (NOT NULL, foreign key, check) was violated."""


class UniqueViolationError(IntegrityError):
    """A unique constraint or primary key was violated."""


class TransactionConflictError(DatabaseError):
    """Deadlock or serialization failure: retrying the whole transaction may succeed."""

    retryable = True


class QueryError(DatabaseError):
    """The database rejected the SQL or a value at execution time."""


class BulkLoadError(DataFlowError):
    """A bulk write failed; ``rows_written`` rows are committed, ``failed_index`` is the bad row
    (0-based: the first record of the input is row 0).

    The message says so once, wherever it was written: the first ``row <failed_index>`` in it
    reads ``row 5 (0-based)``, or, when the message names no row, the index is appended."""

    def __init__(self, message: str, rows_written: int = 0, failed_index: int | None = None,
                 cause: BaseException | None = None):
        super().__init__(_zero_based(message, failed_index))
        self.rows_written = rows_written
        self.failed_index = failed_index
        self.cause = cause


def _zero_based(message: str, index) -> str:
    if type(index) is not int or not isinstance(message, str):
        return message
    import re

    if f"row {index} (0-based)" in message:
        return message
    marked, n = re.subn(rf"\brow {index}(?![\d.])", f"row {index} (0-based)", message, count=1)
    return marked if n else f"{message} (row {index}, 0-based)"


class FabricError(DataFlowError):
    """The data fabric (sources, products, HTTP server) failed or is misconfigured."""


class SourceError(FabricError):
    """An external source could not be read (after retries), its circuit is open, or its data is
    too old for its staleness policy -- and no earlier data may be served instead."""


class SourceRefusedError(SourceError):
    """An outbound source connection was refused before any packet left: the address (or the
    name's resolved address, or its spelling) is not a public one -- loopback, private,
    link-local, CGNAT, metadata, ...  ``address`` and ``address_class`` say which and why."""

    def __init__(self, message: str, *, address: str | None = None, address_class: str | None = None):
        super().__init__(message)
        self.address = address
        self.address_class = address_class


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, BaseException)]
