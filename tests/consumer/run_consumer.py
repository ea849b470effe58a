"""Builds tests/consumer, a user's CMake project, outside the repository against an installed
torch-sugar, and checks that its programs get Python's numbers.

    python run_consumer.py --prefix <cmake --install prefix>   # find_package from an install
    python run_consumer.py --pip                               # ... from torch_sugar.cmake_prefix_path

The project is configured with -Wl,--as-needed on its link line, so that `run_scripted` (which
calls no torch-sugar function) only works if TorchSugar::TorchSugar keeps the op library linked.
With a CUDA build of torch (the PyPI wheels), the project is configured with the CUDA toolkit's
location, found as setup.py finds it (cmake/cuda_toolkit.py), as a user must pass it.
The Python numbers come from the torch_sugar package when it can be imported (for --prefix
that is a second, independent build of the same sources), else from the installed library.
Exits 77 (ctest: skipped) for --pip when this Python has no built torch_sugar package.
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROJECT_FILES = ["CMakeLists.txt", "gradients.cpp", "run_scripted.cpp"]


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, **kw)
    print(f"  ({time.time() - start:.1f}s)", flush=True)


def python_value(code):
    """A value printed by a fresh Python (so torch_sugar is never imported in this process)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def cuda_toolkit_args():
    """What a user passes to configure against a CUDA build of torch (the PyPI wheels are): the
    toolkit's location, for torch's CMake package, found as setup.py finds it
    (cmake/cuda_toolkit.py: CUDA_HOME, nvcc on PATH, /usr/local/cuda). None for a CPU-only torch."""
    import torch

    spec = importlib.util.spec_from_file_location(
        "cuda_toolkit", os.path.join(ROOT, "cmake", "cuda_toolkit.py")
    )
    cuda_toolkit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cuda_toolkit)
    return cuda_toolkit.cmake_args(torch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prefix", help="a prefix that `cmake --install` filled")
    where.add_argument("--pip", action="store_true", help="use torch_sugar.cmake_prefix_path")
    parser.add_argument("--cmake", default="cmake")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    package_prefix = python_value("import torch_sugar; print(torch_sugar.cmake_prefix_path)")
    if args.pip:
        if package_prefix is None:
            print(
                "run_consumer: this Python cannot import a built torch_sugar package; skipped "
                "(build it with `make build`)"
            )
            return 77
        prefix = package_prefix
    else:
        prefix = os.path.abspath(args.prefix)
    torch_prefix = python_value("import torch; print(torch.utils.cmake_prefix_path)")
    print(f"run_consumer: TorchSugar from {prefix}\n              torch from {torch_prefix}")

    work = tempfile.mkdtemp(prefix="torch-sugar-consumer-")
    ok = False
    try:
        src, data, build = (os.path.join(work, d) for d in ("src", "data", "build"))
        os.makedirs(src)
        for name in PROJECT_FILES:
            shutil.copy(os.path.join(HERE, name), src)

        reference = (
            ["--use-package"]
            if package_prefix is not None
            else ["--library", os.path.join(prefix, "lib", "libtorch_sugar.so")]
        )
        run([sys.executable, os.path.join(HERE, "make_reference.py"), "--out", data] + reference)

        configure = [
            args.cmake,
            "-S",
            src,
            "-B",
            build,
            f"-DCMAKE_PREFIX_PATH={prefix};{torch_prefix}",
            "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed",
        ] + cuda_toolkit_args()
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        run(configure)
        run([args.cmake, "--build", build, "--parallel", "2"])
        run([os.path.join(build, "gradients"), os.path.join(data, "grads.txt")])
        run(
            [
                os.path.join(build, "run_scripted"),
                os.path.join(data, "model.pt"),
                os.path.join(data, "model_reference.pt"),
            ]
        )
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"run_consumer: the project and its build are left in {work}")
    print("run_consumer: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
