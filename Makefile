# The two commands a new machine needs are `make demo` and `make test`; the rest are for developers.
SHELL := /bin/bash
NIFI ?= 0
# CLUSTER=1 adds the one-node cluster (pods, images, Helm releases); unset keeps the running stack's mode.
CLUSTER ?=
.DEFAULT_GOAL := help
STACK := devstack/stack.sh
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv up cluster kind down status logs env migrate demo test test-unit lint fmt bench bench-engines bench-cluster clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

venv: ## install the pinned Python environment (.venv) with uv
	@devstack/python.sh

up: ## install (cached) and start the whole local stack on 127.0.0.1 (NIFI=1 adds NiFi, CLUSTER=1 the cluster)
	@NIFI=$(NIFI) CLUSTER=$(CLUSTER) $(STACK) up

cluster: ## the stack with a one-node Kubernetes cluster: pods, images built here, Helm releases
	@NIFI=$(NIFI) CLUSTER=1 $(STACK) up

kind: venv ## for people with Docker: a kind cluster with the same images and Helm installs
	@devstack/kind.sh up

down: ## stop every service of the local stack
	@$(STACK) down

status: ## health of every service
	@$(STACK) status

logs: ## last lines of every log (make logs SERVICE=kafka to follow one)
	@$(STACK) logs $(SERVICE)

env: ## export lines for the running stack: eval "$$(make -s env)"
	@$(STACK) env

migrate: ## apply the migrations (lakehouse/db/migrations/) to the local platform database
	@devstack/migrate.sh

demo: up ## run the main job end to end (NIFI=1: through NiFi; CLUSTER=1: through the pods and Spark)
	@NIFI=$(NIFI) CLUSTER=$(CLUSTER) devstack/demo.sh

test: venv ## the whole test suite against the real local stack (with NiFi and the cluster)
	@# The stack's operator maintains no table here: a compaction between a test's commit and its check would
	@# change the snapshot the test reads (tests/integration/test_table_maintenance.py runs its own schedule).
	@NIFI=1 CLUSTER=1 LAKEHOUSE_MAINTENANCE_ENABLED=false $(STACK) up
	@eval "$$($(STACK) env)" && .venv/bin/pytest $(PYTEST_ARGS)

test-unit: venv ## unit tests only (no servers)
	@.venv/bin/pytest tests/unit $(PYTEST_ARGS)

bench: venv ## benchmarks, end to end on the stack (started with NiFi if down; BENCH_ARGS=--quick: minutes), bench/results/
	@.venv/bin/python bench/ingest_validation.py
	@# No compaction of the stack's tables competes with the measurement.
	@NIFI=1 CLUSTER=$(CLUSTER) LAKEHOUSE_MAINTENANCE_ENABLED=false $(STACK) up
	@eval "$$($(STACK) env)" && .venv/bin/python bench/end_to_end.py $(BENCH_ARGS)

bench-engines: venv ## ingest engines side by side on the running stack (make up NIFI=1 first)
	@eval "$$($(STACK) env)" && .venv/bin/python bench/ingest_engines.py

bench-cluster: venv ## a file through SparkApplication pods vs the fast path, on the cluster (make cluster first)
	@eval "$$($(STACK) env)" && .venv/bin/python bench/cluster_paths.py

lint: venv ## ruff
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

fmt: venv
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

clean: down ## stop the stack and delete its state (the download cache is kept)
	@rm -rf .state
