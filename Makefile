# Bitfolio: one venv for the workspace; each package pins its own versions in its pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PACKAGES := contracts $(patsubst %/pyproject.toml,%,$(wildcard services/*/pyproject.toml)) $(patsubst %/pyproject.toml,%,$(wildcard web/pyproject.toml))
STAMP := $(VENV)/.installed
PYTEST := $(PY) -m pytest

.PHONY: install system-deps services-up run test test-quick test-unit test-integration test-e2e test-web test-faults bench lint asyncapi clean

install: $(STAMP)

$(STAMP): requirements-dev.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

# Debian's Chromium for the browser tests; never a browser downloaded by a test tool.
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get install -y -q chromium chromium-driver >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null); \
		else echo "Install Debian's chromium and chromium-driver for the browser tests (apt-get install chromium chromium-driver)"; fi; \
	fi

services-up:
	@$(PY) -m scripts.services_up

run: install
	$(PY) -m scripts.run_all

test: install system-deps services-up
	$(PYTEST) tests -m "not faults"
	if [ -d tests/faults ]; then $(PYTEST) tests/faults -m faults; fi

test-quick: install
	$(PYTEST) tests -m unit -q

test-unit test-integration test-e2e test-web test-faults: test-%: install services-up
	$(PYTEST) tests -m $*

bench: install services-up
	$(PY) -m bench.run_all

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services/*/src/*/domain contracts/src/contracts

asyncapi: install
	$(PY) -m scripts.asyncapi docs/asyncapi.json

clean:
	rm -rf $(VENV)
