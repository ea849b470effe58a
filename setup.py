"""Builds torch-sugar: the Python-free op library `torch_sugar/lib/libtorch_sugar.so`
(CPU kernels, and CUDA kernels when asked for) and the small pybind11 module `torch_sugar._C`.

CUDA is chosen by the environment variable SUGAR_CUDA:
  SUGAR_CUDA=1  build the CUDA kernels; if that is impossible, fail (never a silent CPU-only build)
  SUGAR_CUDA=0  CPU only
  unset         CUDA when torch was built with CUDA and nvcc is found, else CPU only
TORCH_CUDA_ARCH_LIST overrides the default CUDA architectures (8.0;8.6;8.9;9.0+PTX).
SUGAR_DEBUG=1 keeps debug information in the C++ objects (off by default: -g0).
"""

import glob
import os
import platform
import re
import shutil

import torch
from setuptools import find_packages, setup


def _toolkit_ok(home):
    return (
        bool(home)
        and os.path.exists(os.path.join(home, "bin", "nvcc"))
        and os.path.exists(os.path.join(home, "include", "cuda_runtime.h"))
    )


def _locate_cuda_home():
    """Sets CUDA_HOME to a complete toolkit when the user set neither CUDA_HOME nor CUDA_PATH.

    torch takes the toolkit to be the folder above the first `nvcc` on PATH; when that `nvcc` is a
    wrapper script (e.g. /usr/local/bin/nvcc that execs /usr/local/cuda-13.0/bin/nvcc) the
    headers are not there. This must run before torch.utils.cpp_extension is imported, which reads
    CUDA_HOME once.
    """
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    for home in candidates:
        if _toolkit_ok(home):
            os.environ["CUDA_HOME"] = home
            return


if os.environ.get("SUGAR_CUDA", "").strip() != "0":
    _locate_cuda_home()

from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
OPS_LIB = "torch_sugar.lib.libtorch_sugar"


