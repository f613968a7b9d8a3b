# Tunesmith: `make studio` serves the studio, `make test` runs the whole suite. Each sets itself up.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
HOST       ?= 127.0.0.1
PORT       ?= 7860
export TUNESMITH_HOME ?= $(CURDIR)/.tunesmith
MODELS_DIR := $(TUNESMITH_HOME)/models

.PHONY: studio test test-prepare lint install install-dev browser model gguf clean help deepspeed-cpu-ops

help:
	@echo "make studio   install (first time), prepare the bundled model, serve on http://$(HOST):$(PORT)"
	@echo "make test     install dev deps + Chromium (first time), then run the whole test suite"

$(BIN)/python:
	@echo "==> creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Every pip run that changes the venv takes this lock: `make test` builds its prerequisites in parallel (-j), and two
# pips writing one site-packages at once would corrupt it. Building a wheel elsewhere needs no lock.
PIP := flock $(VENV)/.pip.lock $(BIN)/pip

# The base install, in one resolve: torch, then DeepSpeed compiled with its two CPU ops (below), then Tunesmith -
# with its dev extras when `make test`/`lint`/`install-dev` asked for them (EXTRAS, set per target at the end), so
# the dependency tree is not resolved a second time. The file records which extras went in.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing Tunesmith$(EXTRAS) and its dependencies into $(VENV) (first time: a few minutes)"
	$(PIP) install --quiet --progress-bar off "$(TORCH_SPEC)" "setuptools>=70" wheel ninja py-cpuinfo
	@$(MAKE) --no-print-directory deepspeed-cpu-ops
	$(PIP) install --quiet --progress-bar off -e ".$(EXTRAS)"
	@echo "$(EXTRAS)" > $@

# DeepSpeed with its two CPU ops compiled into the installed package (g++/ninja; measured 170 CPU-seconds, so about
# 1.5-3 min on 2 cores): CPU Adam (ZeRO optimizer offload) and the shared-memory collectives of CPU processes. Without
# them every clean environment JIT-compiles both inside its first DeepSpeed run (minutes, inside a job or a test).
# --no-build-isolation: the ops build against the torch installed above; --no-cache-dir: never a cached wheel built
# without the ops; DS_ENABLE_NINJA: each op's sources compile in parallel (DeepSpeed's default: one file at a time).
# Installed before Tunesmith, so that Tunesmith's resolve finds DeepSpeed there and it is built only this once.
# A failed op build falls back to DeepSpeed as pure Python (DS_BUILD_OPS=0) and says so: that only costs the JIT later.
DS_SPEC ?= deepspeed>=0.16
deepspeed-cpu-ops:
	@if $(BIN)/python -c "from deepspeed.git_version_info import installed_ops as o; raise SystemExit(not o.get('cpu_adam'))" >/dev/null 2>&1; \
	then echo "==> DeepSpeed CPU ops already built"; \
	else echo "==> building DeepSpeed with its CPU Adam and shared-memory comm ops (a few minutes, once)"; \
	  DS_SPEC="$$($(BIN)/python -c 'import importlib.metadata as m; print("deepspeed==" + m.version("deepspeed"))' 2>/dev/null || echo '$(DS_SPEC)')"; \
	  PATH="$(abspath $(BIN)):$$PATH" DS_ENABLE_NINJA=1 DS_BUILD_OPS=0 DS_BUILD_CPU_ADAM=1 DS_BUILD_SHM_COMM=1 \
	    $(PIP) install --quiet --progress-bar off --no-build-isolation --no-cache-dir --force-reinstall --no-deps "$$DS_SPEC" \
	  && $(PIP) install --quiet --progress-bar off "$$DS_SPEC" \
	  || { echo "!! DeepSpeed CPU ops not prebuilt: the first ZeRO offload / CPU DeepSpeed run will JIT-compile them"; \
	       DS_BUILD_OPS=0 $(PIP) install --quiet --progress-bar off "$$DS_SPEC"; }; fi

$(VENV)/.installed-dev: $(VENV)/.installed
	@grep -q dev $(VENV)/.installed || { echo "==> installing dev dependencies"; \
	  $(PIP) install --quiet --progress-bar off -e ".[dev]"; }
	@touch $@

