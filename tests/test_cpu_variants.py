"""The CPU kernel variants (default, avx2, avx512) against a float64 reference.

Every variant this machine can run is forced with SUGAR_CPU_CAPABILITY in a fresh subprocess (the
choice is made once per process), which computes forward and backward of every surrogate for
float32, bfloat16, float16 and float64 inputs (contiguous runs of every length modulo the vector
width, long runs split across threads, strided views, special values). The parent compares the
results against the float64 reference of tests/reference.py (DESIGN.md's formulas, not
csrc/ops/surrogate_math.h), the forward pass bit for bit against torch.relu, and the backward pass
bit for bit across layouts: the same values give the same bits contiguous, strided, one element
at a time, or through the 16-bit lookup table.

Also checked: the automatic choice is the best variant the CPU has (from /proc/cpuinfo), forcing
an unsupported or unknown variant fails with a clear error, and no AVX instruction of the ISA
objects can reach the portable code (symbols and disassembly).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from reference import CANONICAL_SURROGATES, DTYPE_NAMES, bits, grad_input

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VARIANTS = ("default", "avx2", "avx512")
# Lengths around the vector widths (8 and 16 floats) and their unrolled loops, plus one long
# enough for at::parallel_for to split it across threads at arbitrary offsets.
LENGTHS = (1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 65537)


# ---------------------------------------------------------------------------------------------
# What this CPU can run, read independently of the library.


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def runnable_variants():
    flags = cpu_flags()
    out = ["default"]
    if {"avx2", "fma", "f16c"} <= flags:
        out.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            out.append("avx512")
    return out


def is_x86_64_linux():
    import platform

    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


# ---------------------------------------------------------------------------------------------
# The worker: runs in a subprocess with SUGAR_CPU_CAPABILITY set, saves everything to a file.


def make_inputs():
    gen = torch.Generator().manual_seed(1234)
    specials = torch.tensor(
        [
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            1e-45,
            -1e-45,
            1e-38,
            -1e-38,
            0.5,
            -0.5,
            1.0,
            -1.0,
            -0.75,
            -0.7517915,
            -1.1906,
            -1.278464,
            -2.7,
            30.0,
            -30.0,
            50.0,
            -50.0,
            50.5,
            -50.5,
            88.0,
            -88.0,
            103.0,
            -103.0,
            105.0,
            -105.0,
            1e4,
            -1e4,
            1e19,
            -1e19,
            1e30,
            -1e30,
            3.4028234663852886e38,
            -3.4028234663852886e38,
            float("nan"),
            float("inf"),
            float("-inf"),
        ],
        dtype=torch.float64,
    )
    parts = [
        specials,
        torch.linspace(-100, 100, 4001, dtype=torch.float64),
        torch.randn(3000, generator=gen, dtype=torch.float64) * 3,
    ]
    x = torch.cat(parts)
    g = torch.randn(x.numel(), generator=gen, dtype=torch.float64)
    g[: specials.numel()] = 1.0  # specials with a plain unit gradient
    return x, g


def worker(out_path):
    import torch_sugar  # noqa: F401

    torch.set_num_threads(2)
    result = {"capability": torch.ops.sugar._cpu_capability(), "cases": {}}
    x64, g64 = make_inputs()
    gen = torch.Generator().manual_seed(99)
    for dtype_name in DTYPE_NAMES:
        dtype = getattr(torch, dtype_name)
        x = x64.to(dtype)
        g = g64.to(dtype)
        for s in CANONICAL_SURROGATES:
            for neg in (False, True):
                key = (dtype_name, s, neg)
                result["cases"][key] = {
                    "x": x,
                    "g": g,
                    "fwd": torch.ops.sugar.relu(x, s, None, neg),
                    "bwd": torch.ops.sugar.relu_backward(g, x, s, None, neg),
                }
        # Every length modulo the vector widths (tails), one surrogate per dtype is enough for
        # the loop structure; then strided (non-contiguous) operands.
        for n in LENGTHS:
            xn = (torch.randn(n, generator=gen, dtype=torch.float64) * 4).to(dtype)
            gn = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
            result["cases"][(dtype_name, "bsilu", "len", n)] = {
                "x": xn,
                "g": gn,
                "fwd": torch.ops.sugar.relu(xn, "bsilu", None, False),
                "bwd": torch.ops.sugar.relu_backward(gn, xn, "bsilu", None, False),
            }
        # NaN payloads, signs of NaN and zero, subnormals and infinities: the forward pass returns
        # the input's bits wherever x is not negative.
        patterns = {
            "float32": [
                0x7FC00001,
                0xFFC00001,
                0x7F800001,
                0xFF800000,
                0x7F800000,
                0x80000000,
                0x80000001,
                0x00000001,
                0xBF800000,
            ],
            "bfloat16": [0x7FC1, 0xFFC1, 0x7F81, 0xFF81, 0xFF80, 0x7F80, 0x8000, 0x8001, 0x0001, 0xBF80],
            "float16": [0x7E01, 0xFE01, 0x7C01, 0xFC01, 0xFC00, 0x7C00, 0x8000, 0x8001, 0x0001, 0xBC00],
        }.get(dtype_name)
        if patterns is not None:
            itype = {2: torch.int16, 4: torch.int32}[torch.empty(0, dtype=dtype).element_size()]
            width = 8 * torch.empty(0, dtype=dtype).element_size()
            signed = [p - (1 << width) if p >= 1 << (width - 1) else p for p in patterns]
            # Repeated past every vector width, so both the vector loop and the tail see them.
            xp = torch.tensor(signed * 9, dtype=itype).view(dtype)
            result["cases"][(dtype_name, "relu", "bits", 0)] = {
                "x": xp,
                "g": torch.ones_like(xp),
                "fwd": torch.ops.sugar.relu(xp, "relu", None, False),
                "bwd": torch.ops.sugar.relu_backward(torch.ones_like(xp), xp, "relu", None, False),
            }
        # Large 16-bit tensors take d(x) from a table of all 65536 inputs (kernels.h): the
        # result must be bit for bit the computing kernel's, which small chunks still use.
        if dtype_name in ("bfloat16", "float16"):
            reps = 80000 // x.numel() + 1
            xb, gb = x.repeat(reps), g.flip(0).repeat(reps)
            for s in CANONICAL_SURROGATES:
                for neg in (False, True):
                    big = torch.ops.sugar.relu_backward(gb, xb, s, None, neg)
                    chunks = torch.cat(
                        [
                            torch.ops.sugar.relu_backward(gc, xc, s, None, neg)
                            for gc, xc in zip(gb.split(9000), xb.split(9000))
                        ]
                    )
                    result["cases"][(dtype_name, s, "table", neg)] = {
                        "x": xb,
                        "g": gb,
                        "fwd": torch.relu(xb),
                        "bwd": big,
                        "bwd_chunked": chunks,
                    }
        # The same values in other layouts: every other element of a buffer (strided), and the
        # first 200 (the special values among them) one element per call (a vector's tail).
        xs = torch.zeros(2 * x.numel(), dtype=dtype)[::2]
        gs = torch.zeros(2 * x.numel(), dtype=dtype)[1::2]
        xs.copy_(x)
        gs.copy_(g)
        for s in CANONICAL_SURROGATES:
            for neg in (False, True):
                result["cases"][(dtype_name, s, "layouts", neg)] = {
                    "x": x,
                    "g": g,
                    "fwd": torch.ops.sugar.relu(xs, s, None, neg),
                    "bwd": result["cases"][(dtype_name, s, neg)]["bwd"],
                    "bwd_strided": torch.ops.sugar.relu_backward(gs, xs, s, None, neg),
                    "bwd_single": torch.cat(
                        [
                            torch.ops.sugar.relu_backward(g[i : i + 1], x[i : i + 1], s, None, neg)
                            for i in range(200)
                        ]
                    ),
                }
        base = (torch.randn(64, 33, generator=gen, dtype=torch.float64) * 4).to(dtype)
        xs = base[:, 1::2]  # strided rows
        gs = torch.randn(33, 64, generator=gen, dtype=torch.float64).to(dtype).t()[:, 1::2]
        result["cases"][(dtype_name, "mish", "strided", 0)] = {
            "x": xs.contiguous(),
            "g": gs.contiguous(),
            "fwd": torch.ops.sugar.relu(xs, "mish", None, False).contiguous(),
            "bwd": torch.ops.sugar.relu_backward(gs, xs, "mish", None, False).contiguous(),
        }
    torch.save(result, out_path)


def run_worker(variant, tmp_path):
    out = tmp_path / f"variant_{variant}.pt"
    env = dict(os.environ, SUGAR_CPU_CAPABILITY=variant)
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"worker for {variant} failed:\n{proc.stdout}\n{proc.stderr}"
    return torch.load(out, weights_only=False)


def reference_backward(s, neg, g64, x64):
    """tests/reference.py's grad_input in float64, as a tensor (NaN/inf inputs give what they give)."""
    with np.errstate(all="ignore"):
        return torch.from_numpy(
            np.asarray(grad_input(s, g64.numpy(), x64.numpy(), None, neg), dtype=np.float64)
        )


