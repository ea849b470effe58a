"""The build: CMakeLists.txt is its one description, setup.py drives it for pip.

These tests reuse `make build`'s CMake folder (build-cmake/; SUGAR_TEST_CMAKE_BUILD names another,
as `make test-newest` and `make test-oldest` do for the build of the torch they test), so a wheel
costs a configure step and an install, not a compile; they are skipped where that folder does not
exist (a package installed some other way).
"""

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
import torch

import torch_sugar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMAKE_BUILD = os.environ.get("SUGAR_TEST_CMAKE_BUILD") or os.path.join(ROOT, "build-cmake")
CMAKE = os.environ.get("CMAKE") or shutil.which("cmake")

# The wheel is built as the package under test was: a CUDA build's CMake folder stays one.
BUILT_WITH_CUDA = torch_sugar.build_info()["cuda_compiled"]

needs_cmake_build = pytest.mark.skipif(
    CMAKE is None or not os.path.exists(os.path.join(CMAKE_BUILD, "CMakeCache.txt")),
    reason="needs cmake and make build's CMake folder (build-cmake/)",
)


def _env(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


@needs_cmake_build
def test_wheel_is_the_cmake_build_and_works(tmp_path):
    """`pip wheel .` goes through CMake: the wheel holds the op library (the same bytes as the
    package `make build` installed from the same CMake build: compiled once), _C, the headers and
    the CMake package; unpacked on its own it imports, runs the op and reports its CMake prefix."""
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "-w",
            str(wheels),
            ROOT,
        ],
        capture_output=True,
        text=True,
        env=_env(SUGAR_CUDA="1" if BUILT_WITH_CUDA else "0", SUGAR_CMAKE_BUILD_DIR=CMAKE_BUILD),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = glob.glob(str(wheels / "torch_sugar-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "torch_sugar/lib/libtorch_sugar.so",
        "torch_sugar/include/torch_sugar/ops.h",
        "torch_sugar/include/torch_sugar/sugar.h",
        "torch_sugar/include/torch_sugar/nn.h",
        "torch_sugar/lib/cmake/TorchSugar/TorchSugarConfig.cmake",
        "torch_sugar/lib/cmake/TorchSugar/TorchSugarConfigVersion.cmake",
        "torch_sugar/lib/cmake/TorchSugar/TorchSugarLinkWhole.cmake",
        "torch_sugar/__init__.py",
    }
    assert expected <= names, sorted(expected - names)
    assert any(n.startswith("torch_sugar/_C.") and n.endswith(".so") for n in names), sorted(names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The library of the package under test (make build's, in python/torch_sugar, for make test).
    built = os.path.join(os.path.dirname(torch_sugar.__file__), "lib", "libtorch_sugar.so")
    if os.path.exists(built):
        with open(built, "rb") as a, open(site / "torch_sugar" / "lib" / "libtorch_sugar.so", "rb") as b:
            assert a.read() == b.read(), "the wheel's op library is not the one make build installed"
    code = (
        "import os, torch, torch_sugar\n"
        "x = torch.tensor([-2.0, -0.5, 0.0, 1.5], dtype=torch.float64, requires_grad=True)\n"
        "torch_sugar.relu(x, 'bsilu').sum().backward()\n"
        "print(torch_sugar.__file__)\n"
        "print(os.path.exists(os.path.join(torch_sugar.cmake_prefix_path, 'lib', 'cmake', 'TorchSugar',"
        " 'TorchSugarConfig.cmake')))\n"
        "print(','.join(repr(v) for v in x.grad.tolist()))\n"
        "print(torch_sugar.build_info()['version'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(PYTHONPATH=str(site)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    where, has_config, grads, version = proc.stdout.strip().splitlines()
    assert where.startswith(str(site)), where
    assert has_config == "True"
    from reference import grad_input

    expected_grad = grad_input("bsilu", 1.0, [-2.0, -0.5, 0.0, 1.5]).tolist()
    got = [float(v) for v in grads.split(",")]
    assert got == pytest.approx(expected_grad, rel=1e-12, abs=1e-15)
    from torch_sugar.version import __version__

    assert version == __version__


def test_sdist_carries_the_cmake_build(tmp_path):
    """The sdist holds what setup.py hands CMake: CMakeLists.txt, the package templates, every
    C++/CUDA source (the Python module's too) and the version file CMake reads."""
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(SUGAR_SKIP_EXTENSIONS="1"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (sdist,) = glob.glob(str(tmp_path / "torch_sugar-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tracked = subprocess.run(
        ["git", "ls-files", "csrc", "cmake"], capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    expected = {"CMakeLists.txt", "setup.py", "pyproject.toml", "python/torch_sugar/version.py", *tracked}
    assert tracked, "git ls-files found no sources"
    assert expected <= names, sorted(expected - names)


@pytest.mark.skipif(CMAKE is None, reason="needs cmake")
@pytest.mark.skipif(torch.version.cuda is not None, reason="checks the message for a CPU-only torch")
def test_cuda_on_with_cpu_torch_is_a_configure_error(tmp_path):
    """SUGAR_CUDA=ON never falls back to a CPU-only build: CMake stops and says why."""
    proc = subprocess.run(
        [
            CMAKE,
            "-S",
            ROOT,
            "-B",
            str(tmp_path / "b"),
            "-DSUGAR_CUDA=ON",
            "-DSUGAR_BUILD_TESTS=OFF",
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    message = " ".join(proc.stderr.split())
    assert "SUGAR_CUDA=ON asked for the CUDA kernels" in message, proc.stderr
    assert "is a CPU-only build" in message and "-DSUGAR_CUDA=OFF" in message, proc.stderr


def test_setup_rejects_an_unknown_sugar_cuda(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "setup.py",
            "-q",
            "build_ext",
            "--build-temp",
            str(tmp_path),
            "--build-lib",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(SUGAR_CUDA="yes"),
        timeout=300,
    )
    assert proc.returncode != 0
    assert "SUGAR_CUDA must be 0, 1 or unset, got 'yes'" in proc.stderr + proc.stdout
