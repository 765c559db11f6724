# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-run

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,s3,postgres]"
	touch $(STAMP)

install: $(STAMP)

## demo: init a project, ingest a real image set (Fashion-MNIST or bundled samples), show status
demo: $(STAMP)
	$(BIN)/python scripts/demo.py --workdir $(DEMO_DIR)

## lint: ruff, mypy and the import-layer contract
lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: lint, then the whole suite (PostgreSQL and S3 servers are started by the tests)
test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
