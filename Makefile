# casewatch: every user-facing command. `make demo` and `make test` work on a fresh machine
# (Python >= 3.11, Node and npm): they install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
CDK := node_modules/.bin/cdk
# The AWS SAM CLI lives in its own tool environment: it pins an older boto3 than uv.lock. It supplies the
# Lambda Runtime Interface Emulator (`casewatch invoke --runtime-emulator`), `sam validate --lint` and,
# with Docker, `sam local invoke`.
SAM_CLI_VERSION := 1.170.0
SAM_ENV := .tools/sam
SAM_STAMP := $(SAM_ENV)/.installed-$(SAM_CLI_VERSION)

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install tools demo test lint format unit integration infra e2e synth bench deploy destroy clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed node_modules/.installed $(SAM_STAMP) ## create .venv, install locked deps, the CDK CLI and the SAM CLI (idempotent)

$(VENV)/.installed: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --quiet --python $(BIN)/python
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

tools: $(SAM_STAMP) ## the AWS SAM CLI in its own environment, .tools/sam (idempotent; part of install)

$(SAM_STAMP): | $(VENV)/.installed
	@rm -f $(SAM_ENV)/.installed-*
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(SAM_ENV)
	$(BIN)/uv pip install --quiet --python $(SAM_ENV)/bin/python aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

demo: install ## replay the sample archive through the local pipeline (offline) and print the report
	$(BIN)/casewatch replay events/archive/

test: install ## lint and every test suite (reliability at its test size), two at a time on two cores
	$(MAKE) --no-print-directory -j2 --output-sync=target test-reliability-compare test-unit-integration-infra-e2e lint

# `make test`'s two halves, about the same length (`--durations`): the reliability suite (which also uses a
# second process) with the replay comparisons (three replays of the sample archive), and every other suite.
COMPARE := tests/e2e/test_replay_compare.py
.PHONY: test-reliability-compare test-unit-integration-infra-e2e
test-reliability-compare:
	$(BIN)/pytest -q -m "reliability or e2e" tests/reliability $(COMPARE)
test-unit-integration-infra-e2e:
	$(BIN)/pytest -q -m "unit or integration or infra or e2e" tests/unit tests/integration tests/infra tests/e2e \
		--ignore=$(COMPARE)

lint: install ## ruff (lint + format check), mypy --strict, and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: install ## the unit suite: no network, fakes of the ports
	$(BIN)/pytest -q -m unit tests/unit

integration: install ## the integration suite: moto, tables from casewatch.tables, the Cases emulator
	$(BIN)/pytest -q -m integration tests/integration

infra: install ## the infra suite: the synthesized stack (CDK assertions, cdk-nag, cfn-lint, SAM)
	$(BIN)/pytest -q -m infra tests/infra

e2e: install ## the e2e suite: events through the whole local pipeline and the casewatch CLI
	$(BIN)/pytest -q -m e2e tests/e2e

# Deployment settings come from cdk.json (context key `casewatch`); override one for a run with
# DOMAIN_ID=<id>, or any with CONTEXT='-c casewatch.alarm_email=ops@example.com'.
DOMAIN_ID ?=
CONTEXT ?=
CDK_CONTEXT := $(if $(DOMAIN_ID),-c casewatch.domain_id=$(DOMAIN_ID)) $(CONTEXT)

synth: install ## synthesize the stack into cdk.out (offline; DOMAIN_ID=... overrides cdk.json)
	$(CDK) synth --quiet $(CDK_CONTEXT)

deploy: install ## cdk bootstrap (idempotent) + deploy Casewatch to your AWS account (DOMAIN_ID=...)
	$(CDK) bootstrap $(CDK_CONTEXT)
	$(CDK) deploy Casewatch $(CDK_CONTEXT) --outputs-file cdk.out/outputs.json

destroy: install ## delete the Casewatch stack (tables, logs and key are retained unless removal_policy=destroy)
	$(CDK) destroy Casewatch $(CDK_CONTEXT)

.PHONY: reliability
reliability: install ## the reliability suite at full size: 10,000 fault-injected events (memory), the moto run, one container through 50,000 events
	CASEWATCH_RELIABILITY_EVENTS=$${CASEWATCH_RELIABILITY_EVENTS:-10000} \
	CASEWATCH_RELIABILITY_CONTAINER_EVENTS=$${CASEWATCH_RELIABILITY_CONTAINER_EVENTS:-50000} \
	$(BIN)/pytest -q -m reliability tests/reliability

bench: install ## benchmarks and capacity under the GetCase quota: writes bench-results.json, prints the tables
	$(BIN)/python -m casewatch_dev.bench

clean: ## remove the virtualenv, node_modules, the tool environments and build outputs
	rm -rf $(VENV) node_modules cdk.out .build .tools .mypy_cache .ruff_cache .hypothesis
