"""Typed contract of ``_native.filters`` (compiled) and ``_native._pure.filters`` (its twin).

A MongoDB-style filter dict plus a ``FilterSpec`` becomes ``(sql, params)``: values only ever
travel as parameters and identifiers only ever come from the spec, so user input cannot reach
the SQL text.  Both implementations return identical SQL strings and parameter lists and raise
the same exception types with the same messages (tests/native/test_filters_parity.py), so
callers never need to know which one is active.

Example (PostgreSQL)::

    spec = FilterSpec({"age": ('"age"', 1), "status": ('"status"', 4)}, "$",
                      lambda v, k: params.coerce(v, k, params.POSTGRESQL),
                      {"in_array": "{c} = ANY({p})", "nin_array": "NOT ({c} = ANY({p}))"})
    compile_filter({"age": {"$gte": 18}, "status": {"$in": ["a", "b"]}}, spec)
    # -> ('"age" >= $1 AND "status" = ANY($2)', [18, ["a", "b"]])
"""

from typing import Any, Callable, Final, Mapping, Sequence

#: Document and field-level ``$not`` nesting share this budget; checked before recursing, so a
#: 10,000-deep filter fails with ValueError, never RecursionError.
MAX_DEPTH: Final[int]  # 64
#: Field predicates per filter; a huge ``$or`` of equalities should be one ``$in`` instead.
MAX_NODES: Final[int]  # 10_000
#: Longest ``$regex`` pattern accepted (bounds server work per row).
MAX_REGEX: Final[int]  # 2_000
#: Largest ``start``; placeholders beyond it are not valid on any server.
MAX_START: Final[int]  # 2_147_483_647
FIELD_OPS: Final[tuple[str, ...]]
LOGICAL_OPS: Final[tuple[str, ...]]
#: Operators that run server-side code (MongoDB); refused at every depth, on every backend.
REFUSED_OPS: Final[tuple[str, ...]]
STR_KIND: Final[int]   # 4: text columns (LIKE/regex operators need one)
JSON_KIND: Final[int]  # 10: ``$contains`` tests list membership instead of substring
#: Kinds whose coerced values are safe to ship as one JSON array (``templates["in_json"]``).
JSON_IN_KINDS: Final[tuple[int, ...]]

Coerce = Callable[[Any, int], Any]


class FilterSpec:
    """Everything the compiler needs to know about one table on one dialect.

    Built once per (model, dialect) and reused: all validation and template splitting happens
    here, so compiling never meets malformed configuration.  Treat it as immutable (the compiled
    class enforces that; the twin does not, but nothing may rely on mutating it).

    columns: field name -> (quoted SQL identifier, kind); a 2-list is accepted and stored as a
        tuple.  Only these names may appear in filters.
    paramstyle: "$" (numbered $1..), "?" (qmark) or "%s" (format).
    coerce: ``coerce(value, kind) -> bound value``; raises TypeError/ValueError, which the
        compiler re-raises as the same type prefixed with the filter path.
    templates: operator -> "{c} ... {p} ..." with ``{c}`` before ``{p}``; keys among like, ilike,
        regex, iregex, json_contains, in_array, nin_array, in_json.  A missing key makes that
        operator raise "not supported on this database".  ``in_array``/``nin_array`` bind a whole
        ``$in`` list as one array parameter; ``in_json`` binds lists longer than ``large_in`` as
        one JSON array string.  Both keep any list size under every driver's parameter limit.
    json_contains_mode: how ``$contains`` on a JSON column binds: 0 JSON array ``[v]``
        (PostgreSQL ``@>``), 1 JSON scalar (MySQL ``JSON_CONTAINS``), 2 the raw value (SQLite).
    large_in: list length above which ``in_json`` is used (when present and the kind allows).
    coerce_arg: when not None, ``coerce`` is called as ``coerce(value, kind, coerce_arg)``, so a
        three-argument coercer (``_native.params.coerce`` with the dialect code) needs no lambda
        around it -- one Python frame less per bound value.
    like_escape / escape_literal: the LIKE escape character (one character) and its SQL literal;
        the literal defaults to the character quoted (pass it where the server doubles
        backslashes in literals, e.g. MySQL ``"'\\\\\\\\'"``).

    Raises ValueError/TypeError naming the bad argument.
    """

    @property
    def columns(self) -> dict[str, tuple[str, int]]: ...
    @property
    def paramstyle(self) -> str: ...
    @property
    def coerce(self) -> Coerce: ...
    @property
    def templates(self) -> dict[str, tuple[str, str, str]]:
        """Split templates: key -> (prefix, between column and parameter, suffix)."""
    @property
    def json_contains_mode(self) -> int: ...
    @property
    def large_in(self) -> int: ...
    @property
    def like_escape(self) -> str: ...
    @property
    def escape_literal(self) -> str: ...
    @property
    def coerce_arg(self) -> Any:
        """None: ``coerce(value, kind)``; else ``coerce(value, kind, coerce_arg)``."""

    def __init__(self, columns: Mapping[str, tuple[str, int] | Sequence[Any]], paramstyle: str,
                 coerce: Coerce, templates: Mapping[str, str], json_contains_mode: int = 0,
                 large_in: int = 1000, like_escape: str = "\\",
                 escape_literal: str | None = None, coerce_arg: Any = None) -> None: ...


def compile_filter(filt: Mapping[str, Any] | None, spec: FilterSpec, start: int = 1,
                   path: str = "filter") -> tuple[str, list[Any]]:
    """Compile ``filt`` to ``(sql, params)``; ``("", [])`` for ``None`` or ``{}``.

    ``filt`` must be a plain ``dict`` (subclasses and other mappings are refused, so no
    user-defined ``__iter__`` runs mid-compile).  ``start`` (1..MAX_START) is the first "$n"
    number, so a WHERE can follow the SET parameters of an UPDATE; other paramstyles ignore it.
    ``path`` prefixes error messages, which name the exact spot: ``filter.$or[3].age.$gte: ...``.

    Semantics (MongoDB's, identical on every backend): ``None`` equality is IS NULL; ``$ne``,
    ``$nin`` and ``$not`` match NULL; ``None`` inside ``$in``/``$nin`` matches/excludes NULL
    without turning the predicate NULL; ``$in: []`` is false and ``$nin: []`` true;
    ``$contains/$startswith/$endswith`` escape ``%``, ``_`` and the escape character and add an
    explicit ESCAPE clause.  A dict where a value belongs is rejected, never stringified.

    Raises TypeError (wrong shapes/types) or ValueError (unknown fields or operators, refused
    operators, limits) with messages identical in both implementations; ``spec`` must be a
    FilterSpec of the same implementation.
    """
