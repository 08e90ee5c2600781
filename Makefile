# Development commands. `make run` starts the site, `make test` runs every
# check that CI runs. Both install what they need first.
#
# With DATABASE_URL and REDIS_URL unset, both use an embedded PostgreSQL and
# Redis kept under var/; set them to use real servers.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The interpreter that creates the virtual environment; later commands use
# the environment's own binaries.
PYTHON ?= $(shell command -v python3.11 || command -v python3)

PYTHON_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

TEST_SETTINGS := rm6.settings.test

.PHONY: help install run test lint migrations-check pytest clean

help:
	@echo "make install           create .venv, install Python and npm packages"
	@echo "make run               migrate, load demo data, start web, worker and beat"
	@echo "make test              lint, check migrations, run the pytest suite"
	@echo "make lint              ruff check, ruff format --check, lint-imports"
	@echo "make migrations-check  fail when a model change has no migration"
	@echo "make pytest            run the pytest suite only (options in PYTEST_ARGS)"
	@echo "make clean             remove .venv, node_modules and caches (keeps var/)"

install: $(PYTHON_STAMP) $(NODE_STAMP)

$(PYTHON_STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		test -n "$(PYTHON)" || { echo "python3.11 or python3 not found on PATH" >&2; exit 1; }; \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --disable-pip-version-check --quiet -e ".[dev,test]"
	@touch $@

$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@if [ -f package-lock.json ]; then \
		npm ci --no-audit --no-fund; \
	else \
		npm install --no-audit --no-fund; \
	fi
	@touch $@

run: install
	$(PY) -m rm6.dev

test: install lint migrations-check pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --cache-dir $(VENV)/.import_linter_cache

migrations-check: install
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(PY) manage.py makemigrations --check --dry-run

# pytest exits with 5 when it collected no tests; that is a failure here too.
pytest: install
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$status

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache *.egg-info var/staticfiles
	find apps rm6 tests -name __pycache__ -type d -prune -exec rm -rf {} +
	@echo "kept var/ (embedded database and Redis data); delete it by hand to start over"
