# The two commands that matter: `make dev` (local stack) and `make test` (every test).
# Each creates the virtualenv and installs the pinned dependencies by itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The SAM CLI pins click and botocore differently from the project: its own venv.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
# checkov pins boto3, cachetools and packaging below the project's: its own venv too.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: help venv checkov test test-unit test-integration dev dev-reset migrate seed psql token invoke schedule lint format bench build clean

help:
	@echo "make dev | test | checkov | lint | format | migrate | seed | psql | token | invoke | schedule | bench | build | dev-reset | clean"
	@echo "variables: PYTEST_ARGS (test*), SEED_ARGS (seed), PSQL_ARGS (psql), TOKEN_ARGS (token),"
	@echo "           INVOKE_ARGS (invoke), SCHEDULE_ARGS (schedule), BENCH_ARGS (bench: one benchmark and its arguments),"
	@echo "           DATABASE_URL (dev, migrate, seed, psql, invoke: that database; test: that server)"

$(STAMP): requirements-dev.txt layers/shared/requirements.txt
	@test -x $(PY) || "$$(dev/find-python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

$(SAM):
	"$$(dev/find-python.sh)" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_VERSION)

$(CHECKOV):
	"$$(dev/find-python.sh)" -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)

# tests/unit/test_template.py runs it over template.yaml (fails in CI without it).
checkov: $(CHECKOV)

# The SAM CLI comes along so the suite proves the arm64 build (tests/e2e/test_sam_build.py),
# and checkov so the posture test runs.
test: $(STAMP) $(SAM) $(CHECKOV)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest -m "integration or e2e" $(PYTEST_ARGS)

# DATABASE_URL=postgresql://user@host/db make dev|migrate|seed|psql uses that very
# database; without it, practice_dev on the embedded server under .dev/.
dev: $(STAMP)
	$(PY) -m dev up

dev-reset: $(STAMP)
	$(PY) -m dev reset

migrate: $(STAMP)
	$(PY) -m dev migrate

seed: $(STAMP)
	$(PY) -m dev seed $(SEED_ARGS)

# e.g. make psql PSQL_ARGS="--as-app -c 'select count(*) from scenario_attempts'"
psql: $(STAMP)
	$(PY) -m dev psql $(PSQL_ARGS)

# Silent, so `$$(make token TOKEN_ARGS=…)` captures the token alone.
token: $(STAMP)
	@$(PY) -m dev token $(TOKEN_ARGS)

invoke: $(STAMP)
	$(PY) -m dev invoke $(INVOKE_ARGS)

# What EventBridge would start: make schedule SCHEDULE_ARGS=SweepDedupe (none: the list).
schedule: $(STAMP)
	$(PY) -m dev schedule $(SCHEDULE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every benchmark, each in its own process; BENCH_ARGS="seed_bench 1000000" runs one.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# SAM needs python3.13 on PATH; the project's venv provides it. No Docker: SAM
# fetches manylinux aarch64 wheels for the arm64 functions and layer.
build: $(STAMP) $(SAM)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .aws-sam