def read_version():
    text = open(os.path.join(ROOT, "python", "torch_sugar", "version.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def want_cuda():
    switch = os.environ.get("SUGAR_CUDA", "").strip().lower()
    if switch not in ("", "0", "1", "auto"):
        raise SystemExit(f"SUGAR_CUDA must be 0, 1 or unset, got {switch!r}")
    problems = []
    if torch.version.cuda is None:
        problems.append(f"the installed torch {torch.__version__} is a CPU-only build")
    if not CUDA_HOME or not os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
        problems.append("nvcc was not found (set CUDA_HOME to the CUDA toolkit or put its bin/ on PATH)")
    elif not os.path.exists(os.path.join(CUDA_HOME, "include", "cuda_runtime.h")):
        problems.append(
            f"the CUDA toolkit at CUDA_HOME={CUDA_HOME} has no include/cuda_runtime.h "
            "(set CUDA_HOME to the toolkit's root folder)"
        )
    if switch == "1":
        if problems:
            raise SystemExit(
                "SUGAR_CUDA=1 asked for the CUDA kernels, but "
                + " and ".join(problems)
                + ". Install a CUDA build of torch and the CUDA toolkit, or build with SUGAR_CUDA=0."
            )
        return True
    if switch == "0":
        return False
    return not problems


VERSION = read_version()
WITH_CUDA = want_cuda()
if WITH_CUDA and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
    os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;8.6;8.9;9.0+PTX"

# -g0 overrides the -g in Python's own CFLAGS: debug info would triple the size of the libraries
# (SUGAR_DEBUG=1 keeps it, for gdb and perf annotate).
cxx_flags = ["-O3", "-fvisibility=hidden", f'-DTORCH_SUGAR_VERSION="{VERSION}"']
if os.environ.get("SUGAR_DEBUG", "0") != "1":
    cxx_flags.append("-g0")
nvcc_flags = ["-O3", "--expt-relaxed-constexpr", "--extended-lambda", f'-DTORCH_SUGAR_VERSION="{VERSION}"']
if WITH_CUDA:
    cxx_flags.append("-DSUGAR_WITH_CUDA")
    nvcc_flags.append("-DSUGAR_WITH_CUDA")
    # Hidden like the C++ objects: the kernels register themselves, nothing is exported.
    nvcc_flags += ["-Xcompiler", "-fvisibility=hidden"]
    # Compile the architectures of TORCH_CUDA_ARCH_LIST in parallel (0: one thread per CPU).
    nvcc_flags += ["--threads", os.environ.get("SUGAR_NVCC_THREADS", "0")]

include_dirs = [os.path.join(ROOT, "csrc", "include"), os.path.join(ROOT, "csrc")]
# The CPU kernels (csrc/ops/cpu/vec_kernels.cpp) are one source compiled once per instruction set,
# with the flags and CPU_CAPABILITY macros of ATen's own per-ISA kernels (pytorch's
# cmake/Codegen.cmake); CMakeLists.txt has the same list. The portable sources get no ISA flag.
CPU_KERNEL_SOURCE = "csrc/ops/cpu/vec_kernels.cpp"
CPU_CAPABILITIES = [("DEFAULT", [])]
if platform.machine().lower() in ("x86_64", "amd64"):
    CPU_CAPABILITIES += [
        ("AVX2", ["-mavx2", "-mfma", "-mf16c"]),
        ("AVX512", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]),
    ]
# Every variant: no contraction of a * b + c into an FMA (the compiler's choice would depend on
# the context a formula is inlined into, so the same value could round differently in a vector
# loop and in its tail); ATen's vector headers' unknown pragmas (#pragma unroll) stay quiet.
CPU_KERNEL_FLAGS = ["-ffp-contract=off", "-Wno-unknown-pragmas", "-Wno-psabi"]
op_sources = sorted(
    set(
        glob.glob("csrc/ops/*.cpp")
        + glob.glob("csrc/ops/cpu/*.cpp")
        + glob.glob("csrc/ops/meta/*.cpp")
        + glob.glob("csrc/ops/autograd/*.cpp")
        + glob.glob("csrc/api/*.cpp")
    )
    - {CPU_KERNEL_SOURCE}
)
if WITH_CUDA:
    op_sources += sorted(glob.glob("csrc/ops/cuda/*.cu"))

Extension = CUDAExtension if WITH_CUDA else CppExtension
ops_ext = Extension(
    OPS_LIB,
    op_sources,
    include_dirs=include_dirs,
    # Python-free: py_limited_api keeps torch_python (and so libpython) out of the link, so C++
    # programs can load the library too.
    py_limited_api=True,
    extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
    extra_link_args=["-Wl,-soname,libtorch_sugar.so"],
)
# torch_sugar.build_info() reports the CUDA architectures (only the Python module needs them).
c_cxx_flags = cxx_flags + (
    [f'-DSUGAR_CUDA_ARCH_LIST="{os.environ["TORCH_CUDA_ARCH_LIST"]}"'] if WITH_CUDA else []
)
c_ext = CppExtension(
    "torch_sugar._C",
    ["csrc/python/module.cpp", "csrc/python/surrogate_table.cpp"],
    include_dirs=include_dirs,
    extra_compile_args={"cxx": c_cxx_flags},
)


def write_cmake_package(package_dir):
    """The C++ side of the Python package, for `find_package(TorchSugar)` with
    torch_sugar.cmake_prefix_path: include/torch_sugar/*.h and lib/cmake/TorchSugar/ next to
    lib/libtorch_sugar.so, the same layout as `cmake --install`. The config files come from the
    templates in cmake/ that CMakeLists.txt also uses. Files are rewritten only when they change."""
    values = {
        "TORCH_SUGAR_VERSION": VERSION,
        "TORCH_SUGAR_TORCH_VERSION": torch.__version__.split("+")[0],
        "TORCH_SUGAR_WITH_CUDA": "ON" if WITH_CUDA else "OFF",
    }
    files = {}
    for name in ("TorchSugarConfig.cmake", "TorchSugarConfigVersion.cmake"):
        text = open(os.path.join(ROOT, "cmake", name + ".in")).read()
        # configure_file(@ONLY): @NAME@ -> value; an unknown name is an error here.
        files[os.path.join("lib", "cmake", "TorchSugar", name)] = re.sub(
            r"@(\w+)@", lambda m: values[m.group(1)], text
        )
    files[os.path.join("lib", "cmake", "TorchSugar", "TorchSugarLinkWhole.cmake")] = open(
        os.path.join(ROOT, "cmake", "TorchSugarLinkWhole.cmake")
    ).read()
    for header in sorted(glob.glob(os.path.join(ROOT, "csrc", "include", "torch_sugar", "*.h"))):
        files[os.path.join("include", "torch_sugar", os.path.basename(header))] = open(header).read()
    for rel, text in files.items():
        path = os.path.join(package_dir, rel)
        if os.path.exists(path) and open(path).read() == text:
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


class BuildSugar(BuildExtension):
    """Names the op library `lib/libtorch_sugar.so` (a plain shared library, not a module), and
    compiles its per-ISA CPU kernels (CPU_CAPABILITIES)."""

    def build_extension(self, ext):
        if ext.name == OPS_LIB:
            # One object per instruction set, each with its own flags (ninja keeps them
            # incremental), linked after the portable objects in order of ISA, so that where the
            # linker merges an inline function compiled in several objects it keeps the copy
            # every CPU can run.
            cxx = (
                ext.extra_compile_args["cxx"]
                if isinstance(ext.extra_compile_args, dict)
                else list(ext.extra_compile_args)
            )
            objects = []
            for name, flags in CPU_CAPABILITIES:
                objects += self.compiler.compile(
                    [CPU_KERNEL_SOURCE],
                    output_dir=os.path.join(self.build_temp, "cpu_" + name),
                    macros=ext.define_macros,
                    include_dirs=ext.include_dirs,
                    extra_postargs={
                        "cxx": cxx
                        + CPU_KERNEL_FLAGS
                        + flags
                        + [f"-DCPU_CAPABILITY={name}", f"-DCPU_CAPABILITY_{name}"],
                        "nvcc": [],
                    },
                )
            ext.extra_objects = [o for o in ext.extra_objects if o not in objects] + objects
        super().build_extension(ext)

    def run(self):
        super().run()
        # The headers and the CMake package config beside the op library (write_cmake_package).
        # Where the op library went (build/lib... for a wheel, python/ for --inplace), and the
        # source package too for editable installs, whose library is copied there.
        package_dirs = {os.path.dirname(os.path.dirname(self.get_ext_fullpath(OPS_LIB)))}
        if self.inplace or getattr(self, "editable_mode", False):
            package_dirs.add(os.path.join(ROOT, "python", "torch_sugar"))
        for package_dir in package_dirs:
            write_cmake_package(package_dir)

    def get_ext_filename(self, ext_name):
        # setuptools asks both by full name and by its last component.
        if ext_name == OPS_LIB:
            return os.path.join("torch_sugar", "lib", "libtorch_sugar.so")
        if ext_name == OPS_LIB.rsplit(".", 1)[1]:
            return "libtorch_sugar.so"
        return super().get_ext_filename(ext_name)

    def copy_extensions_to_source(self):
        os.makedirs(os.path.join(ROOT, "python", "torch_sugar", "lib"), exist_ok=True)
        super().copy_extensions_to_source()

    def get_export_symbols(self, ext):
        if ext.name == OPS_LIB:
            return []
        return super().get_export_symbols(ext)


# `make` installs the package in editable mode without extensions (SUGAR_SKIP_EXTENSIONS=1), then
# builds them with `setup.py build_ext --inplace`, which stays incremental.
SKIP_EXTENSIONS = os.environ.get("SUGAR_SKIP_EXTENSIONS") == "1"

setup(
    version=VERSION,
    packages=find_packages("python"),
    package_dir={"": "python"},
    ext_modules=[] if SKIP_EXTENSIONS else [ops_ext, c_ext],
    cmdclass={"build_ext": BuildSugar.with_options(use_ninja=True)},
    include_package_data=True,
    zip_safe=False,
)
