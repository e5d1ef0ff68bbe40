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

# MT5=webapi: the MT5 server is MetaQuotes' Manager Web API, served by the stand-in (one more
# process, on PORT+1, on the simulated server's state) and the product speaks it over HTTP.
MT5 ?= simulated
RUN_PROCESSES := web worker monitor beat
ifeq ($(MT5),webapi)
RUN_PROCESSES += mt5
MT5_WEBAPI_PORT ?= $(shell echo $$(($(PORT) + 1)))
MT5_MANAGER_LOGIN ?= 1000
ifndef MT5_MANAGER_PASSWORD
# Made anew at each run, shared by the stand-in and the product: never a password in the repo.
MT5_MANAGER_PASSWORD := $(shell $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(12))")
endif
RUN_ENV := MT5_GATEWAY=gateways.mt5.webapi.gateway.WebApiMT5Gateway \
	MT5_WEBAPI_URL=http://127.0.0.1:$(MT5_WEBAPI_PORT) MT5_WEBAPI_PORT=$(MT5_WEBAPI_PORT) \
	MT5_MANAGER_LOGIN=$(MT5_MANAGER_LOGIN) MT5_MANAGER_PASSWORD=$(MT5_MANAGER_PASSWORD)
else ifneq ($(MT5),simulated)
$(error MT5 is "simulated" (the default) or "webapi", not "$(MT5)")
endif

## run: set up and run web (gunicorn, 2 workers x 4 threads), worker, the monitor's worker
## (its own queue) and beat on the embedded
## defaults (Ctrl-C stops all); static files are served by the app (WhiteNoise).
## `make run MT5=webapi`: the same through the MT5 Manager Web API stand-in (docs/gateways.md)
run: install
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Brokerdesk on http://127.0.0.1:$(PORT)/admin/  (API docs: /api/docs/)"
	@$(if $(RUN_ENV),echo "MT5 through the Manager Web API stand-in on http://127.0.0.1:$(MT5_WEBAPI_PORT) (manager $(MT5_MANAGER_LOGIN))")
	@$(RUN_ENV) WEB_PORT=$(PORT) MONITOR_QUEUE=$${MONITOR_QUEUE-monitor} \
		$(BIN)/honcho --procfile Procfile.dev start $(RUN_PROCESSES)

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
## REDIS_URL, driven for SOAK_MINUTES under 20% simulated faults, invariants checked, stopped;
## SOAK_MT5=webapi: MT5 through the Web API client and a stand-in process with its faults on
SOAK_MINUTES ?= 5
soak: install
	$(BIN)/python -m operations.soak.stack --minutes $(SOAK_MINUTES) $(if $(SOAK_MT5),--mt5 $(SOAK_MT5)) $(if $(SOAK_ARGS),-- $(SOAK_ARGS))

doctor: install
	$(BIN)/python manage.py doctor

clean:
	rm -rf var .pytest_cache .ruff_cache
