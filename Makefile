# AInfluencer — the two Quickstart commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run install install-test test test-sqlite test-postgres test-celery test-browser lint typecheck check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The app with the media studio (face gates, provenance, voice, video); torch/diffusers stay opt-in.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[media,local]'
	touch $@

# torch==2.13.0 is the CPU build (a plain `torch` requirement would pull a multi-GB CUDA build).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed  ## install the app into .venv

install-test: $(VENV)/.installed-test

run: install  ## install, migrate and start everything on http://127.0.0.1:8000
	$(BIN)/ainfluencer up

lint: install-test
	$(BIN)/ruff check src tests bench

typecheck: install-test
	$(BIN)/mypy

check: lint typecheck

test-sqlite: install-test
	$(BIN)/pytest -m "not browser and not celery"

test-postgres: install-test
	AINF_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -m "not browser and not nodb"

test-celery: install-test
	$(BIN)/pytest -m celery

test-browser: install-test
	@command -v chromium >/dev/null || { echo "chromium missing: apt-get install -y chromium"; exit 1; }
	$(BIN)/pytest -m browser

## The whole suite: lint, types, SQLite, PostgreSQL (incl. Celery on Redis), browser.
test: check
	@scripts/ensure-services.sh
	$(BIN)/pytest -m "not browser"
	AINF_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -m "not browser and not nodb"
	$(BIN)/pytest -m browser

bench: install-test  ## benchmarks (never part of `make test`)
	@scripts/ensure-services.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
