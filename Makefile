# Two commands matter (see README): `make sync` runs a real sync, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin

.PHONY: install warehouse test sync bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

test: install
	$(BIN)/python -m pytest -q

# PyAirbyte and DuckDB (~780 MB) are only for `make sync`, never for `make test` or the connector image.
warehouse: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[warehouse]'

# A full, then incremental, sync of every stream into .cache/circleci_ccm.duckdb (simulator unless CIRCLECI_TOKEN is set).
sync: warehouse
	$(BIN)/python scripts/sync_to_duckdb.py

# Issue 6 benchmark against the simulator; flags via BENCH_ARGS, e.g. make bench BENCH_ARGS="--latency-ms 200"
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
