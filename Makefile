# Two commands from a fresh clone:
#   make demo   -- venv + base install + native build + a demo on embedded SQLite (no server)
#   make test   -- the whole suite on SQLite, PostgreSQL and MariaDB, native and pure-Python
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dataflow-built

.PHONY: demo test test-native test-python bench bench-quick build clean docs

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

TEST_STAMP := $(VENV)/.dataflow-test-deps

# The demo needs only the base install (SQLite is built in): the build tools, the package
# without extras, the native core.  Built in this venv, so no isolated build environment.
$(STAMP): $(BIN)/python pyproject.toml setup.py $(wildcard _native/*.pyx) $(wildcard _native/*.pxi)
	$(BIN)/python -m pip install -q 'Cython>=3.0' 'setuptools>=77'
	$(BIN)/python -m pip install -q --no-build-isolation -e .
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(STAMP)

# Tests and benchmarks add the server drivers, numpy/pandas/arrow, hypothesis, matplotlib...
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[postgres,mysql,mongo,vector,cache,fabric,s3,kafka,speed,test,bench,docs]'
	touch $(TEST_STAMP)

build: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dataflow demo

test: $(TEST_STAMP)
	DATAFLOW_REQUIRE_NATIVE=1 $(BIN)/python setup.py -q build_ext --inplace
	$(MAKE) docs
	$(BIN)/python -m dataflow info
	DATAFLOW_REQUIRE_NATIVE=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests
	DATAFLOW_NO_NATIVE=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests

# The documentation site into site/ (git-ignored); mkdocs.yml has strict: true, so a warning
# (a broken link, a docstring the API reference cannot render) fails the build -- not with -q,
# which hides warnings from the strict count as well.  Then the built
# Getting started page is opened in headless Chromium (skipped when it is not installed).
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --clean -d site
	$(BIN)/python tests/docs/render_check.py site

bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(TEST_STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf build $(VENV) _native/*.so _native/*.c *.egg-info site
