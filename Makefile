# The two commands a user needs: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install provision stack-up stack-down lint clean bench

run: install
	$(BIN)/recsys run

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

# Exact versions come from requirements.lock (pip freeze of a working install).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

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

clean:
	-$(BIN)/recsys stack down
	rm -rf .recsys-test* .pytest_cache
