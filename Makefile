# Developer entry points; see README.md ("Running it", "Testing it").
#   make run    the whole product on SQLite with demo data (scripts/devrun.py)
#   make test   system packages, then the suite on SQLite and PostgreSQL (scripts/run_tests.sh)
#   make lint   ruff
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
# Lives inside the venv, so deleting .venv also forces a reinstall.
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: venv run prod test lint system-packages

venv: $(STAMP)

# Reinstalls only when pyproject.toml changed; a venv of another Python version is rebuilt.
$(STAMP): pyproject.toml
	@if ! $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
		echo "Creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv --clear $(VENV); \
	fi
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $@

system-packages:
	@bash scripts/ensure_system_packages.sh

# Generated PDFs embed the IPAex fonts from Debian's fonts-ipaexfont.
run: venv
	@bash scripts/ensure_system_packages.sh fonts-ipaexfont
	$(VENV)/bin/python scripts/devrun.py

# The production topology on PostgreSQL (gunicorn, 2 workers, scheduler; see deploy/ and scripts/prodrun.py).
prod: venv
	@bash scripts/ensure_system_packages.sh fonts-ipaexfont
	$(VENV)/bin/python scripts/prodrun.py

test: venv system-packages
	bash scripts/run_tests.sh $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
