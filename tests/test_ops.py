"""sugar::relu and sugar::relu_backward against torch.relu and the float64 reference, on every
device (the `device` fixture: the CPU, and CUDA where there is a GPU); on CUDA also against the
CPU kernels. CUDA-only concerns (streams, graphs, > 2^31 elements, a second GPU, the messages of a
CPU-only build) are in test_cuda.py."""

import math
import re

import numpy as np
import pytest
import torch

import torch_sugar
from conftest import DEVICES, DTYPES, assert_agrees_with_cpu
from reference import (
    ALPHA_SURROGATES,
    DEFAULT_ALPHA,
    SPECIAL_X,
    SURROGATES,
    TOLERANCES,
    bits,
    grad_input,
    grad_self_second,
)

# The kinks, huge and tiny magnitudes (reference.SPECIAL_X), and the tolerances of a backward
# against the float64 reference, by dtype (reference.TOLERANCES).
SPECIAL = SPECIAL_X
TOLS = {getattr(torch, name): tol for name, tol in TOLERANCES.items()}


def sample_x(dtype, device, n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    rand = torch.randn(n, generator=g, dtype=torch.float64) * 4
    x = torch.cat([torch.tensor(SPECIAL, dtype=torch.float64), rand])
    return x.to(dtype).to(device)


def as_np(t):
    return t.detach().cpu().double().numpy()


def assert_close_ref(out, ref, dtype, what):
    rtol, atol = TOLS[dtype]
    got = as_np(out).ravel()
    ref = np.broadcast_to(ref, out.shape).ravel()
    ok = np.abs(got - ref) <= atol + rtol * np.abs(ref)
    if not ok.all():
        i = int(np.argmin(ok))
        raise AssertionError(
            f"{what}: {int((~ok).sum())} mismatches, first at index {i}: got {got[i]!r}, reference {ref[i]!r}"
        )


# ---------------------------------------------------------------- forward


def layouts(device, dtype):
    base = torch.randn(4, 6, 5, 7, device=device).to(dtype)
    base.view(-1)[::7] = -0.0
    base.view(-1)[3] = float("nan")
    base.view(-1)[4] = float("inf")
    base.view(-1)[5] = float("-inf")
    return {
        "contiguous": base,
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "transposed": base.transpose(1, 3),
        "sliced": base[:, ::2, 1:, ::3],
        "permuted_sliced": base.permute(3, 1, 0, 2)[::2],
        "expanded": base[:1, :1].expand(3, 4, 5, 7),
        "zero_dim": torch.tensor(-1.5, device=device).to(dtype),
        "empty": torch.empty(0, 3, device=device, dtype=dtype),
        "one_element": torch.tensor([2.0], device=device).to(dtype),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_torch_relu(device, dtype):
    for name, x in layouts(device, dtype).items():
        y = torch.ops.sugar.relu(x)
        ref = torch.relu(x)
        assert y.dtype == ref.dtype and y.shape == ref.shape and y.device == ref.device, name
        # Bitwise (so -0.0 stays -0.0), except that NaN only has to stay NaN: torch.relu itself
        # rewrites bfloat16 NaN payloads in its vectorized path.
        nan = torch.isnan(ref)
        assert torch.equal(torch.isnan(y), nan), name
        assert torch.equal(bits(y)[~nan.reshape(-1)], bits(ref)[~nan.reshape(-1)]), name
        assert y.stride() == ref.stride(), (name, y.stride(), ref.stride())
        assert y.data_ptr() != x.data_ptr() or x.numel() == 0, name


def stride_cases(device):
    """(name, tensor) pairs of layouts whose output strides torch.relu decides in different ways
    (TensorIterator: contiguous, channels_last, dense in another order, anything else)."""

    def strided(size, stride):
        return (
            torch.empty_strided(size, stride, device=device).normal_()
            if device != "meta"
            else torch.empty_strided(size, stride, device=device)
        )

    base = torch.randn(4, 6, 5, 7).to(device)
    cl = torch.channels_last
    return [
        ("contiguous", base),
        # Dense tensors with size-1 dims whose strides are not the standard ones: torch.relu gives
        # them contiguous strides (c10's contiguity test ignores size-1 dims).
        ("(2,3,1,1) strides (3,1,3,3)", strided((2, 3, 1, 1), (3, 1, 3, 3))),
        ("(1,3,1,1) strides (100,1,7,9)", strided((1, 3, 1, 1), (100, 1, 7, 9))),
        ("(2,1,5) strides (5,77,1)", strided((2, 1, 5), (5, 77, 1))),
        (
            "global pooling output",
            torch.randn(2, 8, 6, 6).to(device).contiguous(memory_format=cl).mean((2, 3), keepdim=True),
        ),
        ("channels_last", base.contiguous(memory_format=cl)),
        ("channels_last with C=1", torch.randn(2, 1, 4, 5).to(device).contiguous(memory_format=cl)),
        (
            "channels_last_3d",
            torch.randn(2, 3, 4, 5, 6).to(device).contiguous(memory_format=torch.channels_last_3d),
        ),
        ("transposed", torch.randn(8, 9).to(device).t()),
        ("permuted", base.permute(2, 0, 3, 1)),
        ("permuted with size-1 dims", torch.randn(3, 1, 4, 1).to(device).permute(3, 2, 1, 0)),
        ("sliced with gaps", base[:, ::2, 1:, ::3]),
        ("sliced then permuted", base.permute(3, 1, 0, 2)[::2]),
        ("expanded (stride 0)", base[:1, :1].expand(3, 4, 5, 7)),
        ("expanded size-1 dim", torch.randn(3, 1).to(device).expand(3, 4)),
        ("overlapping", strided((3, 3), (1, 1))),
        ("size-0 dim", torch.randn(3, 5, 2).to(device).transpose(0, 2)[:, :0]),
        ("size-0 dim, odd strides", strided((2, 0, 3), (1, 10, 100))),
        ("0-d", torch.tensor(-1.5, device=device)),
        ("one element, stride 5", torch.randn(10).to(device)[::5][:1]),
        ("one element, 3-d", strided((1, 1, 1), (9, 4, 2))),
    ]


@pytest.mark.parametrize("dev", DEVICES + ["meta"])
def test_output_strides_are_torch_relus(dev):
    """Every kernel (CPU, CUDA, Meta) lays its outputs out as torch.relu lays out relu(x), including
    the dense tensors with unusual strides on size-1 dims that empty_like(x) would keep. The two
    backward ops follow x the same way (their output has x's shape; its layout is x's by relu's rule)."""
    for name, x in stride_cases(dev):
        # On meta, the strides torch.relu gets on a real (CPU) tensor of the same layout: the Meta
        # kernels must agree with the real ones (opcheck's fake-tensor test), and torch's own meta
        # relu (a Python reference) differs from its CPU/CUDA kernels, e.g. (2,1,5) with strides
        # (5,77,1) gives (5,10,1) on meta but (5,5,1) on CPU.
        real = x if dev != "meta" else torch.empty_strided(x.size(), x.stride())
        want = torch.relu(real).stride()
        g = torch.ones(x.shape, device=dev)  # contiguous: the gradient follows x, not grad_output
        outs = {
            "relu": torch.ops.sugar.relu(x, "bsilu", None, False),
            "relu_backward": torch.ops.sugar.relu_backward(g, x, "bsilu", None, False),
            "relu_backward, grad laid out as x": torch.ops.sugar.relu_backward(
                torch.ones_like(x), x, "gelu", None, True
            ),
            "_relu_double_backward": torch.ops.sugar._relu_double_backward(g, g, x, "mish", None, False),
        }
        for op, out in outs.items():
            assert out.shape == x.shape and out.device == x.device, (name, op)
            assert out.stride() == want, f"{name}, {op}: strides {out.stride()}, torch.relu's {want}"
        if dev != "meta":
            assert torch.equal(outs["relu"], torch.relu(x)), name
            want_grad = torch.ops.sugar.relu_backward(g.contiguous(), x.contiguous(), "bsilu", None, False)
            torch.testing.assert_close(outs["relu_backward"], want_grad, rtol=1e-6, atol=1e-7, msg=name)


def test_forward_output_layout_follows_input(device):
    x = torch.randn(2, 3, 4, 5, device=device).contiguous(memory_format=torch.channels_last)
    assert torch.ops.sugar.relu(x).is_contiguous(memory_format=torch.channels_last)
    xt = torch.randn(8, 9, device=device).t()
    assert torch.ops.sugar.relu(xt).stride() == torch.relu(xt).stride()


def test_forward_large_and_parallel_matches_single_thread(device):
    # Larger than the parallel grain, strided, so the threaded strided path runs.
    x = torch.randn(300, 1000, device=device)[:, ::3]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = torch.ops.sugar.relu(x)
        g1 = torch.ops.sugar.relu_backward(torch.ones_like(x), x, "mish", None, False)
        torch.set_num_threads(max(2, threads))
        y2 = torch.ops.sugar.relu(x)
        g2 = torch.ops.sugar.relu_backward(torch.ones_like(x), x, "mish", None, False)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(y1, y2) and torch.equal(g1, g2)
    assert torch.equal(y1, torch.relu(x))


# ---------------------------------------------------------------- backward


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_backward_matches_reference(device, dtype, surrogate, negative_only):
    x = sample_x(dtype, device)
    g = torch.rand(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 0.5
    g = g.to(dtype).to(device)
    out = torch.ops.sugar.relu_backward(g, x, surrogate, None, negative_only)
    assert out.dtype == dtype and out.shape == x.shape
    ref = grad_input(surrogate, as_np(g), as_np(x), None, negative_only)
    assert_close_ref(out, ref, dtype, f"{surrogate} negative_only={negative_only} {dtype}")


@pytest.mark.parametrize(
    "surrogate,alpha",
    [("bsilu", 0.5), ("bsilu", 0.0), ("nelu", 0.1), ("elu", 0.3), ("leaky_relu", 0.2), ("leaky_relu", 1.0)],
)
def test_backward_with_alpha(device, surrogate, alpha):
    x = sample_x(torch.float64, device)
    g = torch.randn_like(x)
    out = torch.ops.sugar.relu_backward(g, x, surrogate, alpha, False)
    assert_close_ref(out, grad_input(surrogate, as_np(g), as_np(x), alpha), torch.float64, surrogate)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_double_backward_op_matches_reference(device, dtype, surrogate, negative_only):
    x = sample_x(dtype, device)
    g = torch.randn_like(x)
    gg = torch.randn_like(x)
    out = torch.ops.sugar._relu_double_backward(gg, g, x, surrogate, None, negative_only)
    ref = grad_self_second(surrogate, as_np(gg), as_np(g), as_np(x), None, negative_only)
    # s'' adds terms up to ~60 in size that cancel to O(1) (gelu_tanh, mish), so float32 is held
    # to an absolute error of ~60 ulp of those terms, scaled by |gg * g|.
    rtol, atol = (1e-12, 1e-13) if dtype == torch.float64 else (1e-5, 4e-6)
    scale = np.maximum(np.abs(as_np(gg) * as_np(g)), 1.0)
    err = np.abs(as_np(out) - ref)
    bad = err > atol * scale + rtol * np.abs(ref)
    assert not bad.any(), (
        f"s'' of {surrogate}: {int(bad.sum())} mismatches, e.g. x={as_np(x)[bad][:3]}, "
        f"got {as_np(out)[bad][:3]}, reference {ref[bad][:3]}"
    )


def test_relu_control_is_bitwise_torch_relu_gradient(device):
    x = torch.tensor(
        [-2.0, -0.0, 0.0, 1e-30, 3.0, float("nan"), float("inf"), float("-inf"), 5.0],
        device=device,
        requires_grad=True,
    )
    g = torch.tensor([1.0, float("inf"), float("nan"), 2.0, float("nan"), 4.0, 5.0, 6.0, -0.0], device=device)
    (ours,) = torch.autograd.grad(torch.ops.sugar.relu(x, "relu"), x, g)
    (theirs,) = torch.autograd.grad(torch.relu(x), x, g)
    assert torch.equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_gradients_finite_for_every_finite_input(device, dtype, surrogate):
    info = torch.finfo(dtype)
    vals = [
        info.max,
        -info.max,
        info.tiny,
        -info.tiny,
        info.smallest_normal / 4,
        -info.eps,
        1e4,
        -1e4,
        1e15,
        -1e15,
        3e19,
        -3e19,
    ]
    x = torch.tensor(vals, dtype=torch.float64).clamp(-info.max, info.max).to(dtype).to(device)
    ones = torch.ones_like(x)
    for neg in (False, True):
        d = torch.ops.sugar.relu_backward(ones, x, surrogate, None, neg)
        d2 = torch.ops.sugar._relu_double_backward(ones, ones, x, surrogate, None, neg)
        assert torch.isfinite(d).all(), (surrogate, dtype, neg, d)
        assert torch.isfinite(d2).all(), (surrogate, dtype, neg, d2)


def test_nan_propagates_in_backward(device):
    x = torch.tensor([float("nan"), 1.0], device=device)
    g = torch.ones_like(x)
    out = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
    assert math.isnan(out[0].item()) and not math.isnan(out[1].item())


def test_surrogate_table_matches_design():
    rows = {s.name: s for s in torch_sugar.surrogates()}
    assert set(rows) == set(SURROGATES)
    for name, alpha in DEFAULT_ALPHA.items():
        assert rows[name].default_alpha == alpha, name
        assert rows[name].description
    assert rows["swish"].alias_of == "silu"


def test_swish_is_silu(device):
    x = sample_x(torch.float32, device)
    g = torch.randn_like(x)
    assert torch.equal(
        torch.ops.sugar.relu_backward(g, x, "swish", None, False),
        torch.ops.sugar.relu_backward(g, x, "silu", None, False),
    )


def test_dead_unit_gets_gradient_only_with_sugar(device):
    x = torch.full((4,), -1.5, device=device, requires_grad=True)  # a dead unit's pre-activations
    (g_relu,) = torch.autograd.grad(torch_sugar.relu(x, "relu").sum(), x)
    (g_sugar,) = torch.autograd.grad(torch_sugar.relu(x, "bsilu").sum(), x)
    assert torch.all(g_relu == 0)
    assert torch.all(g_sugar != 0)


# ---------------------------------------------------------------- bad input


def raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64])
def test_rejects_non_floating_dtypes(dtype):
    x = torch.zeros(3, dtype=dtype)
    expected = str(dtype).replace(".", r"\.")
    raises(
        TypeError,
        rf"sugar::relu: self must be a floating-point tensor.*got dtype {expected}",
        lambda: torch.ops.sugar.relu(x),
    )
    raises(
        TypeError,
        r"sugar::relu_backward: self must be a floating-point",
        lambda: torch.ops.sugar.relu_backward(x, x, "bsilu", None, False),
    )


def test_rejects_unknown_surrogate_and_lists_valid_names():
    x = torch.randn(3)
    with pytest.raises(ValueError) as info:
        torch.ops.sugar.relu(x, "swishh")
    msg = str(info.value)
    assert "unknown surrogate 'swishh'" in msg
    for name in SURROGATES:
        assert name in msg


@pytest.mark.parametrize("surrogate", [s for s in SURROGATES if s not in ALPHA_SURROGATES])
def test_rejects_alpha_for_surrogates_without_one(surrogate):
    raises(
        ValueError,
        rf"surrogate '{surrogate}' takes no alpha, but alpha=0.5 was given",
        lambda: torch.ops.sugar.relu(torch.randn(3), surrogate, 0.5),
    )


@pytest.mark.parametrize(
    "surrogate,alpha,rule",
    [
        ("bsilu", -0.1, r"in \[0, 1e30\]"),
        ("bsilu", float("inf"), r"in \[0, 1e30\]"),
        ("bsilu", float("nan"), r"in \[0, 1e30\]"),
        ("nelu", 0.0, r"in \(0, 5e37\]"),
        ("nelu", -1.0, r"in \(0, 5e37\]"),
        ("elu", 0.0, r"in \(0, 3e38\]"),
        ("leaky_relu", 1.5, r"in \(0, 1\]"),
        ("leaky_relu", 0.0, r"in \(0, 1\]"),
    ],
)
def test_rejects_bad_alpha(surrogate, alpha, rule):
    raises(
        ValueError,
        rf"alpha for surrogate '{surrogate}' must be .*{rule}.*but got alpha={alpha}",
        lambda: torch.ops.sugar.relu(torch.randn(3), surrogate, alpha),
    )
    raises(
        ValueError,
        rf"sugar::relu_backward: alpha for surrogate '{surrogate}'",
        lambda: torch.ops.sugar.relu_backward(torch.randn(3), torch.randn(3), surrogate, alpha, False),
    )


# ---------------------------------------------------------------- agreement with the CPU kernels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])  # none: skipped
def test_kernels_agree_with_the_cpu_kernels(device, dtype):
    x = sample_x(dtype, "cpu", n=4099)
    x[7], x[8], x[9] = float("nan"), float("inf"), float("-inf")
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    gg = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(dtype)
    y = torch.ops.sugar.relu(x.to(device))
    assert torch.equal(bits(y.cpu()), bits(torch.ops.sugar.relu(x)))  # the input's bits pass
    for surrogate in SURROGATES:
        for negative_only in (False, True):
            args = (surrogate, None, negative_only)
            got = torch.ops.sugar.relu_backward(g.to(device), x.to(device), *args)
            assert_agrees_with_cpu(
                got, torch.ops.sugar.relu_backward(g, x, *args), dtype, f"relu_backward {args}"
            )
            got2 = torch.ops.sugar._relu_double_backward(gg.to(device), g.to(device), x.to(device), *args)
            assert_agrees_with_cpu(
                got2,
                torch.ops.sugar._relu_double_backward(gg, g, x, *args),
                dtype,
                f"_relu_double_backward {args}",
            )


# ---------------------------------------------------------------- layouts, alignment, tails


def operand_layouts(dtype, device):
    """(name, x, grad) triples: the flat path (every operand dense with the same offsets) and the
    strided one of the kernels, with grad laid out like x or not."""
    n = 2 * 3 * 17 * 19
    base = sample_x(dtype, device, n=n - len(SPECIAL)).reshape(2, 3, 17, 19)
    grad = torch.rand(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 0.5
    grad = grad.to(dtype).to(device).reshape(2, 3, 17, 19)
    cl = torch.channels_last
    pooled = base.mean((2, 3), keepdim=True)  # (2, 3, 1, 1)
    return [
        ("contiguous", base, grad),
        ("channels_last", base.contiguous(memory_format=cl), grad.contiguous(memory_format=cl)),
        ("transposed", base.transpose(1, 3), grad.transpose(1, 3)),
        ("sliced with step", base[:, :, ::2, 1::3], grad[:, :, ::2, 1::3]),
        ("self contiguous, grad transposed", base.transpose(2, 3).contiguous(), grad.transpose(2, 3)),
        ("self channels_last, grad contiguous", base.contiguous(memory_format=cl), grad.contiguous()),
        ("grad expanded (stride 0)", base, torch.ones((), dtype=dtype, device=device).expand(base.shape)),
        # Dense in the same order, strides differing only on size-1 dims (after global pooling).
        (
            "(2,3,1,1): contiguous and channels_last strides",
            pooled.contiguous(),
            grad[:, :, :1, :1].contiguous(memory_format=cl),
        ),
        ("0-dim", base[0, 0, 0, 0].clone(), grad[0, 0, 0, 0].clone()),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_layouts_match_reference(device, dtype):
    for name, x, g in operand_layouts(dtype, device):
        gx = torch.ops.sugar.relu_backward(g, x, "mish", None, False)
        assert gx.stride() == torch.relu(x).stride(), name
        assert_close_ref(gx, grad_input("mish", as_np(g), as_np(x)), dtype, f"relu_backward, {name}")
        ggx = torch.ops.sugar._relu_double_backward(g, g, x, "bsilu", None, True)
        assert ggx.stride() == torch.relu(x).stride(), name
        ref = grad_self_second("bsilu", as_np(g), as_np(g), as_np(x), None, True)
        np.testing.assert_allclose(
            as_np(ggx),
            ref,
            rtol=TOLS[dtype][0] * 4,
            atol=TOLS[dtype][1] * 10,
            err_msg=f"_relu_double_backward, {name}",
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_misaligned_storage_and_tails(device, dtype, offset):
    """Storage offsets break 16-byte alignment (CUDA's element-wise flat path, unaligned SIMD
    loads on the CPU); odd lengths leave a tail after the last whole vector."""
    for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 127, 4096 + 5, 2**17 + 3]:
        xbuf = sample_x(dtype, device, n=n + 32, seed=n)
        gbuf = sample_x(dtype, device, n=n + 32, seed=n + 1)
        x = xbuf[offset : offset + n]
        goff = (offset + 1) % 3  # grad aligned where x is not, or misaligned differently
        g = gbuf[goff : goff + n]
        assert x.is_contiguous() and x.numel() == n and g.numel() == n
        y = torch.ops.sugar.relu(x, "bsilu", None, False)
        assert torch.equal(y, torch.relu(x)), n
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        assert_close_ref(gx, grad_input("bsilu", as_np(g), as_np(x)), dtype, f"n={n} offset={offset}")
        # The double backward, element by element the same math whatever the alignment: bitwise
        # what the same values give in freshly allocated (aligned) tensors.
        ggx = torch.ops.sugar._relu_double_backward(g, g, x, "gelu", None, False)
        aligned = torch.ops.sugar._relu_double_backward(g.clone(), g.clone(), x.clone(), "gelu", None, False)
        assert torch.equal(bits(ggx), bits(aligned)), f"double backward n={n} offset={offset}"


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (0, 4)])
def test_empty_tensors(device, shape):
    x = torch.empty(shape, device=device)
    y = torch.ops.sugar.relu(x, "bsilu", None, False)
    assert y.shape == x.shape and y.device == x.device
    gx = torch.ops.sugar.relu_backward(torch.empty_like(x), x, "gelu", None, False)
    assert gx.shape == x.shape and gx.device == x.device
    ggx = torch.ops.sugar._relu_double_backward(x, x, x, "gelu", None, False)
    assert ggx.shape == x.shape and ggx.device == x.device


# ---------------------------------------------------------------- alpha ranges


def alpha_bounds(surrogate):
    """(low, high) of the alpha range the op library states (torch_sugar.surrogates())."""
    rule = {s.name: s.alpha_range for s in torch_sugar.surrogates()}[surrogate]
    m = re.fullmatch(r"a number in [\[(](\S+), (\S+)\]", rule)
    assert m, f"{surrogate}: unexpected alpha_range {rule!r}"
    return float(m.group(1)), float(m.group(2))


def extreme_inputs(dtype, device):
    """Every finite value of a 16-bit dtype (so the lookup-table path runs too); for float32 and
    float64 the values where the formulas overflow or cancel: +-max, tiny, subnormal, 0, -0,
    where x^2 overflows, where exp underflows, and d's and s''s extrema of nelu (x = -1/sqrt(3), -1)."""
    info = torch.finfo(dtype)
    if info.bits == 16:
        every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
        return every[torch.isfinite(every)].repeat(2).to(device)  # > 2^16 elements: the table path
    vals = [
        info.max,
        -info.max,
        info.max / 2,
        -info.max / 3,
        info.tiny,
        -info.tiny,
        info.tiny * info.eps,
        -info.tiny * info.eps,
        0.0,
        -0.0,
        1.0,
        -1.0,
        -1 / math.sqrt(3),
        0.5,
        -0.5,
        1e19,
        -1e19,
        2e19,
        -2e19,
        1e154,
        -1e154,
        1e155,
        -1e155,
        -88.0,
        -104.0,
        -745.0,
        50.0,
        -50.0,
        51.0,
        -51.0,
    ]
    x = torch.tensor(vals, dtype=torch.float64).clamp(-info.max, info.max).to(dtype)
    return x.repeat(8).to(device)  # 240 elements, contiguous: the vectorized kernels run too


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("surrogate", ALPHA_SURROGATES)
def test_largest_alpha_keeps_gradients_finite(device, dtype, surrogate):
    """At the top of its range, alpha still gives finite d(x) and s''(x) for every finite x, in
    the kernels' compute type (float for the 16-bit types and float32, double for float64).
    A 16-bit result can still round to inf (d(0) of bsilu at alpha = 1e30 is 2.5e29), as any
    gradient can; so the check multiplies by a zero gradient: 0 * d is 0 where d is finite and NaN
    where it is inf or NaN. float32/float64 also check d and s'' themselves (gradient 1)."""
    low, high = alpha_bounds(surrogate)
    x = extreme_inputs(dtype, device)
    grads = [torch.zeros_like(x)] + ([torch.ones_like(x)] if dtype in (torch.float32, torch.float64) else [])
    for alpha in (high, high / 3):
        for neg in (False, True):
            for g in grads:
                d = torch.ops.sugar.relu_backward(g, x, surrogate, alpha, neg)
                d2 = torch.ops.sugar._relu_double_backward(g, g, x, surrogate, alpha, neg)
                bad = ~(torch.isfinite(d) & torch.isfinite(d2))
                assert not bad.any(), (
                    f"{surrogate} alpha={alpha} {dtype} negative_only={neg} grad={g[0].item()}: at x = "
                    f"{x[bad][:4].tolist()}: d = {d[bad][:4].tolist()}, s'' = {d2[bad][:4].tolist()}"
                )
    ones = torch.ones_like(x)
    # ... and right values there, against the float64 reference where it is itself finite.
    if dtype == torch.float64:
        d = torch.ops.sugar.relu_backward(ones, x, surrogate, high, False)
        d2 = torch.ops.sugar._relu_double_backward(ones, ones, x, surrogate, high, False)
        with np.errstate(over="ignore", invalid="ignore"):  # the reference overflows at huge |x|
            ref_d, ref_d2 = (
                grad_input(surrogate, 1.0, as_np(x), high),
                grad_self_second(surrogate, 1.0, 1.0, as_np(x), high),
            )
        ok = np.isfinite(ref_d) & np.isfinite(ref_d2) & (np.abs(as_np(x)) < 1e150)
        np.testing.assert_allclose(as_np(d)[ok], ref_d[ok], rtol=1e-12, atol=1e-280)
        # s'' of nelu cancels to ~0 at x = -1/sqrt(3): absolute error relative to its largest terms.
        np.testing.assert_allclose(
            as_np(d2)[ok], ref_d2[ok], rtol=1e-12, atol=1e-14 * np.abs(ref_d2[ok]).max()
        )


@pytest.mark.parametrize("surrogate", ALPHA_SURROGATES)
def test_alpha_past_the_largest_is_rejected_naming_the_bound(surrogate):
    low, high = alpha_bounds(surrogate)
    for alpha in (high * 1.01, high * 1e3, 1.7e308):
        if alpha == high * 1.01 and high == 1.0:
            alpha = 1.01
        x = torch.randn(3)
        for call in (
            lambda: torch.ops.sugar.relu(x, surrogate, alpha),
            lambda: torch.ops.sugar.relu_backward(torch.ones(3), x, surrogate, alpha, False),
        ):
            with pytest.raises(ValueError) as info:
                call()
            msg = str(info.value)
            rule = {s.name: s.alpha_range for s in torch_sugar.surrogates()}[surrogate]
            assert f"alpha for surrogate '{surrogate}' must be {rule}, but got alpha={alpha!r}" in msg, msg
            if surrogate != "leaky_relu":  # the others say where their bound comes from
                assert re.search(r"; \S+ keeps .*finite|must be finite", msg), msg


# The three wrong answers of issue 13: each gave NaN/inf gradients without an error.
# (surrogate, alpha, dtype, x, op: "d" for relu_backward, "d2" for _relu_double_backward)
OVERFLOWING_ALPHAS = [
    ("nelu", 3e38, torch.float32, [0.0, -1.0], "d"),  # was [nan, -inf]
    ("elu", 1e39, torch.float32, [0.0, -1.0, -200.0], "d"),  # was [inf, inf, nan]
    ("bsilu", 1.7e308, torch.float64, [1.7e308, -1.0], "d"),
    ("nelu", 1.7e308, torch.float64, [0.0, -1.0], "d"),
    ("elu", 1.7e308, torch.float64, [-1.0], "d2"),
    ("bsilu", 1.1e31, torch.float32, [3.4028234663852886e38], "d"),  # x + alpha overflows
]


@pytest.mark.parametrize(
    "surrogate,alpha,dtype,xs,op",
    OVERFLOWING_ALPHAS,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in OVERFLOWING_ALPHAS],
)
def test_overflowing_alphas_raise_instead_of_nan(surrogate, alpha, dtype, xs, op):
    x = torch.tensor(xs, dtype=dtype)
    ones = torch.ones_like(x)
    with pytest.raises(
        ValueError,
        match=rf"alpha for surrogate '{surrogate}' must be a number in .*"
        rf"but got alpha={re.escape(repr(alpha))}",
    ):
        if op == "d":
            torch.ops.sugar.relu_backward(ones, x, surrogate, alpha, False)
        else:
            torch.ops.sugar._relu_double_backward(ones, ones, x, surrogate, alpha, False)


