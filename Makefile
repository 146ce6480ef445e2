# Every target that needs Python runs tools/bootstrap.sh first, which installs whatever is
# missing (and nothing when all is in place), so `make test` works on a fresh machine.
.DEFAULT_GOAL := help
SHELL := bash
# A failing command fails its recipe even inside a pipe (`make lock` pipes into uv).
.SHELLFLAGS := -eu -o pipefail -c

VENV := .venv
BIN := $(VENV)/bin
# What `make lock` resolves: the package's dependencies, its dev extra and its build backend
# (pyproject's [build-system], which bootstrap installs from the lock too), for every platform
# and every Python from 3.11 on, with the hash of every file.
LOCK_FLAGS := --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock'
BUILD_REQUIRES := $(BIN)/python -c 'import tomllib; \
	print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'

.PHONY: help bootstrap run test lint format typecheck lock lock-upgrade clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

bootstrap: ## Install what is missing: apt packages (as root), .venv, Python dependencies
	@bash tools/bootstrap.sh

run: bootstrap ## Start the monitor (collector and dashboard)
	$(BIN)/sandscope run

test: bootstrap lint typecheck ## Lint, type-check, then run the tests
	$(BIN)/python -m pytest

# import-linter takes under a second without its cache, so it leaves no cache in the work tree.
lint: bootstrap ## Check style, formatting (ruff) and the direction of imports (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: bootstrap ## Reformat the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: bootstrap ## Type-check the packages (strict) and the tests (pyproject's [tool.mypy])
	$(BIN)/mypy

# Both keep the versions already locked where pyproject's ranges still allow them; the
# -upgrade one takes the newest each range allows. Both need the registry.
lock: ## Re-lock after editing pyproject's dependencies (requirements*.lock)
	@bash tools/bootstrap.sh --uv-only
	$(BUILD_REQUIRES) | $(BIN)/uv pip compile pyproject.toml - --extra dev $(LOCK_FLAGS) \
		$(UPGRADE) -o requirements.lock
	echo uv | $(BIN)/uv pip compile - $(LOCK_FLAGS) $(UPGRADE) -o requirements-uv.lock

lock-upgrade: ## Re-lock at the newest versions pyproject's ranges allow
	$(MAKE) lock UPGRADE=--upgrade

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
