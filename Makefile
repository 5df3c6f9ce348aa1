# wagate - two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
# LocalStack without Docker (host mode) runs on Python 3.13 with these pins (infra/local/localstack.py).
LOCALSTACK_VENV := .venv-localstack
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
LOCALSTACK_PINS := 'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl<26' 'cryptography<47' 'service_identity<26'
CHROMIUM ?= /usr/bin/chromium
WAJS := infra/wa-js/node_modules/@wppconnect/wa-js/dist/wppconnect-wa.js
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: install run test test-unit test-integration test-e2e test-localstack lint bench clean

install: $(VENV)/.installed $(CHROMIUM) $(WAJS)

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The versions the tests and the browser host image run with (python -m infra.lock writes the lock).
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	# The SAM CLI pins its own dependencies: it gets a virtual environment of its own.
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli>=1.140,<2'
	touch $@

$(LOCALSTACK_VENV)/.installed:
	@test -n "$(PYTHON313)" || { echo "LocalStack needs Python 3.13: install it (pyenv install 3.13) or set PYTHON313"; exit 1; }
	$(PYTHON313) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCALSTACK_VENV)/bin/pip install --quiet $(LOCALSTACK_PINS)
	touch $@

$(CHROMIUM):
	# Playwright cannot download its browsers here: Debian's Chromium, driven with executable_path.
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

$(WAJS): infra/wa-js/package.json infra/wa-js/package-lock.json
	cd infra/wa-js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install ## the gateway on this machine: emulator, API on :3000, simulator, browser host
	$(BIN)/python -m infra.local

test: install $(SAM_VENV)/.installed $(LOCALSTACK_VENV)/.installed ## every test: unit, integration, end-to-end
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not integration and not e2e"

test-integration: install
	$(BIN)/python -m pytest -q -m integration

test-e2e: install
	$(BIN)/python -m pytest -q -m e2e

test-localstack: install $(LOCALSTACK_VENV)/.installed ## integration tests against LocalStack (SQS, S3, KMS, SNS; DynamoDB on moto)
	$(BIN)/python -m infra.local.localstack

lint: $(VENV)/.installed $(SAM_VENV)/.installed
	$(BIN)/ruff check core functions browser_host infra tests bench
	$(BIN)/mypy core functions browser_host
	$(SAM_VENV)/bin/sam validate --lint

bench: install ## benchmarks: prints numbers and writes docs/benchmarks.md
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LOCALSTACK_VENV) infra/wa-js/node_modules .pytest_cache .mypy_cache .ruff_cache

# --- sam build (BuildMethod: makefile): `sam build --build-in-source` runs `make build-<LogicalId>` -------------
# Every function ships the same code (core/, functions/) and the same dependencies: pyproject's, at the versions
# the tests run with (requirements.lock), as wheels for Lambda's python3.12/x86_64 whatever Python runs the build.
# They are installed once into $(LAMBDA_DEPS_CACHE)/<hash of pyproject.toml, requirements.lock and the pip flags>
# (built aside, then renamed: parallel builds never see half of it) and hard-linked into each artifact directory
# (copied across file systems or where cp has no -l): world-readable, as Lambda needs, and read-only, so that no
# artifact edits the cache in place.
# LAMBDA_DEPS_CACHE: where (default ~/.cache/wagate/lambda-deps); any of its folders may be deleted at any time.
LAMBDA_PIP := --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 --only-binary=:all:
LAMBDA_DEPS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wagate/lambda-deps
build-%Function:
	@set -e; \
	key="$$($(PYTHON) -c "import hashlib; print(hashlib.sha256(b'$(LAMBDA_PIP)' + open('pyproject.toml', 'rb').read() + open('requirements.lock', 'rb').read()).hexdigest()[:16])")"; \
	deps="$(LAMBDA_DEPS_CACHE)/$$key"; \
	if [ ! -d "$$deps" ]; then \
	  echo "installing the Lambda dependencies into $$deps"; \
	  mkdir -p "$(LAMBDA_DEPS_CACHE)"; tmp="$$(mktemp -d "$$deps.tmp.XXXXXX")"; trap 'rm -rf "$$tmp" "$$tmp.txt"' EXIT; \
	  $(PYTHON) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > "$$tmp.txt"; \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile $(LAMBDA_PIP) -c requirements.lock --target "$$tmp" -r "$$tmp.txt"; \
	  rm -rf "$$tmp/bin" "$$tmp/share"; chmod -R a+rX "$$tmp"; find "$$tmp" -type f -exec chmod a-w {} +; \
	  $(PYTHON) -c "import os, sys; os.rename(sys.argv[1], sys.argv[2])" "$$tmp" "$$deps" 2>/dev/null || true; \
	fi; \
	cp -al "$$deps/." "$(ARTIFACTS_DIR)/" 2>/dev/null || cp -R "$$deps/." "$(ARTIFACTS_DIR)/"
	cp -R core functions "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)/core" "$(ARTIFACTS_DIR)/functions" -name __pycache__ -prune -exec rm -rf {} +
