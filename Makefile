# Two commands matter (see README): `make sync` runs a real sync, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin

.PHONY: install warehouse browser test sync report bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# report/ is its own distribution (circleci-ccm-report, needs only DuckDB): installed beside the connector,
# never part of its wheel or image. Its query tests need DuckDB, so `make test` installs it too.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]' -e ./report

test: install
	$(BIN)/python -m pytest -q

# PyAirbyte and DuckDB (~780 MB) are only for `make sync`, never for `make test` or the connector image.
warehouse: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[warehouse]' -e ./report

# What the report's browser test needs beyond the warehouse: Playwright for Python (its driver, never its
# browsers: the test drives Debian's chromium, `apt-get install chromium`).
browser: warehouse
	$(BIN)/pip install --quiet -e './report[browser]'

# A full, then incremental, sync of every stream into .cache/circleci_ccm.duckdb (simulator unless CIRCLECI_TOKEN is set).
sync: warehouse
	$(BIN)/python scripts/sync_to_duckdb.py

# The evidence report of the last sync (make sync writes it too); flags via REPORT_ARGS, e.g. --since 2026-10-01
report:
	$(BIN)/circleci-ccm-report $(REPORT_ARGS)

# Issue 6 benchmark against the simulator; flags via BENCH_ARGS, e.g. make bench BENCH_ARGS="--latency-ms 200"
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
