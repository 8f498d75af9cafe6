"""The fabric of one DataFlow: its sources and products, checked as they are registered (names,
unknown dependencies, cycles), and the running runtime if any.

It receives the DataFlow instance and never imports the engine: the engine delegates here.
"""

from __future__ import annotations

import weakref

from ..errors import ConfigurationError, FabricError, ValidationError
from .config import NAME_RE, SOURCE_CONFIGS
from .products import make_product, resolve_tenancy
from .sources import make_source


class Fabric:
    def __init__(self, db):
        self._db = weakref.ref(db)
        self.sources: dict = {}
        self.products: dict = {}
        self.runtime = None

    @property
    def db(self):
        db = self._db()
        if db is None:
            raise FabricError("the DataFlow instance of this fabric is gone")
        return db

    # -- sources -----------------------------------------------------------------------------------
    def add_source(self, name, config):
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValidationError(f"source name {name!r} must match [A-Za-z_][A-Za-z0-9_-]{{0,63}}")
        if name in self.db._models:
            raise ValidationError(f"source name {name!r} is already a model")
        if name in self.sources:
            raise ValidationError(f"source {name!r} is already registered")
        if name in self.products:
            raise ValidationError(f"source name {name!r} is already a product")
        if not isinstance(config, SOURCE_CONFIGS):
            raise ConfigurationError(f"source {name!r}: config must be one of "
                                     f"{', '.join(c.__name__ for c in SOURCE_CONFIGS)}, got {type(config).__name__}")
        self._not_running("db.source")
        src = make_source(name, config)
        src.fabric = self
        self.sources[name] = src
        return src

    def source(self, name):
        src = self.sources.get(name)
        if src is None:
            raise ValidationError(f"unknown source {name!r}; sources: {', '.join(self.sources) or 'none'}")
        return src

    # -- products ----------------------------------------------------------------------------------
    def add_product(self, name, fn, options: dict):
        product = make_product(name, fn, **options)
        if name in self.db._models or name in self.sources:
            raise ValidationError(f"product name {name!r} is already a {'model' if name in self.db._models else 'source'}")
        if name in self.products:
            raise ValidationError(f"product {name!r} is already registered")
        for dep in product.depends_on:
            if dep == name:
                raise ValidationError(f"product {name!r} depends on itself")
            if dep not in self.db._models and dep not in self.sources and dep not in self.products:
                raise ValidationError(f"product {name!r} depends on {dep!r}, which is no model, source or "
                                      f"product registered before it (models: {', '.join(self.db._models) or 'none'}; "
                                      f"sources: {', '.join(self.sources) or 'none'}; products: "
                                      f"{', '.join(self.products) or 'none'})")
        cycle = self._cycle({**{p: q.depends_on for p, q in self.products.items()}, name: product.depends_on})
        if cycle:
            raise ValidationError(f"product {name!r}: dependency cycle {' -> '.join(cycle)}")
        resolve_tenancy(product, self.db._models, self.products)
        self._not_running("db.product")
        self.products[name] = product
        return product

    @staticmethod
    def _cycle(graph: dict) -> list | None:
        state: dict = {}

        def visit(n, path):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if state.get(n) == 2 or n not in graph:
                return None
            state[n] = 1
            for d in graph[n]:
                found = visit(d, path + [n])
                if found:
                    return found
            state[n] = 2
            return None

        for n in graph:
            found = visit(n, [])
            if found:
                return found
        return None

    def order(self) -> list:
        """Product names, each after the products it depends on."""
        out, seen = [], set()

        def visit(n):
            if n in seen:
                return
            seen.add(n)
            for d in self.products[n].depends_on:
                if d in self.products:
                    visit(d)
            out.append(n)

        for n in self.products:
            visit(n)
        return out

    def dependents(self, names) -> list:
        """Products depending on any of ``names`` directly, in dependency order (a product that
        depends on another one of them comes after it)."""
        names = set(names)
        return [p for p in self.order() if names.intersection(self.products[p].depends_on)]

    def _not_running(self, what):
        if self.runtime is not None and self.runtime.started:
            raise FabricError(f"{what}(...) after db.start(): register sources and products before starting")
