"""Distances and exact top-k over float32 vectors -- the client-side twin of pgvector's operators.

Used where the database cannot rank vectors itself (SQLite, MySQL/MariaDB, PostgreSQL without
pgvector): candidate rows' float32 blobs are ranked here, with the same distances pgvector's
``ORDER BY embedding <op> $1`` uses, so a client-side search returns what the server would.

Both implementations (compiled ``_native.vector`` and ``_native._pure.vector``) return identical
bits: float32 components are widened to double (products are then exact), each sum runs over 8
lanes ``j % 8`` in index order and the lanes are added as ``((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))``.
No ``-ffast-math``; FMA is used only where the product is exact, so it cannot change a result.
"""

from array import array
from collections.abc import Buffer, Sequence
from typing import Literal, SupportsFloat, Union

Metric = Literal["cosine", "l2", "ip"]
VectorLike = Union[Sequence[SupportsFloat], Buffer]
"""A sequence of real numbers (not bools), or a 1-D buffer: float32, float64, or bytes holding
float32 little-endian (a stored blob)."""
MatrixLike = Union[Buffer, Sequence[Buffer]]
"""A C-contiguous 2-D float32 array ``(n, dim)``; a 1-D float32 buffer or bytes of ``n*dim*4``
bytes; or a list/tuple of float32 blobs (``bytes``, ``dim*4`` each, as read from the database)."""

METRICS: tuple[str, str, str]
"""``("cosine", "l2", "ip")`` -- pgvector's ``<=>``, ``<->`` and ``<#>``."""

KERNEL: str
"""Which kernel runs: ``"avx2+fma"`` or ``"baseline"`` (compiled), ``"python"`` (twin).
All produce identical results; this only says how fast."""

def validate(vec: VectorLike, dim: int | None = None) -> None:
    """Check a vector before it is stored or used as a query; return None or raise.

    ValueError: empty, NaN/inf component, a component outside float32 range (pgvector stores
    float4 and rejects those too), or ``len(vec) != dim`` ("vector has dimension 3; expected 4").
    TypeError: a component that is not a real number (bools and strings are refused, so a
    ``[True, "1"]`` never silently becomes ``[1.0, 1.0]``).

    >>> validate([0.1, 0.2], dim=2)
    """

def pack(vec: VectorLike) -> bytes:
    """Validate and encode as float32 little-endian -- the compact BLOB stored by SQLite/MariaDB.

    Same checks as :func:`validate`.  Components are rounded to float32, as pgvector does.

    >>> pack([1.0, 2.0])
    b'\\x00\\x00\\x80?\\x00\\x00\\x00@'
    """

def unpack(blob: Buffer) -> list[float]:
    """Decode a float32 little-endian blob (length a multiple of 4, else ValueError).

    >>> unpack(pack([1.0, 2.0]))
    [1.0, 2.0]
    """

def distances(matrix: MatrixLike, query: VectorLike, metric: Metric = "cosine",
              dim: int | None = None) -> array:
    """Distance of every row to ``query``, as ``array('d')`` of length n.

    cosine = ``1 - dot/sqrt(|a|^2 |q|^2)`` (similarity clamped to [-1, 1]); l2 = Euclidean
    distance; ip = NEGATIVE inner product -- all "smaller is closer", like pgvector.  A zero
    row under cosine gives NaN (pgvector does the same); a zero query under cosine is a
    ValueError.  ``dim`` is required only to split a 1-D buffer when it differs from the
    query's length -- in practice a check; a 2-D array carries its own.

    The query is validated (see :func:`validate`); the matrix is not scanned for NaN (it was
    validated when stored) -- a NaN in it yields a NaN distance.  The compiled scan releases
    the GIL.

    >>> list(distances([pack([1, 0]), pack([0, 1])], [1, 0]))
    [0.0, 1.0]
    """

def topk(matrix: MatrixLike, query: VectorLike, k: int, metric: Metric = "cosine",
         dim: int | None = None) -> tuple[list[int], list[float]]:
    """The k nearest rows: ``(indices, distances)``, distances ascending.

    Exact (no approximation), so it equals ``ORDER BY embedding <op> $1 LIMIT k``.  Equal
    distances rank by row position (lower index first) so results are deterministic; NaN
    distances (zero rows under cosine) rank after every number.  ``k > n`` returns all n rows;
    ``k <= 0`` is a ValueError, a non-integer k a TypeError.  The compiled version keeps a
    k-element heap during one pass over the rows -- no full sort, no Python per row.

    >>> topk([pack([1, 0]), pack([0, 1]), pack([1, 0])], [1, 0], k=2)
    ([0, 2], [0.0, 0.0])
    """
