# Switchboard: `make run` starts the demo, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-sqlite lint serve bench bench-history chromium postgresql clean

run: $(VENV)/.installed ## Set up, then start the demo: the app and the local Twilio emulator
	$(PY) demo.py

test: $(VENV)/.installed chromium postgresql ## Lint, then every test on SQLite and PostgreSQL (browser tests included)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-sqlite: $(VENV)/.installed chromium ## The quick path without PostgreSQL: lint, then every test on SQLite
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not postgresql"

lint: $(VENV)/.installed ## ruff: lint and import order
	$(VENV)/bin/ruff check .

serve: $(VENV)/.installed ## Serve the app alone (real Twilio): settings from .env, server from gunicorn.conf.py
	$(VENV)/bin/gunicorn 'app:create_app()'

bench: $(VENV)/.installed ## Webhook throughput and latency against a bare Flask + sqlite3 baseline
	$(PY) bench/webhooks.py

bench-history: $(VENV)/.installed ## History page server time with 100k calls
	$(PY) bench/history_page.py

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

chromium: ## Debian's Chromium for the browser tests (Playwright cannot download its own here)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	  else echo "The browser tests need Debian's Chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

postgresql: ## PostgreSQL's server programs: the tests start a throwaway server of their own
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y postgresql; \
	  else echo "The tests need PostgreSQL's server: sudo apt-get install -y postgresql (or run make test-sqlite)" >&2; exit 1; fi; }

clean:
	rm -rf $(VENV) .pytest_cache
