"""The ops' decompositions (torch_sugar/_decomp.py): what inductor and the ONNX exporter run.

Held to the same float64 reference and tolerances as the kernels (test_ops.py), for every
surrogate, both scopes, all four dtypes and all three ops, and to the kernels themselves.
"""

import numpy as np
import pytest
import torch

import torch_sugar  # noqa: F401  (registers the ops and the decompositions)
from reference import (
    ALPHA_SURROGATES,
    DEFAULT_ALPHA,
    DTYPE_NAMES,
    SPECIAL_X,
    SURROGATES,
    TOLERANCES,
    grad_input,
    grad_self_second,
)
from torch_sugar import _decomp


def sample(dtype, n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [
            torch.tensor(SPECIAL_X, dtype=torch.float64),
            torch.randn(n, generator=g, dtype=torch.float64) * 4,
            torch.tensor([1e4, -1e4, 3e38, -3e38], dtype=torch.float64),
        ]
    )
    if dtype != torch.float64:
        x = x.clamp(torch.finfo(dtype).min, torch.finfo(dtype).max)
    grad = torch.randn(x.shape, generator=g, dtype=torch.float64)
    return x.to(dtype), grad.to(dtype)


def assert_close_ref(out, ref, dtype_name, what):
    rtol, atol = TOLERANCES[dtype_name]
    got = out.double().numpy()
    ok = np.abs(got - ref) <= atol + rtol * np.abs(ref)
    assert np.isfinite(got).all(), f"{what}: non-finite values"
    if not ok.all():
        i = int(np.argmin(ok))
        raise AssertionError(
            f"{what}: {int((~ok).sum())} mismatches, first at index {i}: got {got[i]!r}, reference {ref[i]!r}"
        )


@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_backward_decomposition_matches_reference_and_kernel(dtype_name, surrogate, negative_only):
    dtype = getattr(torch, dtype_name)
    x, g = sample(dtype)
    out = _decomp.relu_backward(g, x, surrogate, None, negative_only)
    assert out.dtype == dtype and out.shape == x.shape
    ref = grad_input(surrogate, g.double().numpy(), x.double().numpy(), None, negative_only)
    assert_close_ref(out, ref, dtype_name, f"decomposed relu_backward {surrogate}")
    # And the eager kernel, to a few units in the last place (both ~1 ulp off the reference).
    kernel = torch.ops.sugar.relu_backward(g, x, surrogate, None, negative_only)
    rtol, atol = TOLERANCES[dtype_name]
    torch.testing.assert_close(out, kernel, rtol=2 * rtol, atol=2 * atol)
    if surrogate == "relu":  # the control is a select: bitwise torch.relu's gradient
        assert torch.equal(out, kernel)


@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_double_backward_decomposition_matches_reference(dtype_name, surrogate, negative_only):
    dtype = getattr(torch, dtype_name)
    x, g = sample(dtype, n=500, seed=1)
    gg = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(dtype)
    out = _decomp.relu_double_backward(gg, g, x, surrogate, None, negative_only)
    ref = grad_self_second(
        surrogate, gg.double().numpy(), g.double().numpy(), x.double().numpy(), None, negative_only
    )
    # s'' involves one more factor than d; allow twice the first-order tolerance.
    rtol, atol = TOLERANCES[dtype_name]
    got = out.double().numpy()
    ok = np.abs(got - ref) <= 2 * atol + 2 * rtol * np.abs(ref) + 2 * rtol * np.abs(
        gg.double().numpy() * g.double().numpy()
    )
    assert ok.all(), (
        f"{surrogate}: {int((~ok).sum())} mismatches, e.g. got {got[~ok][:3]}, ref {ref[~ok][:3]}"
    )
    kernel = torch.ops.sugar._relu_double_backward(gg, g, x, surrogate, None, negative_only)
    torch.testing.assert_close(out, kernel, rtol=4 * rtol, atol=4 * atol + 4 * rtol)


@pytest.mark.parametrize("surrogate", ALPHA_SURROGATES)
def test_decomposition_uses_alpha_and_its_default(surrogate):
    x, g = sample(torch.float64, n=200, seed=4)
    for alpha in (None, 0.37):
        out = _decomp.relu_backward(g, x, surrogate, alpha, False)
        ref = grad_input(
            surrogate, g.numpy(), x.numpy(), alpha if alpha is not None else DEFAULT_ALPHA[surrogate]
        )
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-14)


def test_forward_decomposition_is_torch_relu_bitwise():
    x = torch.tensor([-1.0, -0.0, 0.0, 2.5, float("nan"), float("inf"), float("-inf")])
    out = _decomp.relu(x, "mish", None, False)
    assert torch.equal(out.view(torch.int32), torch.relu(x).view(torch.int32))


def test_decompositions_are_registered_where_the_compilers_look():
    ops = [
        torch.ops.sugar.relu.default,
        torch.ops.sugar.relu_backward.default,
        torch.ops.sugar._relu_double_backward.default,
    ]
    table = torch._decomp.global_decomposition_table["post_autograd"]
    assert all(op in table for op in ops)
    import torch._inductor.decomposition as inductor_decomp  # noqa: E402  (imported late: the hook)

    assert all(op in inductor_decomp.select_decomp_table() for op in ops)
