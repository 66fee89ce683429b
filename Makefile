# The two commands a user needs: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install browser postgres provision stack-up stack-down clean bench

run: install
	$(BIN)/recsys run $(RUN_ARGS)

# One pytest process by default: on 2 cores two pytest-xdist workers, each on a test stack of its
# own, took longer than one (docs in README, Tests). TEST_WORKERS=2 runs them; a module's tests stay
# on one worker, because module fixtures share a stack of data.
TEST_WORKERS ?= 0

# --durations: every run ends with the 25 slowest tests, where a faster suite has to start.
test: lint browser postgres provision
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# The linter, the formatter's check and the type checker (settings in pyproject.toml): zero findings.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(STAMP)

# Exact versions come from requirements.lock (pip freeze of a working install).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# The storefront's browser test drives Debian's chromium (Playwright never downloads a browser).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the storefront's browser test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not found: install it (apt-get install chromium) or the browser test is skipped"; fi

# FerretDB's PostgreSQL backend (RECSYS_FERRETDB_BACKEND=postgresql) runs on Debian's postgresql-15.
postgres:
	@if command -v postgres >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql-15 for FerretDB's PostgreSQL backend (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	else echo "PostgreSQL not found: install it (apt-get install postgresql-15) or its stack test is skipped"; fi

provision: install
	$(BIN)/recsys stack provision

stack-up: install
	$(BIN)/recsys stack up

stack-down: install
	$(BIN)/recsys stack down

bench: install
	$(BIN)/python bench/api.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/freshness.py
	$(BIN)/python bench/stream_capacity.py
	$(BIN)/python bench/simulate.py

clean:
	-$(BIN)/recsys stack down
	rm -rf .recsys-test* .pytest_cache
