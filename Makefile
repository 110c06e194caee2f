# The two commands: `make run` and `make test`. Python 3.12+ is needed (.python-version picks it under pyenv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= auto
# Every Python package comes from a lock file in requirements/ (exact versions with hashes): the portal's
# own (runtime.txt), plus localstripe for the demo (demo.txt), plus the test and lint tools (dev.txt).
PIP_INSTALL := $(BIN)/python -m pip install -q --require-hashes -r requirements/build.txt
UV_COMPILE := $(BIN)/uv pip compile --universal --python-version 3.12 --generate-hashes --quiet

.PHONY: install install-demo run test lint lock wheel bench messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python 3.12 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version). Set PYTHON=python3.12."; exit 1; }
	@echo "Creating the virtual environment $(VENV) with $$($(PYTHON) --version)…"
	@$(PYTHON) -m venv $(VENV)

# The portal itself is installed editable, without dependencies (the lock brought them) and with the
# locked setuptools (no build isolation, so nothing unlocked is downloaded to build it).
$(VENV)/.demo-installed: requirements/build.txt requirements/demo.txt pyproject.toml | $(BIN)/python
	@echo "Installing the portal and localstripe from requirements/demo.txt (a minute or two the first time)…"
	@$(PIP_INSTALL) -r requirements/demo.txt
	@$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.dev-installed: requirements/build.txt requirements/dev.txt pyproject.toml | $(BIN)/python
	@echo "Installing the portal and its test tools from requirements/dev.txt (a few minutes the first time)…"
	@$(PIP_INSTALL) -r requirements/dev.txt
	@$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@ $(VENV)/.demo-installed

# axe-core for the accessibility tests, at the version package-lock.json pins. Without npm the
# tests are skipped locally (and fail in CI, where .ci/run installs it).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then echo "Installing axe-core with npm ci…"; \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the accessibility tests will be skipped (apt-get install npm)"; fi

install: $(VENV)/.dev-installed node_modules/.installed

install-demo: $(VENV)/.demo-installed

run: install-demo
	@scripts/run

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# ruff's checks and formatting, mypy --strict on billing/gateways against the pinned Stripe SDK's own types
# ([tool.mypy]), and import-linter's layers contract: no app imports one above it ([tool.importlinter], docs/architecture.md).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Re-resolve the lock files from pyproject.toml's ranges (an upgrade is the diff this makes). dev.txt is
# resolved first; demo.txt and runtime.txt take its versions, so the three never disagree.
lock: $(VENV)/.dev-installed
	$(UV_COMPILE) pyproject.toml --group dev -o requirements/dev.txt
	$(UV_COMPILE) pyproject.toml --group demo -c requirements/dev.txt -o requirements/demo.txt
	$(UV_COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt

# The wheel that deploys (docs/operations.md) in dist/.
wheel: $(VENV)/.dev-installed
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w dist .

# The load benchmark (not part of `make test`): gunicorn + PostgreSQL + Debian wrk on loopback, ~6 minutes.
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Re-extract translatable strings into portal/locale/de/LC_MESSAGES/django.po and recompile django.mo (both
# committed, so CI needs no gettext). Needs GNU gettext: apt-get install gettext.
messages: install
	$(BIN)/python manage.py makemessages -l de --no-obsolete --add-location=file \
		-i tests -i bench -i var -i scripts -i docs -i static -i node_modules -i '*.egg-info' -i dist -i build
	$(BIN)/python manage.py compilemessages -l de -i .venv

clean:
	rm -rf $(VENV) var node_modules dist build
