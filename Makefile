# make test: create .venv, install the project with its test extras, run ruff, mypy and pytest.
# make demo: run the demo service (see README).
# make docs: build the documentation site into site/ (strict: any warning fails); make docs-serve.
PYTHON ?= python3
VENV ?= .venv
# Extra requirements for the venv, e.g. the oldest supported line in .ci/run.
PINS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test check lint typecheck pyright pytest docs docs-serve mutation demo demo-gunicorn demo-granian demo-asgi bench load clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]' $(PINS)
	touch $(STAMP)

test: $(STAMP) lint typecheck pyright docs pytest

# The fast local loop: everything but the tests marked `slow` (servers, forks, subprocesses,
# load). make test (and CI) runs them all.
check: $(STAMP) lint typecheck
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pyright as a user sees the package: the built wheel, not the editable install (pyright's
# --verifytypes does not follow the editable import hook), must be 100% typed.
PYRIGHT_DIR := $(VENV)/pyright-wheel

pyright: $(STAMP)
	rm -rf $(PYRIGHT_DIR) && mkdir -p $(PYRIGHT_DIR)/site
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -q -w $(PYRIGHT_DIR) .
	$(BIN)/python -m zipfile -e $(PYRIGHT_DIR)/cst_chassis-*.whl $(PYRIGHT_DIR)/site
	cd $(PYRIGHT_DIR) && PYTHONPATH="$(abspath $(PYRIGHT_DIR))/site" \
		"$(abspath $(BIN))/pyright" --pythonpath "$(abspath $(BIN))/python" \
		--verifytypes cst_chassis --ignoreexternal

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Mutation testing (mutmut 3; slow, not in CI): the modules and tests of [tool.mutmut] in
# pyproject.toml, on SQLite; MUTATION_POSTGRES_URL adds the PostgreSQL cases (keyset's dialect
# checks need them). MUTANTS narrows the run, e.g. make mutation MUTANTS='cst_chassis.context*'.
MUTANTS ?= cst_chassis.context* cst_chassis.middleware* cst_chassis.envelope* cst_chassis.pagination.*
MUTATION_JOBS ?= 2
MUTATION_POSTGRES_URL ?=

mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]' $(PINS)
	CST_TEST_POSTGRES_URL='$(MUTATION_POSTGRES_URL)' $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(foreach m,$(MUTANTS),'$(m)')
	$(BIN)/mutmut results

# The documentation site (mkdocs.yml, docs/): --strict turns every warning into a failure (broken
# links or anchors, unresolved references, an undocumented public name). Nothing is fetched: no web
# fonts, no CDN; charts and diagram are drawn by matplotlib from bench/results/*.json.
DOCS_PORT ?= 8000

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:$(DOCS_PORT)

# The full reliability load (tests/reliability; README, "Reliability"): the tests marked `load`
# with LOAD_REQUESTS requests per server (make test runs them with 3000 / 1500).
LOAD_REQUESTS ?= 10000

load: $(STAMP)
	CST_LOAD_REQUESTS=$(LOAD_REQUESTS) CST_LOAD_THREADED_REQUESTS=$(LOAD_REQUESTS) \
		$(BIN)/pytest -m load tests/reliability $(PYTEST_ARGS)

# The demo (examples/demo; README, "The demo service"): migrates and seeds DATABASE_URL (default: a SQLite file,
# examples/demo/demo.db), then serves on http://$(DEMO_HOST):$(PORT), printing the URLs of its OpenAPI
# document and docs page. make demo PORT=8000 to move.
DEMO_HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_WORKERS ?= 2
DEMO_THREADS ?= 2

demo: $(STAMP)
	@echo "metrics: http://$(DEMO_HOST):$(PORT)/metrics  liveness: /livez  readiness: /readyz"
	HOST=$(DEMO_HOST) PORT=$(PORT) $(BIN)/python -m examples.demo

# Metrics of every worker summed exactly: prometheus_client's multiprocess directory, emptied at
# start and told of exited workers by cst_chassis.gunicorn_hooks (README, "Metrics and probes").
DEMO_METRICS_DIR ?= /tmp/cst-chassis-demo-metrics

demo-gunicorn: $(STAMP)
	$(BIN)/python -m examples.demo prepare
	@echo " * OpenAPI document: http://$(DEMO_HOST):$(PORT)/openapi.json"
	@echo " * API docs (Swagger UI): http://$(DEMO_HOST):$(PORT)/docs"
	@echo "metrics: http://$(DEMO_HOST):$(PORT)/metrics  liveness: /livez  readiness: /readyz"
	DEMO_UPSTREAM_URL=$${DEMO_UPSTREAM_URL:-http://$(DEMO_HOST):$(PORT)/status} \
	PROMETHEUS_MULTIPROC_DIR=$(DEMO_METRICS_DIR) $(BIN)/gunicorn -c python:cst_chassis.gunicorn_hooks \
		--workers $(DEMO_WORKERS) --threads $(DEMO_THREADS) \
		--bind $(DEMO_HOST):$(PORT) 'examples.demo.app:create_app()'

# The recommended server (README, "Deployment"): granian's WSGI interface, DEMO_WORKERS processes
# x DEMO_THREADS threads each; SIGTERM stops it gracefully (workers killed after 30 s at most).
demo-granian: $(STAMP)
	$(BIN)/python -m examples.demo prepare
	$(BIN)/granian --interface wsgi --workers $(DEMO_WORKERS) --blocking-threads $(DEMO_THREADS) \
		--host $(DEMO_HOST) --port $(PORT) --workers-kill-timeout 30 \
		--factory examples.demo.app:create_app

# Over ASGI (README, "ASGI"): uvicorn[standard], DEMO_WORKERS processes; async resources await on
# each worker's own event loop, sync ones run in its pool (CST_ASGI_THREADS threads, default 40).
# granian serves the same factory with --interface asgi (docs/guides/deployment.md, "ASGI").
demo-asgi: $(STAMP)
	$(BIN)/python -m examples.demo prepare
	@echo " * OpenAPI document: http://$(DEMO_HOST):$(PORT)/openapi.json"
	@echo " * API docs (Swagger UI): http://$(DEMO_HOST):$(PORT)/docs"
	@echo "metrics: http://$(DEMO_HOST):$(PORT)/metrics  liveness: /livez  readiness: /readyz"
	DEMO_UPSTREAM_URL=$${DEMO_UPSTREAM_URL:-http://$(DEMO_HOST):$(PORT)/status} \
	$(BIN)/uvicorn --factory --workers $(DEMO_WORKERS) --host $(DEMO_HOST) --port $(PORT) \
		--no-access-log --timeout-graceful-shutdown 30 examples.demo.asgi:create_asgi_app

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build site
