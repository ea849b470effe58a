"""The CPU kernel variants (default, avx2, avx512) against a float64 reference.

Every variant this machine can run is forced with SUGAR_CPU_CAPABILITY in a fresh subprocess (the
choice is made once per process), which computes forward and backward of every surrogate for
float32, bfloat16, float16 and float64 inputs (contiguous runs of every length modulo the vector
width, long runs split across threads, strided views, special values). The parent compares the
results against the surrogate derivatives of DESIGN.md evaluated here in float64 with torch's
stable primitives (not csrc/ops/surrogate_math.h), and the forward pass bit for bit against
torch.relu.

Also checked: the automatic choice is the best variant the CPU has (from /proc/cpuinfo), forcing
an unsupported or unknown variant fails with a clear error, and no AVX instruction of the ISA
translation units can reach the portable code (symbols and disassembly).
"""
import glob
import math
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VARIANTS = ("default", "avx2", "avx512")
SURROGATES = ("relu", "bsilu", "nelu", "elu", "selu", "leaky_relu", "gelu", "gelu_tanh", "silu",
              "mish")
DTYPES = ("float32", "bfloat16", "float16", "float64")
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
        [0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 1e-38, -1e-38, 0.5, -0.5, 1.0, -1.0,
         -0.75, -0.7517915, -1.1906, -1.278464, -2.7, 30.0, -30.0, 50.0, -50.0, 50.5, -50.5,
         88.0, -88.0, 103.0, -103.0, 105.0, -105.0, 1e4, -1e4, 1e19, -1e19, 1e30, -1e30,
         3.4028234663852886e38, -3.4028234663852886e38,
         float("nan"), float("inf"), float("-inf")], dtype=torch.float64)
    parts = [specials, torch.linspace(-100, 100, 4001, dtype=torch.float64),
             torch.randn(3000, generator=gen, dtype=torch.float64) * 3]
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
    for dtype_name in DTYPES:
        dtype = getattr(torch, dtype_name)
        x = x64.to(dtype)
        g = g64.to(dtype)
        for s in SURROGATES:
            for neg in (False, True):
                key = (dtype_name, s, neg)
                result["cases"][key] = {
                    "x": x, "g": g,
                    "fwd": torch.ops.sugar.relu(x, s, None, neg),
                    "bwd": torch.ops.sugar.relu_backward(g, x, s, None, neg),
                }
        # Every length modulo the vector widths (tails), one surrogate per dtype is enough for
        # the loop structure; then strided (non-contiguous) operands.
        for n in LENGTHS:
            xn = (torch.randn(n, generator=gen, dtype=torch.float64) * 4).to(dtype)
            gn = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
            result["cases"][(dtype_name, "bsilu", "len", n)] = {
                "x": xn, "g": gn,
                "fwd": torch.ops.sugar.relu(xn, "bsilu", None, False),
                "bwd": torch.ops.sugar.relu_backward(gn, xn, "bsilu", None, False),
            }
        # NaN payloads, signs of NaN and zero, subnormals and infinities: the forward pass returns
        # the input's bits wherever x is not negative.
        patterns = {
            "float32": [0x7FC00001, 0xFFC00001, 0x7F800001, 0xFF800000, 0x7F800000, 0x80000000,
                        0x80000001, 0x00000001, 0xBF800000],
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
                "x": xp, "g": torch.ones_like(xp), "fwd": torch.ops.sugar.relu(xp, "relu", None, False),
                "bwd": torch.ops.sugar.relu_backward(torch.ones_like(xp), xp, "relu", None, False)}
        # Large 16-bit tensors take d(x) from a table of all 65536 inputs (kernels.h): the
        # result must be bit for bit the computing kernel's, which small chunks still use.
        if dtype_name in ("bfloat16", "float16"):
            reps = 80000 // x.numel() + 1
            xb, gb = x.repeat(reps), g.flip(0).repeat(reps)
            for s in SURROGATES:
                for neg in (False, True):
                    big = torch.ops.sugar.relu_backward(gb, xb, s, None, neg)
                    chunks = torch.cat([torch.ops.sugar.relu_backward(gc, xc, s, None, neg)
                                        for gc, xc in zip(gb.split(9000), xb.split(9000))])
                    result["cases"][(dtype_name, s, "table", neg)] = {
                        "x": xb, "g": gb, "fwd": torch.relu(xb), "bwd": big, "bwd_chunked": chunks}
        base = (torch.randn(64, 33, generator=gen, dtype=torch.float64) * 4).to(dtype)
        xs = base[:, 1::2]  # strided rows
        gs = torch.randn(33, 64, generator=gen, dtype=torch.float64).to(dtype).t()[:, 1::2]
        result["cases"][(dtype_name, "mish", "strided", 0)] = {
            "x": xs.contiguous(), "g": gs.contiguous(),
            "fwd": torch.ops.sugar.relu(xs, "mish", None, False).contiguous(),
            "bwd": torch.ops.sugar.relu_backward(gs, xs, "mish", None, False).contiguous(),
        }
    torch.save(result, out_path)