# GGUF export: llama-cpp-python (sdist only on PyPI) compiled once with the fewest targets (no
# server/tools/examples/tests/llava) for x86-64 AVX2, not -march=native: a native build on a CPU that reports AMX
# inside a VM without AMX state (this very machine) segfaults on every multi-token batch. Its CMakeLists forces
# llama.cpp's `common` library ON, which the Python package never loads (it binds libllama/libggml only) and which is
# ~40% of the compile (52 of 127 objects plus cpp-httplib): the unpacked sdist is patched to skip it. Plus llama.cpp's
# own HF->GGUF converter from the same sdist into $(VENV)/share/llama.cpp.
# The wheel is built outside the venv (pip wheel, its own build env), so `make -j` compiles it while the base install
# runs; only installing it waits for .installed. Measured: 6.4 CPU-min with `common` (about 3.5 min on an idle
# 2-core box). Built once: `rm .venv/.installed-gguf .venv/cache/llama-wheel.done && make gguf` rebuilds it.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CPP_SDIST   := $(VENV)/cache/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
LLAMA_CPP_SRCDIR  := $(VENV)/cache/llama_cpp_python-$(LLAMA_CPP_VERSION)
LLAMA_CPP_WHEELS  := $(VENV)/cache/wheels
LLAMA_CPP_CMAKE   := -DLLAVA_BUILD=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
                     -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_BLAS=OFF \
                     -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_CPP_SRC     := llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp
LLAMA_COMMON_ON   := set(LLAMA_BUILD_COMMON ON CACHE BOOL

$(VENV)/cache/llama-wheel.done: | $(BIN)/python
	@echo "==> building llama-cpp-python $(LLAMA_CPP_VERSION) for GGUF export (first time: ~2 minutes on 2 idle cores)"
	@mkdir -p $(VENV)/cache
	@test -f $(LLAMA_CPP_SDIST) || $(BIN)/pip download --quiet --no-deps --no-binary :all: \
	  "llama-cpp-python==$(LLAMA_CPP_VERSION)" -d $(VENV)/cache
	rm -rf $(LLAMA_CPP_SRCDIR) $(LLAMA_CPP_WHEELS) && mkdir -p $(LLAMA_CPP_WHEELS)
	tar -xzf $(LLAMA_CPP_SDIST) -C $(VENV)/cache
	@grep -qF '$(LLAMA_COMMON_ON)' $(LLAMA_CPP_SRCDIR)/CMakeLists.txt \
	  && sed -i 's/$(LLAMA_COMMON_ON)/set(LLAMA_BUILD_COMMON OFF CACHE BOOL/' $(LLAMA_CPP_SRCDIR)/CMakeLists.txt \
	  || echo "!! llama-cpp-python's CMakeLists no longer forces LLAMA_BUILD_COMMON: building it as shipped"
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/pip wheel --quiet --progress-bar off --no-deps -w $(LLAMA_CPP_WHEELS) $(LLAMA_CPP_SRCDIR)
	@touch $@

# a venv that has it (built by an older Makefile without the wheel step too) keeps it: no rebuild for a missing wheel
LLAMA_CPP_WHEEL_DONE := $(if $(wildcard $(VENV)/.installed-gguf),,$(VENV)/cache/llama-wheel.done)
$(VENV)/.installed-gguf: $(LLAMA_CPP_WHEEL_DONE) | $(VENV)/.installed
	$(PIP) install --quiet --progress-bar off $(LLAMA_CPP_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	rm -rf $(VENV)/share/llama.cpp && mkdir -p $(VENV)/share/llama.cpp
	tar -xzf $(LLAMA_CPP_SDIST) -C $(VENV)/share/llama.cpp --strip-components=3 \
	  $(LLAMA_CPP_SRC)/convert_hf_to_gguf.py $(LLAMA_CPP_SRC)/conversion $(LLAMA_CPP_SRC)/gguf-py
	rm -rf $(LLAMA_CPP_SRCDIR)
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
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy backend/config backend/api

# Dev extras go into the base install's one resolve when one of these goals builds it (see .installed).
test test-prepare lint install-dev: EXTRAS = [dev]

# Everything before pytest runs as parallel make jobs: the llama-cpp-python compile overlaps the pip installs, the
# DeepSpeed op build, the model conversion and the lint gate (pip runs into the venv take turns, see PIP).
test-prepare: install-dev lint browser model

# `make test PYTEST_JOBS=2`: the suite on two pytest-xdist workers, one test module (or group of modules sharing a
# trained fixture) per unit of work, heavy units first (tests/conftest.py). Opt-in until a whole run on an idle 2-core
# box has shown it green and faster; by default the suite runs in one process.
test:
	@$(MAKE) --no-print-directory -j$(PREPARE_JOBS) test-prepare
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) $(PYTEST_ARGS)
PREPARE_JOBS ?= 3
PYTEST_JOBS  ?= 0
PYTEST_XDIST  = $(if $(filter-out 0,$(PYTEST_JOBS)),-n $(PYTEST_JOBS) --dist loadfile --no-loadscope-reorder)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