def assert_close_to_reference(out, ref, x64, g64, dtype_name, what, surrogate=None):
    """|out - ref| within the float32 arithmetic's error, plus one rounding for 16-bit types."""
    out64 = out.double()
    finite_ref = torch.isfinite(ref)
    # Where the reference is finite, so must the kernel be (DESIGN: d finite for finite x).
    bad = finite_ref & ~torch.isfinite(out64)
    assert not bad.any(), (
        f"{what}: non-finite output where the reference is finite at x={x64[bad][:5].tolist()}"
    )
    err = (out64 - ref).abs()
    near = x64.abs() <= 8  # the surrogates' roots (cancellation) all lie here
    gabs = g64.abs()
    if dtype_name == "float64":
        tol = 1e-12 * gabs + 1e-10 * ref.abs()
    else:
        # float32 math: absolute 1e-6 |g| near the roots (observed <= 3e-7), relative 3e-5
        # elsewhere (observed <= 1.5e-5), and an absolute 1e-39 for results within a few
        # binades of float32's subnormal range, where intermediates lose their precision.
        tol = torch.where(near, 1e-6 * gabs, torch.zeros_like(gabs)) + 3e-5 * ref.abs() + 1e-39
        if dtype_name == "bfloat16":
            tol = tol + 2.0**-8 * ref.abs() + 1e-40
        elif dtype_name == "float16":
            tol = tol + 2.0**-11 * ref.abs() + 6e-8
    fail = finite_ref & (err > tol)
    if fail.any():
        i = torch.nonzero(fail)[0].item()
        raise AssertionError(
            f"{what}: {int(fail.sum())} of {out.numel()} elements off; first at x={x64[i].item()!r} "
            f"g={g64[i].item()!r}: got {out64[i].item()!r}, reference {ref[i].item()!r} "
            f"(|err| {err[i].item():.3g} > tol {tol[i].item():.3g})"
        )