def run_worker(variant, tmp_path):
    out = tmp_path / f"variant_{variant}.pt"
    env = dict(os.environ, SUGAR_CPU_CAPABILITY=variant)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"worker for {variant} failed:\n{proc.stdout}\n{proc.stderr}"
    return torch.load(out, weights_only=False)


# ---------------------------------------------------------------------------------------------
# The float64 reference: DESIGN.md's d(x) = s'(x), evaluated with stable torch primitives.

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
DEFAULT_ALPHA = {"bsilu": 1.67, "nelu": 0.01, "elu": 1.0, "leaky_relu": 0.01}


def reference_d(s, x):
    """d(x) for float64 x."""
    a = DEFAULT_ALPHA.get(s)
    pos = x > 0
    if s == "relu":
        return pos.double()
    if s in ("bsilu", "silu"):
        a = a if s == "bsilu" else 0.0
        sig, sig_neg = torch.sigmoid(x), torch.sigmoid(-x)  # 1 - sigma without cancellation
        return sig + (x + a) * sig * sig_neg
    if s == "nelu":
        xn = torch.where(pos, torch.zeros_like(x), x)
        return torch.where(pos, torch.ones_like(x), 2 * a * xn / (1 + xn * xn) ** 2)
    if s == "elu":
        return torch.where(pos, torch.ones_like(x), a * torch.exp(torch.clamp(x, max=0)))
    if s == "selu":
        return torch.where(pos, torch.full_like(x, SELU_LAMBDA),
                           SELU_LAMBDA * SELU_ALPHA * torch.exp(torch.clamp(x, max=0)))
    if s == "leaky_relu":
        return torch.where(pos, torch.ones_like(x), torch.full_like(x, a))
    if s == "gelu":
        # Phi from erfc: torch.special.ndtr computes 0.5 (1 + erf) and is 0 below x = -8.
        cdf = 0.5 * torch.erfc(-x / math.sqrt(2))
        return cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if s == "gelu_tanh":
        c = math.sqrt(2 / math.pi)
        u = c * (x + 0.044715 * x ** 3)
        du = c * (1 + 3 * 0.044715 * x * x)
        sech2 = 1 / torch.cosh(u) ** 2  # 0 where cosh overflows
        # 0.5 (1 + tanh u) = sigmoid(2u), without cancellation for u << 0
        return torch.sigmoid(2 * u) + 0.5 * x * sech2 * torch.nan_to_num(du, posinf=0.0)
    if s == "mish":
        sp = torch.nn.functional.softplus(x, threshold=30)
        t = torch.tanh(sp)
        sech2 = 1 / torch.cosh(sp) ** 2
        return t + x * sech2 * torch.sigmoid(x)
    raise ValueError(s)


def reference_backward(s, neg, g, x):
    d = reference_d(s, x)
    if s == "relu":
        return torch.where(x > 0, g, torch.zeros_like(g))
    out = g * d
    if neg:
        out = torch.where(x > 0, g, out)
    return out


def assert_close_to_reference(out, ref, x64, g64, dtype_name, what):
    """|out - ref| within the float32 arithmetic's error, plus one rounding for 16-bit types."""
    out64 = out.double()
    finite_ref = torch.isfinite(ref)
    # Where the reference is finite, so must the kernel be (DESIGN: d finite for finite x).
    bad = finite_ref & ~torch.isfinite(out64)
    assert not bad.any(), f"{what}: non-finite output where the reference is finite at x={x64[bad][:5].tolist()}"
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
            tol = tol + 2.0 ** -8 * ref.abs() + 1e-40
        elif dtype_name == "float16":
            tol = tol + 2.0 ** -11 * ref.abs() + 6e-8
    fail = finite_ref & (err > tol)
    if fail.any():
        i = torch.nonzero(fail)[0].item()
        raise AssertionError(
            f"{what}: {int(fail.sum())} of {out.numel()} elements off; first at x={x64[i].item()!r} "
            f"g={g64[i].item()!r}: got {out64[i].item()!r}, reference {ref[i].item()!r} "
            f"(|err| {err[i].item():.3g} > tol {tol[i].item():.3g})")


