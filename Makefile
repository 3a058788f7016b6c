# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint bench clean venv pds

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

## Set up, migrate, load the demo data and run the service in the foreground (Ctrl-C stops it).
run: $(STAMP)
	$(BIN)/promo db upgrade
	$(BIN)/promo demo
	$(BIN)/promo serve

## Set up with the test extras and run the whole suite.
test: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Install the reference Bluesky PDS (npm) so tests/platforms/test_bluesky_pds.py runs instead of skipping.
pds:
	bash tests/pds/setup.sh

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/burst.py

clean:
	rm -rf $(VENV) promo.db promo.db-wal promo.db-shm outbox.jsonl
