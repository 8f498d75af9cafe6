"""Operations on a model's table shared by nodes, express and the QueryBuilder."""
