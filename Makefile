# Every target that needs Python runs tools/bootstrap.sh first, which installs whatever is
# missing (and nothing when all is in place), so `make test` works on a fresh machine.
.DEFAULT_GOAL := help
SHELL := bash

VENV := .venv
BIN := $(VENV)/bin
# Type-check every package directory that exists so far.
PACKAGE_DIRS := e2bapi collectors storage dashboard sandboxd sandscope
PACKAGES := $(patsubst %/__init__.py,%,$(wildcard $(addsuffix /__init__.py,$(PACKAGE_DIRS))))

.PHONY: help bootstrap run test lint format typecheck clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

bootstrap: ## Install what is missing: apt packages (as root), .venv, Python dependencies
	@bash tools/bootstrap.sh

run: bootstrap ## Start the monitor (collector and dashboard)
	$(BIN)/sandscope run

test: bootstrap lint typecheck ## Lint, type-check, then run the tests
	$(BIN)/python -m pytest

lint: bootstrap ## Check style and formatting (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: bootstrap ## Reformat the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: bootstrap ## Type-check the packages (mypy --strict)
	$(BIN)/mypy $(PACKAGES)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
