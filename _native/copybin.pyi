"""Rows or columns -> PostgreSQL COPY BINARY bytes, and back (for export).

The contract both implementations honour (``_native/copybin.pyx`` and ``_native/_pure/copybin.py``):
same names, signatures, output bytes, exception types and messages.  It knows nothing about
DataFlow: plain values in, bytes out, ``ValueError``/``TypeError`` on bad input.  It exists because
COPY BINARY is the fastest way into PostgreSQL, and encoding is the client-side bottleneck.

Encoding errors inside a row are re-raised as plain ``ValueError``/``TypeError`` whose message starts
``"row {i}, column {j} ({name or type}): "`` (row-level problems: ``"row {i}: "``) and which carry
``.row_index`` and ``.column_index`` attributes, so a loader can report the failing input row
without a DataFlow exception type leaking into this layer.  Exceptions raised by the *source*
iterable propagate unchanged.

Example::

    from dataflow._native import load
    copybin = load("copybin")
    data = copybin.encode_rows([(1, "a"), (2, None)], ["int8", "text"])
    await conn.copy_to_table("t", source=io.BytesIO(data), columns=["id", "name"], format="binary")
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

#: Supported PostgreSQL type names, in type-code order.
TYPES: tuple[str, ...]
#: The 19-byte stream header: ``PGCOPY\n\377\r\n\0``, flags int32 0, header-extension length 0.
HEADER: bytes
#: The stream trailer: field count -1 (``b"\xff\xff"``).
TRAILER: bytes

Row = Sequence[Any] | Mapping[Any, Any]

def encode_rows(rows: Iterable[Row], types: Sequence[str], names: Sequence[Any] | None = None, *,
                header: bool = True, trailer: bool = True) -> bytes:
    """Encode ``rows`` (tuples/lists positionally, or dicts keyed by ``names``) into one buffer.

    ``None`` (or a key missing from a dict row) is NULL.  ``header``/``trailer`` may be turned off
    to concatenate several encodings into one stream.  Value rules (identical in both
    implementations, chosen to fail early rather than let the server guess):

    - int2/int4/int8: ``int`` only (``bool`` and ``float`` are TypeError), range-checked.
    - float4/float8: ``float`` or ``int`` (not ``bool``); NaN/inf kept, as PostgreSQL stores them.
    - bool: ``bool`` only.  text: ``str``; NUL and lone surrogates are ValueError.
    - bytea: ``bytes``/``bytearray``/C-contiguous ``memoryview``.
    - timestamptz: aware ``datetime`` (naive is ValueError: the server would silently apply its
      own time zone); timestamp: naive ``datetime``; date: ``date`` but not ``datetime``.
    - numeric: ``Decimal`` or ``int`` in PostgreSQL's base-10000 format with the Decimal's scale;
      NaN -> numeric NaN; Infinity is ValueError.
    - uuid: ``uuid.UUID`` or ``str``.  json/jsonb: ``str`` (already JSON), ``bytes``, or any
      object serialized with ``orjson.dumps``.
    - vector (pgvector): list/tuple of numbers or a 1-D float32/float64 buffer; empty, NaN and
      inf are ValueError.

    Unknown type names raise ValueError listing ``TYPES``.
    """

def encode_columns(columns: Sequence[Sequence[Any]], types: Sequence[str], *,
                   header: bool = True, trailer: bool = True) -> bytes:
    """Encode column-major data: ``columns[j][i]`` is row ``i`` of column ``j``.

    Columns may be lists/tuples or any buffer (numpy arrays, ``array.array``): 1-D int, float and
    bool buffers feeding int/float/bool columns are read in place through the buffer protocol (no
    numpy needed at build time, no Python object per value).  Other buffers are converted with
    ``memoryview.tolist()``, other iterables with ``list()``.  All columns must have the same
    length (ValueError otherwise).  Same value rules and error messages as ``encode_rows``.
    """

def iter_chunks(rows: Iterable[Row], types: Sequence[str], names: Sequence[Any] | None = None,
                chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Stream ``rows`` as COPY BINARY in chunks of roughly ``chunk_bytes`` (constant memory).

    The first chunk starts with ``HEADER``, the last ends with ``TRAILER``; the chunks concatenated
    equal ``encode_rows(rows, ...)``.  Exists so a loader can encode the next chunk while the
    previous one is being sent.  ``types``, ``names`` and ``chunk_bytes`` are validated when called;
    rows are encoded lazily, and a row's error carries the row's index in the whole stream.
    """

def decode(data: bytes | bytearray | memoryview, types: Sequence[str]) -> list[tuple[Any, ...]]:
    """Parse a whole COPY BINARY stream (header, tuples, trailer) into tuples of Python values.

    Used for export (``COPY ... TO STDOUT (FORMAT binary)``).  ints, floats, bool, str, bytes,
    aware UTC datetime (timestamptz), naive datetime, date, Decimal, uuid.UUID, parsed JSON
    (orjson.loads) for json/jsonb, list of float for vector; NULL is None.  A wrong signature,
    truncated data, a field count other than ``len(types)`` or a malformed value is ValueError
    (value errors are prefixed ``"tuple {i}, column {j} ({type}): "``).  PostgreSQL's infinite
    timestamps/dates have no Python equivalent and are ValueError.
    """

def encode_plan(items: list[Any], types: Sequence[str], sources: Sequence[Any], defaults: Sequence[Any],
                width: int, start: int = 0, *, header: bool = False,
                shapes: Sequence[tuple[type, ...] | None] | None = None) -> tuple[bytes, int]:
    """Encode source items straight from a per-column plan, stopping at the first item off the plan.

    Column ``j`` takes its value from the item at ``sources[j]`` (a position when ``width >= 0``:
    items are tuples of exactly ``width`` values; a key when ``width < 0``: items are dicts) or,
    when ``sources[j]`` is None or a dict lacks the key, from ``defaults[j]``: ``("value", v)``
    (a constant), ``("call", f)`` (``f()`` per row) or None (no default).  json/jsonb values are
    Python objects, checked like every other write path (no NaN/inf, NUL, lone surrogates or
    non-str keys; JSON types only; depth <= 64) and serialized with ``orjson.dumps`` (a str is a
    JSON string here, unlike ``encode_rows``).  ``shapes[j]``, when given and not None, is the tuple
    of exact types a non-None value taken from an item must have (defaults are not checked).

    Encodes ``items[start:]`` in order and returns ``(data, stop)``: the rows before ``stop`` (with
    ``HEADER`` first when ``header``, never a trailer) and the index of the first item not encoded
    -- ``len(items)`` when all were.  An item stops it when it is not an exact tuple of ``width``
    values / an exact dict, a dict lacks a key without default or has a key not in ``sources``, a
    factory raises, or a value is rejected or off its shape.  Nothing is raised for such an item: the caller
    handles it (and reports its error) the slow way, then resumes at ``stop + 1``.  Bad arguments
    (types, plan shapes, ``items`` not a list) raise ValueError/TypeError as usual.

    Exists so a loader turns a batch of user rows into COPY bytes without a Python tuple per row.
    """
