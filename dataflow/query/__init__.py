"""QueryBuilder: a fluent way to build a filter, rendered by the statement layer."""
