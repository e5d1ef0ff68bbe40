# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Every process sees it: web binds to it and one-time links point at it (PUBLIC_BASE_URL unset).
export PORT
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-browser lint format typecheck bench install install-dev doctor mt5-check clean soak

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

# MT5=webapi: the MT5 servers speak MetaQuotes' Manager Web API, served by two stand-ins (two
# more processes on the simulated servers' state): the live server on PORT+1 and the demo
# server the demo pool provisions on, on PORT+2; the product speaks the protocol to both.
MT5 ?= simulated
RUN_PROCESSES := web worker monitor beat
ifeq ($(MT5),webapi)
RUN_PROCESSES += mt5 mt5demo
MT5_WEBAPI_PORT ?= $(shell echo $$(($(PORT) + 1)))
MT5_DEMO_PORT ?= $(shell echo $$(($(PORT) + 2)))
MT5_MANAGER_LOGIN ?= 1000
MT5_DEMO_MANAGER_LOGIN ?= 2000
MT5_DEMO_SERVER ?= Brokerdesk-Demo
# The stand-ins' manager passwords: made once into var/mt5-webapi.env (mode 0600, git-ignored),
# kept across runs so `make doctor MT5=webapi` and `make mt5-check MT5=webapi` beside a running
# `make run MT5=webapi` use the same ones; never a password in the repo or on a command line.
MT5_LOCAL_ENV := $(or $(VAR_DIR),var)/mt5-webapi.env
$(shell test -f $(MT5_LOCAL_ENV) || (mkdir -p $(dir $(MT5_LOCAL_ENV)) && umask 077 && \
	$(PYTHON) -c "import secrets; [print(f'{k} ?= {secrets.token_urlsafe(12)}') for k in \
	('MT5_MANAGER_PASSWORD', 'MT5_DEMO_MANAGER_PASSWORD')]" > $(MT5_LOCAL_ENV)))
include $(MT5_LOCAL_ENV)
# Exported to these targets' processes through the environment (not on their command line,
# which every user of the machine can read in `ps`).
WEBAPI_TARGETS := run doctor mt5-check
$(WEBAPI_TARGETS): export MT5_GATEWAY := gateways.mt5.webapi.gateway.WebApiMT5Gateway
$(WEBAPI_TARGETS): export MT5_WEBAPI_URL := http://127.0.0.1:$(MT5_WEBAPI_PORT)
$(WEBAPI_TARGETS): export MT5_WEBAPI_PORT := $(MT5_WEBAPI_PORT)
$(WEBAPI_TARGETS): export MT5_MANAGER_LOGIN := $(MT5_MANAGER_LOGIN)
$(WEBAPI_TARGETS): export MT5_MANAGER_PASSWORD := $(MT5_MANAGER_PASSWORD)
$(WEBAPI_TARGETS): export DEMO_GATEWAY := gateways.demo.webapi.WebApiDemoGateway
$(WEBAPI_TARGETS): export MT5_DEMO_URL := http://127.0.0.1:$(MT5_DEMO_PORT)
$(WEBAPI_TARGETS): export MT5_DEMO_PORT := $(MT5_DEMO_PORT)
$(WEBAPI_TARGETS): export MT5_DEMO_MANAGER_LOGIN := $(MT5_DEMO_MANAGER_LOGIN)
$(WEBAPI_TARGETS): export MT5_DEMO_MANAGER_PASSWORD := $(MT5_DEMO_MANAGER_PASSWORD)
$(WEBAPI_TARGETS): export MT5_DEMO_SERVER := $(MT5_DEMO_SERVER)
RUN_BANNER := MT5 through the Manager Web API: the live server's stand-in on \
	http://127.0.0.1:$(MT5_WEBAPI_PORT) (manager $(MT5_MANAGER_LOGIN)), the demo server's on \
	http://127.0.0.1:$(MT5_DEMO_PORT) (manager $(MT5_DEMO_MANAGER_LOGIN))
else ifneq ($(MT5),simulated)
$(error MT5 is "simulated" (the default) or "webapi", not "$(MT5)")
endif

## run: set up and run web (gunicorn, 2 workers x 4 threads), worker, the monitor's worker
## (its own queue) and beat on the embedded
## defaults (Ctrl-C stops all); static files are served by the app (WhiteNoise).
## `make run MT5=webapi`: the same through the MT5 Manager Web API stand-in (docs/gateways.md)
run: install
	@# bootstrap seeds the simulated server's state (which the stand-ins serve) and registers its
	@# accounts with the monitor from it: watched from the first second, even with MT5=webapi.
	MT5_GATEWAY=gateways.mt5.simulated.SimulatedMT5Gateway $(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Brokerdesk on http://127.0.0.1:$(PORT)/admin/  (API docs: /api/docs/)"
	@$(if $(RUN_BANNER),echo "$(RUN_BANNER)")
	@# honcho gives each process a PORT of its own (PORT + 100 x its place): the link address is
	@# fixed here, or a link the worker makes (a queued activation's) would point at PORT+100.
	@WEB_PORT=$(PORT) MONITOR_QUEUE=$${MONITOR_QUEUE-monitor} \
		PUBLIC_BASE_URL=$${PUBLIC_BASE_URL-http://127.0.0.1:$(PORT)} \
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

## typecheck: mypy with the django-stubs and djangorestframework-stubs plugins (pyproject.toml)
typecheck: install-dev
	$(BIN)/mypy

## bench: benchmarks, medians against a baseline measured in the same run
BENCH_MONITOR_ACCOUNTS ?= 1000 10000 100000
# The same sweeps through the Web API client and the stand-in (PostgreSQL), beside the simulated.
BENCH_WEBAPI_ACCOUNTS ?= 10000 100000
bench: install-dev
	$(BIN)/python -m bench
	for n in $(BENCH_MONITOR_ACCOUNTS); do $(BIN)/python manage.py bench_monitor --accounts $$n || exit 1; done
	for n in $(BENCH_WEBAPI_ACCOUNTS); do $(BIN)/python manage.py bench_monitor --gateway webapi --accounts $$n --repeat 3 --deposit-rounds 1 || exit 1; done
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

## mt5-check: connect to the MT5 server(s) as the product does and report (`make mt5-check
## MT5=webapi` beside `make run MT5=webapi`: the stand-ins)
mt5-check: install
	$(BIN)/python manage.py mt5 check
	$(if $(filter webapi,$(MT5)),$(BIN)/python manage.py mt5 check --demo)

clean:
	rm -rf var .pytest_cache .ruff_cache
