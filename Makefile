# Switchboard: `make run` starts the demo, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHROMIUM ?= /usr/bin/chromium
NODE_CACHE := .cache/emulator-node

.PHONY: run test test-sqlite lint serve bench bench-history bench-panel chromium postgresql clean reference bench-emulator

run: $(VENV)/.installed ## Set up, then start the demo: the app and the local Twilio emulator
	$(PY) demo.py

test: $(VENV)/.installed chromium postgresql reference ## Lint, then every test on SQLite and PostgreSQL (browser tests included)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-sqlite: $(VENV)/.installed chromium reference ## The quick path without PostgreSQL: lint, then every test on SQLite
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

bench-panel: $(VENV)/.installed ## The live list with 1,000 live calls: server time and bytes per poll, 50 operators' CPU
	$(PY) bench/panel.py

bench-emulator: $(VENV)/.installed ## The emulator's callback lateness with 500 simultaneous calls (and with one app URL hanging)
	$(PY) bench/emulator.py

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

reference: $(NODE_CACHE)/.installed ## Pinned npm material for tests/emulator: Twilio's OpenAPI spec and the Node SDK

$(NODE_CACHE)/.installed: tests/emulator/node/package.json tests/emulator/node/package-lock.json tests/emulator/npm_reference.py
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y nodejs npm; \
	  else echo "The emulator tests need Node.js and npm: sudo apt-get install -y nodejs npm" >&2; exit 1; fi; }
	mkdir -p $(NODE_CACHE)
	cp tests/emulator/node/package.json tests/emulator/node/package-lock.json $(NODE_CACHE)/
	cd $(NODE_CACHE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(PYTHON) tests/emulator/npm_reference.py
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache
