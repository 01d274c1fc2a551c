# haot: `make run` serves the embedded default; `make test` runs the whole suite on real backends.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check lint fmt typecheck pytest install install-dev services bench clean lock split split-down

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "haot needs Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# constraints.txt pins every package to the versions the suite last passed on (`make lock`).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@ $(VENV)/.installed

## lock: re-resolve the newest allowed versions in a scratch venv and pin them in constraints.txt
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .lock-venv

$(VENV)/.installed-split: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,split]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

.env:
	@echo "HAOT_JWT_SECRET=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > .env
	@echo "wrote .env with a fresh HAOT_JWT_SECRET"

## run: install, migrate, seed demo data and serve on http://$(HOST):$(PORT) (SQLite, embedded Redis, in-process bus, fake PortOne)
run: install .env
	$(BIN)/haot migrate
	$(BIN)/haot seed
	$(BIN)/haot serve --host $(HOST) --port $(PORT)

## split: every context its own process and PostgreSQL database, workers, tansu, Redis and the nginx gateway on http://127.0.0.1:$(SPLIT_PORT)
SPLIT_PORT ?= 8080
split: $(VENV)/.installed-split
	@bash scripts/ensure-services.sh
	@bash scripts/ensure-debian-tool.sh nginx nginx HAOT_TEST_NGINX -v
	$(BIN)/python -m haot.local_split up --port $(SPLIT_PORT)

## split-down: stop everything make split started (its databases stay)
split-down:
	@$(BIN)/python -m haot.local_split down

## test: install dev tools, make sure PostgreSQL/Redis are up, lint, type-check and run the suite
test: install-dev services check pytest

services:
	@bash scripts/ensure-services.sh
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-debian-tool.sh nginx nginx HAOT_TEST_NGINX -v
	@bash scripts/ensure-debian-tool.sh promtool prometheus HAOT_TEST_PROMTOOL
	@bash scripts/ensure-debian-tool.sh amtool prometheus-alertmanager HAOT_TEST_AMTOOL
	@bash scripts/ensure-debian-tool.sh shellcheck shellcheck HAOT_TEST_SHELLCHECK
	@bash scripts/ensure-node-tools.sh

check: install-dev lint typecheck

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest -q $(PYTEST_ARGS)

fmt: install-dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

## bench: coupon claims under wrk beside a raw baseline (PostgreSQL + Redis, several workers); writes bench/results/
bench: install-dev services
	$(BIN)/python -m bench.run

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
