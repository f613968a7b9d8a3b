# Tunesmith: `make studio` serves the studio, `make test` runs the whole suite. Each sets itself up.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
HOST       ?= 127.0.0.1
PORT       ?= 7860
export TUNESMITH_HOME ?= $(CURDIR)/.tunesmith
MODELS_DIR := $(TUNESMITH_HOME)/models

.PHONY: studio test lint install install-dev browser model gguf clean help deepspeed-cpu-ops

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
	@$(MAKE) --no-print-directory deepspeed-cpu-ops
	@touch $@

# DeepSpeed's two CPU ops, compiled once into the installed package (g++/ninja; measured 170 CPU-seconds, so about
# 1.5-3 min on 2 cores): CPU Adam (ZeRO optimizer offload) and the shared-memory collectives of CPU processes. Without
# them every clean environment JIT-compiles both inside its first DeepSpeed run (minutes, inside a job or a test).
# --no-build-isolation: the ops build against the torch installed above. A failure only costs that JIT later.
DS_VERSION = $$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("deepspeed"))')
deepspeed-cpu-ops:
	@if $(BIN)/python -c "from deepspeed.git_version_info import installed_ops as o; raise SystemExit(not o.get('cpu_adam'))" >/dev/null 2>&1; \
	then echo "==> DeepSpeed CPU ops already built"; \
	else echo "==> building DeepSpeed's CPU Adam and shared-memory comm ops once (a few minutes, once)"; \
	  $(BIN)/pip install --quiet --progress-bar off "setuptools>=70" wheel && \
	  DS_BUILD_OPS=0 DS_BUILD_CPU_ADAM=1 DS_BUILD_SHM_COMM=1 $(BIN)/pip install --quiet --progress-bar off \
	    --no-build-isolation --no-cache-dir --no-deps --force-reinstall "deepspeed==$(DS_VERSION)" \
	  || echo "!! DeepSpeed CPU ops not prebuilt: the first ZeRO offload / CPU DeepSpeed run will JIT-compile them"; fi

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "==> installing dev dependencies"
	$(BIN)/pip install --quiet --progress-bar off -e ".[dev]"
	@touch $@

# GGUF export: llama-cpp-python (sdist only on PyPI) compiled once with the fewest targets (no
# server/tools/examples/tests/llava) for x86-64 AVX2, not -march=native: a native build on a CPU that reports AMX
# inside a VM without AMX state (this very machine) segfaults on every multi-token batch. Plus llama.cpp's own
# HF->GGUF converter unpacked from the same sdist into $(VENV)/share/llama.cpp. Measured: 6.4 min of CPU (about 3.5 min on an idle 2-core box; 18.5 min wall on a
# box shared by several jobs). Built once: order-only on .installed, so editing pyproject.toml does not rebuild it;
# `rm .venv/.installed-gguf && make gguf` does.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CPP_SDIST   := $(VENV)/cache/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
LLAMA_CPP_CMAKE   := -DLLAVA_BUILD=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
                     -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_BLAS=OFF \
                     -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_CPP_SRC     := llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp

$(VENV)/.installed-gguf: | $(VENV)/.installed
	@echo "==> building llama-cpp-python $(LLAMA_CPP_VERSION) for GGUF export (first time: ~4 minutes on 2 idle cores)"
	@mkdir -p $(VENV)/cache
	@test -f $(LLAMA_CPP_SDIST) || $(BIN)/pip download --quiet --no-deps --no-binary :all: \
	  "llama-cpp-python==$(LLAMA_CPP_VERSION)" -d $(VENV)/cache
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/pip install --quiet --progress-bar off $(LLAMA_CPP_SDIST)
	rm -rf $(VENV)/share/llama.cpp && mkdir -p $(VENV)/share/llama.cpp
	tar -xzf $(LLAMA_CPP_SDIST) -C $(VENV)/share/llama.cpp --strip-components=3 \
	  $(LLAMA_CPP_SRC)/convert_hf_to_gguf.py $(LLAMA_CPP_SRC)/conversion $(LLAMA_CPP_SRC)/gguf-py
	@touch $@

install: $(VENV)/.installed $(VENV)/.installed-gguf
install-dev: $(VENV)/.installed-dev $(VENV)/.installed-gguf
gguf: $(VENV)/.installed-gguf

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

# the lint/type gate: ruff's rules over the tree, mypy over the typed core (config in pyproject.toml)
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy backend/config backend/api

test: install-dev lint browser model
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