def test_huge_int_alpha_is_a_value_error_naming_alpha():
    with pytest.raises(ValueError, match="alpha"):
        torch_sugar.relu(torch.randn(3), "bsilu", 10**400)


@pytest.mark.parametrize(
    "name,shown",
    [
        ("bs\x00ilu", r"'bs\x00ilu'"),
        ("gelu\n", r"'gelu\n'"),
        ("\x7f\x1b", r"'\x7f\x1b'"),
        ("it's", r"'it\'s'"),
        ("g\u00e9lu", r"'g\xc3\xa9lu'"),
    ],
)
def test_unknown_surrogate_name_is_shown_escaped(name, shown):
    """Unprintable characters (a NUL used to cut the message short) are shown as escapes, and the
    message goes on to list the valid names."""
    with pytest.raises(ValueError) as info:
        torch.ops.sugar.relu(torch.randn(3), name)
    msg = str(info.value)
    assert f"unknown surrogate {shown}; valid names are: " in msg, msg
    assert msg.rstrip().endswith(SURROGATES[-1]), msg


def test_bad_arguments_on_device(device):
    x = torch.randn(8, device=device)
    raises(TypeError, "torch.int64", lambda: torch.ops.sugar.relu(torch.arange(8, device=device)))
    other = "meta" if device == "cpu" else "cpu"
    raises(
        ValueError,
        "same device",
        lambda: torch.ops.sugar.relu_backward(torch.randn(8, device=other), x, "bsilu", None, False),
    )
    raises(
        ValueError,
        "same shape",
        lambda: torch.ops.sugar.relu_backward(torch.randn(4, device=device), x, "bsilu", None, False),
    )
    raises(ValueError, "unknown surrogate", lambda: torch.ops.sugar.relu(x, "no_such_surrogate", None, False))


