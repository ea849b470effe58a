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

.PHONY: all build test test-python demo clean

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

# Benchmark of the ops against torch.relu and the FGI form (README, "Benchmarks"); pass options
# with BENCH_ARGS, e.g. make bench BENCH_ARGS="--threads 2 --sizes 24 --dtypes float32".
BENCH_ARGS ?=
.PHONY: bench
bench: build
	$(VPY) benchmarks/bench_ops.py --json benchmarks/results/bench_ops.json $(BENCH_ARGS)

clean:
	rm -rf build python/torch_sugar/lib python/torch_sugar/_C*.so *.egg-info python/*.egg-info
