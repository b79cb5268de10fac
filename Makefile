# Switchboard: `make run` starts the demo, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test serve bench bench-history chromium clean

run: $(VENV)/.installed ## Set up, then start the demo: the app and the local Twilio emulator
	$(PY) demo.py

test: $(VENV)/.installed chromium ## Run the whole test suite (browser tests included)
	$(PY) -m pytest

serve: $(VENV)/.installed ## Serve the app alone (real Twilio): settings from .env
	$(VENV)/bin/gunicorn 'app:create_app()' --bind 127.0.0.1:5000 --workers 2

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

clean:
	rm -rf $(VENV) .pytest_cache
