# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Every process sees it: web binds to it and one-time links point at it (PUBLIC_BASE_URL unset).
export PORT
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-browser lint format bench install install-dev doctor clean soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: set up and run web (gunicorn, 2 workers x 4 threads), worker, the monitor's worker
## (its own queue) and beat on the embedded
## defaults (Ctrl-C stops all); static files are served by the app (WhiteNoise)
run: install
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Brokerdesk on http://127.0.0.1:$(PORT)/admin/  (API docs: /api/docs/)"
	WEB_PORT=$(PORT) MONITOR_QUEUE=$${MONITOR_QUEUE-monitor} $(BIN)/honcho --procfile Procfile.dev start

## test: set up and run the tests (PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set)
test: install-dev
	$(BIN)/pytest --create-db $(PYTEST_ARGS)

## test-browser: only the browser tests (headless Chromium: Debian's chromium and chromium-driver)
test-browser: install-dev
	BROWSER_TESTS=1 $(BIN)/pytest --create-db -m browser tests/browser $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: benchmarks, medians against a baseline measured in the same run
BENCH_MONITOR_ACCOUNTS ?= 1000 10000 100000
bench: install-dev
	$(BIN)/python -m bench
	for n in $(BENCH_MONITOR_ACCOUNTS); do $(BIN)/python manage.py bench_monitor --accounts $$n || exit 1; done
	$(BIN)/python manage.py bench_pool --concurrency 100 --requests 1000
	$(BIN)/python manage.py bench_license
	$(BIN)/python manage.py bench_signals --sessions 10000

## soak: web, worker and beat started in the background on DATABASE_URL (PostgreSQL) and
## REDIS_URL, driven for SOAK_MINUTES under 20% simulated faults, invariants checked, stopped
SOAK_MINUTES ?= 5
soak: install
	$(BIN)/python -m operations.soak.stack --minutes $(SOAK_MINUTES) $(if $(SOAK_ARGS),-- $(SOAK_ARGS))

doctor: install
	$(BIN)/python manage.py doctor

clean:
	rm -rf var .pytest_cache .ruff_cache