def same_bits(a, b):
    """Bitwise equal, except that any NaN matches any NaN (16-bit conversions canonicalize)."""
    nan_a, nan_b = torch.isnan(a).reshape(-1), torch.isnan(b).reshape(-1)
    return torch.equal(nan_a, nan_b) and torch.equal(bits(a)[~nan_a], bits(b)[~nan_b])


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def variant_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    return {v: run_worker(v, tmp) for v in runnable_variants()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_against_reference(variant, variant_results):
    if variant not in variant_results:
        pytest.skip(f"this CPU cannot run the {variant} kernels (flags in /proc/cpuinfo)")
    res = variant_results[variant]
    assert res["capability"] == variant
    for key, case in res["cases"].items():
        x, g = case["x"], case["g"]
        dtype_name = key[0]
        x64, g64 = x.double(), g.double()
        # Forward: x < 0 ? +0 : x on the storage type, bit for bit (NaN payloads, -0.0 pass);
        # torch.relu's values (it may rewrite NaN payloads itself).
        expected = torch.where(x < 0, torch.zeros_like(x), x)
        assert torch.equal(bits(case["fwd"]), bits(expected)), f"{variant} {key}: forward bits"
        assert same_bits(case["fwd"], torch.relu(x)), f"{variant} {key}: forward != torch.relu"
        if key[2] in (False, True):
            s, neg = key[1], key[2]
        elif key[2] == "table":
            s, neg = key[1], key[3]
            assert same_bits(case["bwd"], case["bwd_chunked"]), (
                f"{variant} {key}: table path differs from the computing kernel"
            )
        elif key[2] == "layouts":
            s, neg = key[1], key[3]
            assert same_bits(case["bwd_strided"], case["bwd"]), f"{variant} {key}: strided != contiguous"
            assert same_bits(case["bwd_single"], case["bwd"][:200]), (
                f"{variant} {key}: one element per call != contiguous"
            )
        else:
            s, neg = key[1], False
        ref = reference_backward(s, neg, g64, x64)
        if s == "relu":
            # The control is torch.relu's own gradient, bit for bit.
            tb = torch.ops.aten.threshold_backward(g, x, 0)
            assert same_bits(case["bwd"], tb), f"{variant} {key}: relu control != threshold_backward"
            continue
        assert_close_to_reference(case["bwd"], ref, x64, g64, dtype_name, f"{variant} {key}", s)


def test_variants_agree_on_nonfinite_results(variant_results):
    """Beyond DESIGN's finite domain (x = inf or NaN) the variants still agree with each other."""
    if len(variant_results) < 2:
        pytest.skip("only one variant runs here")
    ref_variant = variant_results["default"]
    for v, res in variant_results.items():
        for key in ref_variant["cases"]:
            a, b = ref_variant["cases"][key]["bwd"], res["cases"][key]["bwd"]
            assert torch.equal(torch.isnan(a), torch.isnan(b)), f"{v} {key}: NaN pattern differs from default"
            assert torch.equal(torch.isinf(a), torch.isinf(b)), f"{v} {key}: inf pattern differs from default"


def run_probe(env_value, code):
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if env_value is None:
        env.pop("SUGAR_CPU_CAPABILITY", None)
    else:
        env["SUGAR_CPU_CAPABILITY"] = env_value
    return subprocess.run(
        [sys.executable, "-c", "import torch, torch_sugar\n" + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_automatic_choice_is_the_best_runnable():
    proc = run_probe(None, "print(torch.ops.sugar._cpu_capability())")
    assert proc.returncode == 0, proc.stderr
    expected = runnable_variants()[-1] if is_x86_64_linux() else "default"
    assert proc.stdout.strip() == expected


def test_forcing_an_unsupported_variant_fails_clearly():
    missing = [v for v in VARIANTS if v not in runnable_variants()]
    if not missing or not is_x86_64_linux():
        pytest.skip("this CPU runs every variant")
    v = missing[0]
    proc = run_probe(v, "torch.ops.sugar.relu(torch.randn(10), 'bsilu')")
    assert proc.returncode != 0
    msg = proc.stderr
    assert f"SUGAR_CPU_CAPABILITY={v}" in msg
    assert "can run: " + ", ".join(runnable_variants()) in msg
    proc = run_probe(v, "torch.ops.sugar._cpu_capability()")
    assert proc.returncode != 0 and f"SUGAR_CPU_CAPABILITY={v}" in proc.stderr


def test_unknown_variant_name_fails_clearly():
    proc = run_probe("sse9", "torch.ops.sugar.relu(torch.randn(10), 'bsilu')")
    assert proc.returncode != 0
    assert "SUGAR_CPU_CAPABILITY must be one of default, avx2, avx512" in proc.stderr
    assert "'sse9'" in proc.stderr


def test_automatic_choice_follows_aten():
    """Unforced, the variant is ATen's (at::get_cpu_capability), so ATEN_CPU_CAPABILITY caps it."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    env.pop("SUGAR_CPU_CAPABILITY", None)
    proc = subprocess.run(
        [sys.executable, "-c", "import torch, torch_sugar\nprint(torch.ops.sugar._cpu_capability())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "default"


# ---- no AVX code outside the ISA objects ----
# The kernels (csrc/ops/cpu/vec_kernels.cpp) are compiled once per ISA with ATen's CPU_CAPABILITY
# convention: everything they define is in a namespace named after the ISA (sugar::cpu::AVX2::,
# at::vec::AVX2::) or is a template instantiated with such a type, which the demangled name shows.
ISA_FLAGS = {  # as in CMakeLists.txt
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
}
ISA_MARKERS = tuple(f"::{isa}::" for isa in ISA_FLAGS)
# An AVX instruction: a VEX/EVEX-encoded mnemonic (every one starts with "v"; verr/verw are the
# only baseline x86-64 mnemonics that do), or a ymm/zmm/mask register operand.
AVX_MNEMONIC = re.compile(r"^v(?!err\b|erw\b)[a-z0-9]+$")
AVX_OPERAND = re.compile(r"%[yz]mm\d|%k[1-7]\b")


def _library():
    import torch_sugar

    return torch_sugar.library_path


@pytest.mark.skipif(
    not is_x86_64_linux() or shutil.which("objdump") is None, reason="needs objdump on x86-64 Linux"
)
def test_avx_instructions_only_in_isa_functions():
    """Disassembles the op library: every function with an AVX instruction (any VEX/EVEX
    encoding, xmm operands included) must come from an ISA object, i.e. carry ::AVX2:: or
    ::AVX512:: in its name. A portable function with AVX code would crash on a CPU without AVX."""
    proc = subprocess.run(
        ["objdump", "-d", "-C", "--no-show-raw-insn", _library()], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    header = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    insn = re.compile(r"^\s*[0-9a-f]+:\s+(\S+)(.*)$")
    offenders, isa_functions = set(), set()
    current = None
    for line in proc.stdout.splitlines():
        m = header.match(line)
        if m:
            current = m.group(1)
            continue
        m = insn.match(line)
        if current is None or m is None:
            continue
        if AVX_MNEMONIC.match(m.group(1)) or AVX_OPERAND.search(m.group(2)):
            if any(mark in current for mark in ISA_MARKERS):
                isa_functions.add(current)
            else:
                offenders.add(current)
    assert not offenders, "AVX instructions in portable functions:\n" + "\n".join(sorted(offenders)[:20])
    assert any("::AVX2::" in f for f in isa_functions), "no AVX2 kernels found in the library"
    assert any("::AVX512::" in f for f in isa_functions), "no AVX-512 kernels found in the library"


def _isa_object(isa, tmp_path):
    """The ISA object of the last CMake build (`make build`'s build-cmake/, or setup.py's under
    build/; the one SUGAR_TEST_CMAKE_BUILD names, see test_build.py), else one compiled here."""
    builds = (
        [os.environ["SUGAR_TEST_CMAKE_BUILD"]]
        if os.environ.get("SUGAR_TEST_CMAKE_BUILD")
        else ["build-cmake", "build"]
    )
    patterns = [
        os.path.join(ROOT, d, "**", f"torch_sugar_cpu_{isa}.dir", "**", "vec_kernels.cpp.o") for d in builds
    ]
    objects = sorted((o for p in patterns for o in glob.glob(p, recursive=True)), key=os.path.getmtime)
    if objects:
        return objects[-1]
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no built object and no C++ compiler")
    from torch.utils.cpp_extension import include_paths

    obj = str(tmp_path / f"vec_kernels_{isa}.o")
    cmd = [
        cxx,
        "-std=c++20",
        "-O3",
        "-fPIC",
        "-fvisibility=hidden",
        "-c",
        *ISA_FLAGS[isa],
        f"-DCPU_CAPABILITY={isa}",
        f"-DCPU_CAPABILITY_{isa}",
        os.path.join(ROOT, "csrc", "ops", "cpu", "vec_kernels.cpp"),
        "-o",
        obj,
        "-I",
        os.path.join(ROOT, "csrc"),
    ] + [f"-I{p}" for p in include_paths()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return obj


@pytest.mark.skipif(not is_x86_64_linux() or shutil.which("nm") is None, reason="needs nm on x86-64 Linux")
@pytest.mark.parametrize("isa", list(ISA_FLAGS))
def test_isa_objects_define_only_isa_symbols(isa, tmp_path):
    """Every externally visible (mergeable) symbol an ISA object defines is named after its ISA,
    so the linker can never pick its AVX copy of an inline function for portable callers."""
    obj = _isa_object(isa, tmp_path)
    proc = subprocess.run(["nm", "-C", "--defined-only", obj], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    external = []
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("T", "W", "V", "u", "D", "B", "R", "i"):
            external.append(parts[2])
    assert any(f"sugar::cpu::{isa}::kernel_table" in s for s in external), f"{obj}: no kernel table"
    stray = [s for s in external if f"::{isa}::" not in s]
    assert not stray, f"{obj} defines symbols not named after {isa}:\n" + "\n".join(stray[:20])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        sys.exit(pytest.main([__file__, "-q"]))
