"""Builds torch-sugar for pip by driving CMake: CMakeLists.txt is the one description of the build
(sources, flags, per-ISA CPU kernels, CUDA). This file configures it with the Python running
setup.py, builds the op library and the module torch_sugar._C, and installs them, with the headers
and the CMake package, into the package folder (`cmake --install --prefix .../torch_sugar`).

Environment (the options of CMakeLists.txt):
  SUGAR_CUDA=1          build the CUDA kernels; if that is impossible, fail (never a silent CPU-only build)
  SUGAR_CUDA=0          CPU only
  SUGAR_CUDA unset      CUDA when torch was built with CUDA and nvcc is found, else CPU only
  TORCH_CUDA_ARCH_LIST  the CUDA architectures (default 8.0;8.6;8.9;9.0+PTX)
  SUGAR_DEBUG=1         keep debug information (off by default)
  SUGAR_CMAKE_BUILD_DIR the CMake build folder (default: under build_temp); `make` points it at
                        build-cmake/, which ctest uses too, so the library is compiled once
  CMAKE_ARGS            more arguments for the CMake configure step
  CMAKE, MAX_JOBS       the cmake program; the number of parallel compile jobs
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
OPS_LIB = "torch_sugar.lib.libtorch_sugar"


def read_version():
    text = open(os.path.join(ROOT, "python", "torch_sugar", "version.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def load_cuda_toolkit():
    """cmake/cuda_toolkit.py (the toolkit discovery tests/consumer/run_consumer.py uses too)."""
    path = os.path.join(ROOT, "cmake", "cuda_toolkit.py")
    spec = importlib.util.spec_from_file_location("torch_sugar_cuda_toolkit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmake_args():
    switch = os.environ.get("SUGAR_CUDA", "").strip().lower()
    modes = {"": "AUTO", "auto": "AUTO", "1": "ON", "0": "OFF"}
    if switch not in modes:
        raise SystemExit(f"SUGAR_CUDA must be 0, 1 or unset, got {switch!r}")
    import torch  # the torch this package is built against (pyproject's build requirement)

    args = [
        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
        f"-DPython_EXECUTABLE={sys.executable}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DSUGAR_BUILD_PYTHON=ON",
        f"-DSUGAR_CUDA={modes[switch]}",
        f"-DSUGAR_DEBUG={'ON' if os.environ.get('SUGAR_DEBUG', '0') == '1' else 'OFF'}",
    ]
    # torch's CMake package (FindCUDA and CUDAToolkit) must find the toolkit whenever torch is a CUDA
    # build, even for SUGAR_CUDA=0.
    args += load_cuda_toolkit().cmake_args(torch)
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        args.append(f"-DTORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}")
    return args + shlex.split(os.environ.get("CMAKE_ARGS", ""))


class CMakeExtension(Extension):
    """A library CMakeLists.txt builds (no sources of its own here)."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class BuildSugar(build_ext):
    """One CMake build for both extensions, installed into the package folder."""

    def run(self):
        if not self.extensions:
            return
        cmake = os.environ.get("CMAKE") or shutil.which("cmake")
        if cmake is None:
            raise SystemExit(
                "torch-sugar is built with CMake (>= 3.18), which was not found on PATH: install it "
                "(`pip install cmake` or `apt-get install cmake`) or set CMAKE to its path."
            )
        build_dir = os.path.abspath(
            os.environ.get("SUGAR_CMAKE_BUILD_DIR") or os.path.join(self.build_temp, "cmake")
        )
        # The package folder: the source tree for --inplace and editable installs, else build_lib
        # (what the wheel packs).
        if self.inplace or getattr(self, "editable_mode", False):
            package_dir = os.path.join(ROOT, "python", "torch_sugar")
        else:
            package_dir = os.path.join(os.path.abspath(self.build_lib), "torch_sugar")
        configure = [cmake, "-S", ROOT, "-B", build_dir] + cmake_args()
        if not self.verbose:  # setup.py -q: CMake's warnings and errors only
            configure += ["--log-level=WARNING", "-DCMAKE_INSTALL_MESSAGE=LAZY"]
        if shutil.which("ninja") and not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            configure += ["-G", "Ninja"]
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        # Only the two libraries the package holds; the install step copies them with the headers
        # and the CMake package config.
        targets = ["torch_sugar", "torch_sugar_python"]
        for cmd in (
            configure,
            [cmake, "--build", build_dir, "--parallel", jobs, "--target", *targets],
            [cmake, "--install", build_dir, "--prefix", package_dir],
        ):
            print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)

    def get_ext_filename(self, ext_name):
        # setuptools asks both by full name and by its last component.
        if ext_name == OPS_LIB:
            return os.path.join("torch_sugar", "lib", "libtorch_sugar.so")
        if ext_name == OPS_LIB.rsplit(".", 1)[1]:
            return "libtorch_sugar.so"
        return super().get_ext_filename(ext_name)


# `make` installs the package in editable mode without extensions (SUGAR_SKIP_EXTENSIONS=1), then
# builds them with `setup.py build_ext --inplace`, which stays incremental.
SKIP_EXTENSIONS = os.environ.get("SUGAR_SKIP_EXTENSIONS") == "1"

setup(
    version=read_version(),
    packages=find_packages("python"),
    package_dir={"": "python"},
    ext_modules=[] if SKIP_EXTENSIONS else [CMakeExtension(OPS_LIB), CMakeExtension("torch_sugar._C")],
    cmdclass={"build_ext": BuildSugar},
    include_package_data=True,
    zip_safe=False,
)
