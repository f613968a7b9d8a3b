# Tunesmith: `make studio` serves the studio, `make test` runs the whole suite. Each sets itself up.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
HOST       ?= 127.0.0.1
PORT       ?= 7860
export TUNESMITH_HOME ?= $(CURDIR)/.tunesmith
MODELS_DIR := $(TUNESMITH_HOME)/models

.PHONY: studio test install install-dev browser model clean help

help:
	@echo "make studio   install (first time), prepare the bundled model, serve on http://$(HOST):$(PORT)"
	@echo "make test     install dev deps + Chromium (first time), then run the whole test suite"

$(BIN)/python:
	@echo "==> creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing Tunesmith and its dependencies into $(VENV) (first time: a few minutes)"
	$(BIN)/pip install --quiet --progress-bar off "$(TORCH_SPEC)"
	DS_BUILD_OPS=0 $(BIN)/pip install --quiet --progress-bar off -e .  # deepspeed as pure Python: no CUDA ops
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "==> installing dev dependencies"
	$(BIN)/pip install --quiet --progress-bar off -e ".[dev]"
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = "0" ]; then \
	  echo "==> installing Debian's Chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null; \
	else echo "!! /usr/bin/chromium missing and not root: run 'sudo apt-get install -y --no-install-recommends chromium' (browser tests will be skipped)"; fi

model: $(VENV)/.installed
	@$(BIN)/python -m backend.engine prepare-bundled --models-dir "$(MODELS_DIR)"

studio: install model
	$(BIN)/tunesmith serve --host $(HOST) --port $(PORT)

test: install-dev browser model
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
