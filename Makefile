# minik — developer entry points.
#
#   make venv     .venv with `pip install -e '.[dev]'` (redone when pyproject.toml changes)
#   make docker   make sure a Docker engine is running (scripts/ensure-docker.sh)
#   make tools    test tools from Debian (promtool, curl, wrk)
#   make images   build the local images that are missing (scripts/build-images.sh)
#   make test     ruff + import contracts (lint-imports) + mypy + pytest (PYTEST_ARGS='-k foo -x' passes through)
#   make demo     start the demo's own minik (~/.minik-demo), apply examples/, show them working
#   make lint     ruff + bash -n on scripts
#   make bench    run bench/*.py (bench/api.py first)
#   make clean    remove .venv
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv docker tools images test demo lint bench clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "[venv] creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "[venv] pip install -e '.[dev]'"
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

docker:
	@scripts/ensure-docker.sh

images: docker
	@scripts/build-images.sh

tools:
	@scripts/ensure-tools.sh

test: venv docker tools images
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: venv docker images
	@scripts/demo.sh

lint: venv
	$(VENV)/bin/ruff check .
	@for f in scripts/*.sh .ci/run; do bash -n "$$f" || exit 1; done

bench: venv docker images
	$(PY) bench/api.py
	@for f in bench/*.py; do \
		case "$$f" in bench/api.py|bench/_*|bench/conftest.py) continue ;; esac; \
		echo "$(PY) $$f"; $(PY) "$$f"; \
	done

clean:
	rm -rf $(VENV)
