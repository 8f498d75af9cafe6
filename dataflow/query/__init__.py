"""QueryBuilder: the fluent interface over the filter compiler."""
