# Developer entry points. Every target that runs code bootstraps first; bootstrap is
# idempotent and takes about a second when nothing changed.

VENV   := .venv
PYTHON := $(VENV)/bin/python

# Typecheck only the Python roots that exist, so new rooms are picked up as they land.
MYPY_TARGETS := $(wildcard ferry cli api orchestrations activities runner function_app.py)

.PHONY: bootstrap test lint typecheck demo bench clean checkov

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

# Security scan of infra/ (not part of `make test`: installing checkov takes minutes). checkov runs in
# its own venv and exits 0 when it cannot parse a file, so infra/checkov_gate.py judges its JSON
# report: every file parsed, no failed check, every skip with a reason in the .bicep file.
CHECKOV_VENV := infra/.venv-checkov

checkov:
	@mkdir -p build
	@if ! cmp -s infra/requirements-checkov.txt $(CHECKOV_VENV)/.requirements; then \
		echo "checkov: installing infra/requirements-checkov.txt into $(CHECKOV_VENV)"; \
		rm -rf $(CHECKOV_VENV) && python3 -m venv $(CHECKOV_VENV) && \
		$(CHECKOV_VENV)/bin/python -m pip --disable-pip-version-check -q install \
			-r infra/requirements-checkov.txt > build/checkov-install.log 2>&1 || \
			{ cat build/checkov-install.log; exit 1; }; \
		cp infra/requirements-checkov.txt $(CHECKOV_VENV)/.requirements; \
	fi
	$(CHECKOV_VENV)/bin/checkov --directory infra --skip-path '.venv-checkov' --framework bicep --skip-download --output json \
		> build/checkov.json 2> build/checkov.log || true
	$(CHECKOV_VENV)/bin/python infra/checkov_gate.py build/checkov.json

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache build *.egg-info .demo .bench
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
