# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per environment, named by what it was installed from: a change reinstalls.
RUN_STAMP  := $(VENV)/.run-$(shell cat pyproject.toml requirements/run.txt | sha1sum | cut -c1-12)
TEST_STAMP := $(VENV)/.test-$(shell cat pyproject.toml requirements/test.txt | sha1sum | cut -c1-12)
# pip-compile lives in its own small venv, so it never mixes into the test environment.
LOCK_VENV  := $(VENV)/lock
PIP_TOOLS  := pip-tools==7.6.2

.PHONY: run test lint bench clean venv pds lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What running needs, at the versions in requirements/run.txt (no pytest, selenium, mypy, ruff).
$(RUN_STAMP): pyproject.toml requirements/run.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/run.txt
	$(BIN)/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.run-*
	touch $@

# The test environment exactly as locked in requirements/test.txt (runtime + test extras).
$(TEST_STAMP): pyproject.toml requirements/test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.test-*
	touch $@

venv: $(TEST_STAMP)

## Set up, migrate, load the demo data and run the service in the foreground (Ctrl-C stops it).
run: $(RUN_STAMP)
	$(BIN)/promo db upgrade
	$(BIN)/promo demo
	$(BIN)/promo serve

## Set up with the test extras (from the lock) and run the whole suite.
test: $(TEST_STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Refresh requirements/*.txt from pyproject.toml (newest versions it allows); commit the result.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet $(PIP_TOOLS); }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras \
	  --no-emit-index-url --no-emit-find-links --extra test -o requirements/test.txt pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras \
	  --no-emit-index-url --no-emit-find-links -c requirements/test.txt -o requirements/run.txt pyproject.toml

## Install the reference Bluesky PDS (npm) so tests/platforms/test_bluesky_pds.py runs instead of skipping.
pds:
	bash tests/pds/setup.sh

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

bench: $(TEST_STAMP)
	$(BIN)/python bench/burst.py

clean:
	rm -rf $(VENV) promo.db promo.db-wal promo.db-shm outbox.jsonl