def bits(t):
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def same_bits(a, b):
    """Bitwise equal, except that any NaN matches any NaN (16-bit conversions canonicalize)."""
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
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
            assert same_bits(case["bwd"], case["bwd_chunked"]), \
                f"{variant} {key}: table path differs from the computing kernel"
        else:
            s, neg = key[1], False
        ref = reference_backward(s, neg, g64, x64)
        if s == "relu":
            # The control is torch.relu's own gradient, bit for bit.
            tb = torch.ops.aten.threshold_backward(g, x, 0)
            assert same_bits(case["bwd"], tb), f"{variant} {key}: relu control != threshold_backward"
            continue
        assert_close_to_reference(case["bwd"], ref, x64, g64, dtype_name, f"{variant} {key}")


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
    if env_value is None:
        env.pop("SUGAR_CPU_CAPABILITY", None)
    else:
        env["SUGAR_CPU_CAPABILITY"] = env_value
    return subprocess.run([sys.executable, "-c", "import torch, torch_sugar\n" + code],
                          env=env, capture_output=True, text=True, timeout=300)


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


# ---- no AVX code outside the ISA translation units ----

def _library():
    import torch_sugar

    return torch_sugar.library_path


ISA_MARKERS = ("sugar::cpu::avx2::", "sugar::cpu::avx512::")


@pytest.mark.skipif(not is_x86_64_linux() or shutil.which("objdump") is None,
                    reason="needs objdump on x86-64 Linux")
def test_avx_instructions_only_in_isa_functions():
    """Disassembles the op library: every function that touches a ymm/zmm register (or an
    AVX-512 mask) must belong to an ISA translation unit, i.e. carry avx2:: or avx512:: in its
    name (namespaced functions and templates instantiated with avx2::Vec / avx512::Vec). A
    portable function with AVX code would crash on a CPU without AVX."""
    proc = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", _library()],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    header = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    avx = re.compile(r"%[yz]mm\d|%k[1-7]\b")
    offenders, isa_functions = set(), set()
    current = None
    for line in proc.stdout.splitlines():
        m = header.match(line)
        if m:
            current = m.group(1)
            continue
        if current and avx.search(line):
            if any(mark in current for mark in ISA_MARKERS):
                isa_functions.add(current)
            else:
                offenders.add(current)
    assert not offenders, "AVX instructions in portable functions:\n" + "\n".join(sorted(offenders)[:20])
    assert any("avx2::" in f for f in isa_functions), "no AVX2 kernels found in the library"


@pytest.mark.skipif(not is_x86_64_linux() or shutil.which("nm") is None, reason="needs nm on x86-64 Linux")
@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_isa_objects_define_only_isa_symbols(isa, tmp_path):
    """Every externally visible (mergeable) symbol an ISA object file defines is named after its
    ISA, so the linker can never pick its AVX copy of an inline function for portable callers."""
    objects = sorted(glob.glob(os.path.join(ROOT, "build", "**", f"relu_kernel_{isa}.o"), recursive=True),
                     key=os.path.getmtime)
    if objects:
        obj = objects[-1]
    else:
        cxx = shutil.which("c++") or shutil.which("g++")
        if cxx is None:
            pytest.skip("no built object and no C++ compiler")
        from torch.utils.cpp_extension import include_paths

        obj = str(tmp_path / f"relu_kernel_{isa}.o")
        cmd = [cxx, "-std=c++17", "-O3", "-fPIC", "-fvisibility=hidden", "-c",
               os.path.join(ROOT, "csrc", "ops", "cpu", f"relu_kernel_{isa}.cpp"), "-o", obj,
               "-I", os.path.join(ROOT, "csrc")] + [f"-I{p}" for p in include_paths()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["nm", "-C", "--defined-only", obj], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    external = []
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("T", "W", "V", "u", "D", "B", "R", "i"):
            external.append(parts[2])
    assert external, f"{obj} defines no symbols"
    stray = [s for s in external if f"sugar::cpu::{isa}::" not in s]
    assert not stray, f"{obj} defines symbols not named after {isa}:\n" + "\n".join(stray[:20])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        sys.exit(pytest.main([__file__, "-q"]))
