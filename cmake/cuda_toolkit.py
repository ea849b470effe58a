"""Where the CUDA toolkit is, for CMake builds against a CUDA build of torch (the PyPI wheels are).

torch's CMake package (FindCUDA and CUDAToolkit) must find the toolkit whenever torch is a CUDA
build, even for a project that compiles no CUDA code. setup.py (torch-sugar's own build) and
tests/consumer/run_consumer.py (a user's CMake project against an installed torch-sugar) both pass
the arguments :func:`cmake_args` returns; this file is loaded by path, needing nothing but the
standard library and torch.
"""

import glob
import os
import re
import shutil


def toolkit_ok(home):
    """True when ``home`` is a CUDA toolkit with a compiler and the runtime headers."""
    return (
        bool(home)
        and os.path.exists(os.path.join(home, "bin", "nvcc"))
        and os.path.exists(os.path.join(home, "include", "cuda_runtime.h"))
    )


def cuda_home():
    """The CUDA toolkit's root: CUDA_HOME or CUDA_PATH when set, else the folder above the real
    `nvcc` on PATH (resolving a wrapper script's symlink, e.g. /usr/local/bin/nvcc), else
    /usr/local/cuda; None when none of them is a complete toolkit."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    return next((home for home in candidates if toolkit_ok(home)), None)


def pip_nvrtc(home, torch):
    """NVRTC from torch's pip dependencies (nvidia/cu13/lib/libnvrtc.so.13 or, for CUDA 12,
    nvidia/cuda_nvrtc/lib/libnvrtc.so.12) when the toolkit at `home` has none: torch's CMake package
    requires the library, and a toolkit installed without it is common (the pip wheels bring theirs)."""
    if glob.glob(os.path.join(home, "lib*", "libnvrtc.so*")):
        return None
    site = os.path.dirname(os.path.dirname(os.path.abspath(torch.__file__)))
    found = sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib", "libnvrtc.so.*[0-9]")))
    return next((f for f in found if re.search(r"libnvrtc\.so\.\d+$", f)), None)


def cmake_args(torch):
    """The CMake arguments that point torch's CMake package at the toolkit: none for a CPU-only
    torch, or when no complete toolkit is found (CMake then says what it misses)."""
    if torch.version.cuda is None:
        return []
    home = cuda_home()
    if not toolkit_ok(home):
        return []
    args = [
        f"-DCUDAToolkit_ROOT={home}",
        f"-DCUDA_TOOLKIT_ROOT_DIR={home}",
        f"-DCMAKE_CUDA_COMPILER={os.path.join(home, 'bin', 'nvcc')}",
    ]
    nvrtc = pip_nvrtc(home, torch)
    if nvrtc:
        args.append(f"-DCUDA_nvrtc_LIBRARY={nvrtc}")
    return args
