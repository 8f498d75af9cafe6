# Two commands from a fresh clone:
#   make demo   -- venv + native build + a demo on embedded SQLite (no server)
#   make test   -- the whole suite on SQLite, PostgreSQL and MariaDB, native and pure-Python
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dataflow-built

.PHONY: demo test test-native test-python bench bench-quick build clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml setup.py $(wildcard _native/*.pyx) $(wildcard _native/*.pxi)
	$(BIN)/python -m pip install -q 'Cython>=3.0'
	$(BIN)/python -m pip install -q -e '.[postgres,mysql,vector,speed,test,bench]'
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(STAMP)

build: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dataflow demo

test: $(STAMP)
	DATAFLOW_REQUIRE_NATIVE=1 $(BIN)/python setup.py -q build_ext --inplace
	$(BIN)/python -m dataflow info
	DATAFLOW_REQUIRE_NATIVE=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests
	DATAFLOW_NO_NATIVE=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf build $(VENV) _native/*.so _native/*.c *.egg-info
