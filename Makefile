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

.PHONY: all build test test-python demo clean build-cuda lint format

all: build

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): requirements-dev.txt | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $@

# The editable install only links the package (python/) into .venv and installs the
# `torch-sugar` command; the extension is built below by setup.py, which drives CMake
# (CMakeLists.txt, the one build description) in build-cmake/ and installs the op library, _C,
# the headers and the CMake package into python/torch_sugar. ctest (test-cpp) uses the same
# build-cmake/, so `make test` compiles the library once; ninja keeps it incremental.
CMAKE_BUILD := build-cmake
$(EDITABLE_STAMP): $(DEPS_STAMP) pyproject.toml setup.py
	SUGAR_SKIP_EXTENSIONS=1 $(VPY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

$(OPS_LIB): $(EDITABLE_STAMP) $(CSRC) setup.py CMakeLists.txt $(wildcard cmake/*) | build-deps
	SUGAR_CUDA=0 SUGAR_CMAKE_BUILD_DIR=$(CMAKE_BUILD) CMAKE=$(CMAKE) $(VPY) setup.py -q build_ext --inplace
	touch $@

build: $(OPS_LIB)

test-python: build
	$(VPY) -m pytest -q tests

test: test-python

demo: build
	$(VENV)/bin/torch-sugar compare

# Benchmarks (README, "Benchmarks"): the ops against torch.relu and the FGI form, then whole
# models eager and compiled plus the per-call table. Pass options with BENCH_ARGS (bench_ops.py)
# and BENCH_MODELS_ARGS (bench_models.py), e.g. make bench BENCH_ARGS="--threads 2 --sizes 24".
BENCH_ARGS ?=
BENCH_MODELS_ARGS ?=
.PHONY: bench
bench: build
	$(VPY) benchmarks/bench_ops.py --json benchmarks/results/bench_ops.json $(BENCH_ARGS)
	$(VPY) benchmarks/bench_models.py --json benchmarks/results/bench_models.json $(BENCH_MODELS_ARGS)

# Formatting (ruff for Python, clang-format for C++/CUDA; versions pinned in requirements-dev.txt,
# configured in pyproject.toml and .clang-format). `make lint` checks (CI runs it), `make format`
# applies.
CXX_SOURCES = $(shell git ls-files 'csrc/*.cpp' 'csrc/*.h' 'csrc/*.cu' 'csrc/*.cuh' 'tests/cpp/*.cpp' \
	'tests/cpp/*.h' 'tests/consumer/*.cpp' 'examples/cpp/*.cpp')

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror $(CXX_SOURCES)

format: $(DEPS_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

clean:
	rm -rf build python/torch_sugar/lib python/torch_sugar/_C*.so *.egg-info python/*.egg-info
	rm -rf $(CMAKE_BUILD) python/torch_sugar/include
	rm -rf build-cuda build-oldest

# ---- C++ (issue 4) ---------------------------------------------------------------------------
# test-cpp: the CMake build of `make build` (build-cmake/) with the tests turned on, then ctest:
# the Catch2 tests, the C++ examples, and tests/consumer (a separate CMake project) built against
# `cmake --install` of that build and against the pip package. Needs Catch2 (installed here with
# apt-get when missing). The library itself is not compiled again; the consumer project is built
# from scratch in a temporary directory each time, as a user would.
CMAKE ?= cmake
CTEST ?= ctest
# e.g. make test-cpp CTEST_ARGS="-E consumer" skips the two consumer builds
CTEST_ARGS ?=

.PHONY: test-cpp cpp-deps build-deps

test: test-cpp

# The Debian packages the builds need, installed with apt-get when missing: CMake for every build
# (build-deps), Catch2 too for the C++ tests (cpp-deps).
define apt_deps
	@missing=; command -v $(CMAKE) >/dev/null || missing=cmake; \
	if [ "$(1)" = catch2 ] && [ ! -f /usr/lib/cmake/Catch2/Catch2Config.cmake ] && [ ! -f /usr/local/lib/cmake/Catch2/Catch2Config.cmake ] \
	    && [ ! -f /usr/lib/x86_64-linux-gnu/cmake/Catch2/Catch2Config.cmake ]; then missing="$$missing catch2"; fi; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	  echo "$(2) needs the Debian packages:$$missing (Catch2 v2 or v3, CMake >= 3.18); install them as root" \
	       "(apt-get install$$missing) and run make again." >&2; exit 1; fi; \
	echo "Installing$$missing (apt-get install)"; \
	$$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; } \
	  || { echo "apt-get install$$missing failed; install them (Catch2 v2 or v3, CMake >= 3.18) yourself" >&2; exit 1; }
endef

build-deps:
	$(call apt_deps,,the build)

cpp-deps:
	$(call apt_deps,catch2,test-cpp)

test-cpp: build cpp-deps
	$(CMAKE) -S . -B $(CMAKE_BUILD) -DSUGAR_BUILD_TESTS=ON -DSUGAR_PYTHON="$(abspath $(VPY))" >/dev/null
	$(CMAKE) --build $(CMAKE_BUILD) --parallel
	$(CTEST) --test-dir $(CMAKE_BUILD) --output-on-failure --parallel 2 $(CTEST_ARGS)


# ---- CUDA build (README, "Building with CUDA") ----
# `make build-cuda` builds the CUDA variant against the CUDA 13 build of torch (requirements-cuda.txt:
# the newest release, from PyPI, about 3 GB with its nvidia-* packages) in its own
# .venv-cuda, into build-cuda/ (setup.py build, not --inplace, so the CPU build in .venv and
# python/torch_sugar/lib is left alone), then checks without a GPU that every op registered CUDA
# kernels. setup.py drives CMake as for the CPU build (its build folder: build-cuda/temp/cmake);
# ninja keeps the compile incremental. TORCH_CUDA_ARCH_LIST overrides the architectures.
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
build-cuda: $(CUDA_DEPS_STAMP) | build-deps
	CMAKE=$(CMAKE) PATH="$(CURDIR)/$(VENV_CUDA)/bin:$$PATH" SUGAR_CUDA=1 $(VPY_CUDA) setup.py -q build --build-base $(CUDA_BUILD) \
		--build-lib $(CUDA_BUILD)/lib --build-temp $(CUDA_BUILD)/temp
	$(VPY_CUDA) scripts/check_cuda_build.py $(CUDA_BUILD)/lib


# ---- Other torch versions (README, "Supported torch versions") ----
# `make test` runs the suite with .venv's torch (requirements-dev.txt). Two more targets run the
# same suite, pytest and then ctest, with the ends of the supported range (pyproject.toml):
#   test-newest  the newest release: .venv-cuda's torch and the CUDA build of `make build-cuda`,
#                on the CPU (the CUDA tests skip without a GPU)
#   test-oldest  the oldest supported release (requirements-oldest.txt, from PyPI): .venv-oldest,
#                a CPU-only build into build-oldest/
# Each tests the package its own build made (build-*/lib on PYTHONPATH; tests/test_build.py uses
# that build's CMake folder, SUGAR_TEST_CMAKE_BUILD), and turns the C++ tests on in that CMake
# folder (the library is not compiled again). Both venvs get requirements-dev.txt less its torch pin.
VENV_OLDEST := .venv-oldest
VPY_OLDEST := $(VENV_OLDEST)/bin/python
OLDEST_DEPS_STAMP := $(VENV_OLDEST)/.deps-stamp
OLDEST_BUILD := build-oldest

.PHONY: test-newest test-oldest build-oldest

# $(call install_with_tests,VENV,REQUIREMENTS): REQUIREMENTS (its torch) and the test requirements.
define install_with_tests
	grep -v '^torch==' requirements-dev.txt > $(1)/requirements-test.txt
	$(1)/bin/python -m pip install -q -r $(2) -r $(1)/requirements-test.txt
endef

# $(call test_build,VENV,BUILD): pytest on BUILD/lib's package, then ctest in BUILD/temp/cmake.
define test_build
	PATH="$(CURDIR)/$(1)/bin:$$PATH" SUGAR_TEST_CMAKE_BUILD="$(CURDIR)/$(2)/temp/cmake" \
		PYTHONPATH="$(CURDIR)/$(2)/lib" $(1)/bin/python -m pytest -q tests
	$(CMAKE) -S . -B $(2)/temp/cmake -DSUGAR_BUILD_TESTS=ON -DSUGAR_PYTHON="$(CURDIR)/$(1)/bin/python" >/dev/null
	$(CMAKE) --build $(2)/temp/cmake --parallel
	PYTHONPATH="$(CURDIR)/$(2)/lib" $(CTEST) --test-dir $(2)/temp/cmake --output-on-failure --parallel 2 $(CTEST_ARGS)
endef

$(VENV_CUDA)/.test-deps-stamp: $(CUDA_DEPS_STAMP) requirements-dev.txt
	$(call install_with_tests,$(VENV_CUDA),requirements-cuda.txt)
	touch $@

test-newest: build-cuda $(VENV_CUDA)/.test-deps-stamp cpp-deps
	$(call test_build,$(VENV_CUDA),$(CUDA_BUILD))

$(VPY_OLDEST):
	$(PYTHON) -m venv $(VENV_OLDEST)

$(OLDEST_DEPS_STAMP): requirements-oldest.txt requirements-dev.txt | $(VPY_OLDEST)
	$(VPY_OLDEST) -m pip install -q --upgrade pip
	$(call install_with_tests,$(VENV_OLDEST),requirements-oldest.txt)
	touch $@

build-oldest: $(OLDEST_DEPS_STAMP) | build-deps
	CMAKE=$(CMAKE) PATH="$(CURDIR)/$(VENV_OLDEST)/bin:$$PATH" SUGAR_CUDA=0 $(VPY_OLDEST) setup.py -q build \
		--build-base $(OLDEST_BUILD) --build-lib $(OLDEST_BUILD)/lib --build-temp $(OLDEST_BUILD)/temp

test-oldest: build-oldest cpp-deps
	$(call test_build,$(VENV_OLDEST),$(OLDEST_BUILD))
