# torch-sugar: the two commands of the README are `make demo` and `make test`.
# Both create and use the virtual environment .venv in the repository root, install what they
# need, build the extension (incrementally), then act.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-stamp
EDITABLE_STAMP := $(VENV)/.editable-stamp
OPS_LIB := python/torch_sugar/lib/libtorch_sugar.so
CSRC := $(shell find csrc -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \))

.PHONY: all build test test-python demo clean build-cuda

all: build

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): requirements-dev.txt | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $@

# The editable install only links the package (python/) into .venv and installs the
# `torch-sugar` command; the extension is built below by build_ext --inplace, which ninja keeps
# incremental.
$(EDITABLE_STAMP): $(DEPS_STAMP) pyproject.toml setup.py
	SUGAR_SKIP_EXTENSIONS=1 $(VPY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

$(OPS_LIB): $(EDITABLE_STAMP) $(CSRC) setup.py
	SUGAR_CUDA=0 $(VPY) setup.py -q build_ext --inplace
	touch $@

build: $(OPS_LIB)

test-python: build
	$(VPY) -m pytest -q tests

test: test-python

demo: build
	$(VENV)/bin/torch-sugar compare

clean:
	rm -rf build python/torch_sugar/lib python/torch_sugar/_C*.so *.egg-info python/*.egg-info
	rm -rf build-cuda

# ---- CUDA build (README, "Building with CUDA") ----
# `make build-cuda` builds the CUDA variant against the CUDA 13 build of torch in its own
# .venv-cuda, into build-cuda/ (setup.py build, not --inplace, so the CPU build in .venv and
# python/torch_sugar/lib is left alone), then checks without a GPU that every op registered CUDA
# kernels. ninja keeps the compile incremental. TORCH_CUDA_ARCH_LIST overrides the architectures.
VENV_CUDA := .venv-cuda
VPY_CUDA := $(VENV_CUDA)/bin/python
CUDA_DEPS_STAMP := $(VENV_CUDA)/.deps-stamp
CUDA_BUILD := build-cuda

$(VPY_CUDA):
	$(PYTHON) -m venv $(VENV_CUDA)

$(CUDA_DEPS_STAMP): requirements-cuda.txt | $(VPY_CUDA)
	$(VPY_CUDA) -m pip install -q --upgrade pip
	$(VPY_CUDA) -m pip install -q -r requirements-cuda.txt
	touch $@

# .venv-cuda/bin first on PATH: torch's build runs `ninja` (pip's, there) by name.
build-cuda: $(CUDA_DEPS_STAMP)
	PATH="$(CURDIR)/$(VENV_CUDA)/bin:$$PATH" SUGAR_CUDA=1 $(VPY_CUDA) setup.py -q build --build-base $(CUDA_BUILD) \
		--build-lib $(CUDA_BUILD)/lib --build-temp $(CUDA_BUILD)/temp
	$(VPY_CUDA) scripts/check_cuda_build.py $(CUDA_BUILD)/lib
