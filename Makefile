# tunepipe developer commands. `make help` lists them.
# Each target sets up what it needs: a fresh machine with Python 3.11 and make is enough.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VERSION := $(shell $(PYTHON) -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
# Where no registry is reachable: BASE_IMAGE=localbase/python:3.11 (see docker/Dockerfile).
BASE_IMAGE ?= python:3.11-slim
IMAGE      ?= tunepipe:$(VERSION)
GPU_IMAGE  ?= tunepipe-gpu:$(VERSION)
SERVE_IMAGE ?= tunepipe-serve:$(VERSION)
# The lock tool, pinned so that `make lock` resolves the same way on every machine.
UV_VERSION := 0.13.9
LOCK_VENV  := .venv-lock

.DEFAULT_GOAL := help

# Prints an image's content ID (the sha256 of its config) and its RepoDigests (registry manifest digests,
# what `--image REPO@sha256:...` pins) once it has been pushed or pulled; a local build has none.
define print_digest
echo "image $(1): id $$(docker inspect --format '{{.Id}}' $(1)); repo digests: $$(docker inspect --format '{{join .RepoDigests " "}}' $(1) | sed 's/^$$/none (not pushed to a registry)/')"
endef
.PHONY: help setup run test lint typecheck unit component local drills containers k8s kube cluster-up cluster-down gcs s3 browser serving golden-test golden compile bench bench-quick lock image image-gpu image-serve clean

help: ## List the targets with what they do
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "tunepipe needs Python 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev,serve]"
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install tunepipe with its dev tools
	@echo "tunepipe installed in $(VENV); activate with: . $(VENV)/bin/activate"

run: setup ## Run the whole pipeline locally (kfp.local) on the shipped penguins dataset
	$(BIN)/tunepipe run

test: lint typecheck ## Lint, type-check and run every test tier
	$(BIN)/python -m pytest

lint: setup ## ruff over the whole repository
	$(BIN)/ruff check .

typecheck: setup ## mypy over the core library (src/)
	$(BIN)/mypy

unit: setup ## Unit tier only: pure core logic, seconds
	$(BIN)/python -m pytest -m unit

component: setup ## Component tier only: each component's function on temp dirs
	$(BIN)/python -m pytest -m component

local: setup ## Local tier only: the whole pipeline through kfp.local (a few minutes)
	$(BIN)/python -m pytest -m local

drills: setup ## Reliability drills: SIGKILL mid-step and re-run, disk full (tmpfs, needs root), concurrent runs (6-12 min)
	$(BIN)/python -m pytest -m drills

browser: setup ## Browser tier only: HTML reports in headless Chromium (needs Debian's chromium)
	$(BIN)/python -m pytest -m browser

containers: setup ## Containers tier only: build the image, run the pipeline in it (needs Docker)
	$(BIN)/python -m pytest -m containers

k8s: setup ## k8s tier only: render and validate k8s/ overlays offline (needs kubectl)
	$(BIN)/python -m pytest -m k8s

kube: setup ## kube tier only: a real API server named by TUNEPIPE_KUBECONFIG (make cluster-up prints it)
	$(BIN)/python -m pytest -m kube

cluster-up: ## Start a local Kubernetes on 127.0.0.1 (etcd, API server, controllers, scheduler, a kwok node); first run builds it (~15-30 min), cached by version
	bash k8s/cluster/cluster.sh up

cluster-down: ## Stop everything cluster-up started and delete its etcd data
	bash k8s/cluster/cluster.sh down

gcs: setup ## gcs tier only: the store-contract suite (tests/stores) and GCS's own faults against a local GCS emulator the tests start
	$(BIN)/python -m pytest -m gcs

s3: setup ## s3 tier only: the store-contract suite (tests/stores) and S3's own faults against moto's S3 server the tests start
	$(BIN)/python -m pytest -m s3

serving: setup ## Serving tier only: tunepipe serve over HTTP on loopback against published models
	$(BIN)/python -m pytest -m serving

golden-test: setup ## Golden tier only: compiled YAML against tests/golden/pipeline.yaml
	$(BIN)/python -m pytest -m golden

golden: setup ## Rewrite tests/golden/pipeline.yaml after an intended pipeline change
	$(BIN)/python tests/golden/regenerate.py

bench: setup ## Every benchmark, one section at a time (each stamped: start, end, load), medians of repeated runs, into docs/benchmarks.md
	$(BIN)/python bench/run_all.py

bench-quick: setup ## The benchmarks on smaller data, one run each, written to docs/benchmarks.md
	$(BIN)/python bench/run_all.py --quick

compile: setup ## Compile the pipeline to pipeline.yaml
	$(BIN)/tunepipe compile -o pipeline.yaml

$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(LOCK_VENV)/bin/uv ## Re-resolve docker/requirements-{cpu,gpu,serve}.lock (pinned, hashed) from pyproject.toml
	$(PYTHON) tools/lock.py --uv $(LOCK_VENV)/bin/uv

image: ## Build the CPU image tunepipe:<version> from docker/ and the CPU lock; prints its digest
	docker build -f docker/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg TENSORFLOW_EXTRA=cpu -t $(IMAGE) .
	@$(call print_digest,$(IMAGE))

image-gpu: ## Build the GPU image tunepipe-gpu:<version> from the GPU lock (tensorflow[and-cuda], several GB)
	docker build -f docker/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg TENSORFLOW_EXTRA=gpu -t $(GPU_IMAGE) .
	@$(call print_digest,$(GPU_IMAGE))

image-serve: image ## Build the model server image tunepipe-serve:<version>: the CPU image plus the serve extra
	docker build -f docker/serve.Dockerfile --build-arg PIPELINE_IMAGE=$(IMAGE) --build-arg VERSION=$(VERSION) \
		-t $(SERVE_IMAGE) .

clean: ## Remove run outputs and caches (keeps .venv; stops the local cluster, whose state is under runs/)
	bash k8s/cluster/cluster.sh down
	rm -rf runs pipeline.yaml .pytest_cache .mypy_cache .ruff_cache
