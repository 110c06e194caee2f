# The two commands: `make run` and `make test`. Python 3.12+ is needed (.python-version picks it under pyenv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= auto

.PHONY: install run test lint bench messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python 3.12 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version). Set PYTHON=python3.12."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

# axe-core for the accessibility tests, at the version package-lock.json pins. Without npm the
# tests are skipped locally (and fail in CI, where .ci/run installs it).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the accessibility tests will be skipped (apt-get install npm)"; fi

install: $(VENV)/.installed node_modules/.installed

run: install
	@scripts/run

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# ruff, and mypy --strict on billing/gateways against the pinned Stripe SDK's own types ([tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The load benchmark (not part of `make test`): gunicorn + PostgreSQL + Debian wrk on loopback, ~6 minutes.
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Re-extract translatable strings into portal/locale/de/LC_MESSAGES/django.po and recompile django.mo (both
# committed, so CI needs no gettext). Needs GNU gettext: apt-get install gettext.
messages: install
	$(BIN)/python manage.py makemessages -l de --no-obsolete --add-location=file \
		-i tests -i bench -i var -i scripts -i docs -i static -i node_modules -i '*.egg-info'
	$(BIN)/python manage.py compilemessages -l de -i .venv

clean:
	rm -rf $(VENV) var node_modules