def test_relu_backward_rejects_mismatches():
    x = torch.randn(3, 4)
    raises(
        ValueError,
        r"grad_output and self must have the same shape, but grad_output has shape "
        r"\[4, 3\] and self has shape \[3, 4\]",
        lambda: torch.ops.sugar.relu_backward(torch.randn(4, 3), x, "bsilu", None, False),
    )
    raises(
        TypeError,
        r"grad_output and self must have the same dtype, but grad_output has "
        r"torch.float64 and self has torch.float32",
        lambda: torch.ops.sugar.relu_backward(x.double(), x, "bsilu", None, False),
    )
    raises(
        ValueError,
        r"grad_output and self must be on the same device, but grad_output is on "
        r"meta and self is on cpu",
        lambda: torch.ops.sugar.relu_backward(x.to("meta"), x, "bsilu", None, False),
    )


def test_python_wrapper_type_errors():
    x = torch.randn(3)
    raises(
        TypeError,
        r"torch_sugar.relu: x must be a torch.Tensor, got list",
        lambda: torch_sugar.relu([1.0, 2.0]),
    )
    raises(TypeError, r"surrogate must be a str naming a surrogate, got int", lambda: torch_sugar.relu(x, 3))
    raises(TypeError, r"alpha must be a float or None, got str", lambda: torch_sugar.relu(x, "elu", "1"))
    raises(TypeError, r"negative_only must be a bool, got int", lambda: torch_sugar.relu(x, "elu", None, 1))


def test_errors_reach_python_before_backward():
    # A bad surrogate fails at the forward call, not later in backward.
    x = torch.randn(3, requires_grad=True)
    raises(ValueError, "unknown surrogate", lambda: torch.ops.sugar.relu(x, "nope"))
