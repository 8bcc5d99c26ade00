# Developer entry points. Every target that runs code bootstraps first; bootstrap is
# idempotent and takes about a second when nothing changed.

VENV   := .venv
PYTHON := $(VENV)/bin/python

# Typecheck only the Python roots that exist, so new rooms are picked up as they land.
MYPY_TARGETS := $(wildcard ferry cli api orchestrations activities runner function_app.py)

.PHONY: bootstrap test lint typecheck demo bench clean

bootstrap:
	bash scripts/bootstrap.sh

lint: bootstrap
	$(VENV)/bin/ruff check .

typecheck: bootstrap
	$(VENV)/bin/mypy $(MYPY_TARGETS)

test: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_TARGETS)
	$(PYTHON) -m pytest tests

demo: bootstrap
	$(PYTHON) -m demo

bench: bootstrap
	$(PYTHON) -m bench.copy
	$(PYTHON) -m bench.transfer

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache build *.egg-info .demo .bench
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
