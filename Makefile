# The two commands that matter: `make dev` (local stack) and `make test` (every test).
# Each creates the virtualenv and installs the pinned dependencies by itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv test test-unit test-integration dev dev-reset migrate seed psql token invoke lint format bench build clean

help:
	@echo "make dev | test | lint | format | migrate | seed | bench | build | dev-reset | clean"

$(STAMP): requirements-dev.txt layers/shared/requirements.txt
	@test -x $(PY) || "$$(dev/find-python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest -m "integration or e2e" $(PYTEST_ARGS)

dev: $(STAMP)
	$(PY) -m dev up

dev-reset: $(STAMP)
	$(PY) -m dev reset

migrate: $(STAMP)
	$(PY) -m dev migrate

seed: $(STAMP)
	$(PY) -m dev seed $(SEED_ARGS)

psql: $(STAMP)
	$(PY) -m dev psql

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m bench

build:
	sam build --use-container=false

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .aws-sam
