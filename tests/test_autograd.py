"""Autograd through the sugar ops: first and second order, what is saved, the FGI equivalence."""

import numpy as np
import pytest
import torch

import torch_sugar
from reference import DEFAULT_ALPHA, KINKED, SURROGATES, fgi_bsilu, grad_input, grad_self_second


def away_from_zero(n, device, seed=0, low=0.15):
    """float64 inputs with |x| >= low, so finite differences never straddle a kink at 0."""
    g = torch.Generator().manual_seed(seed)
    mag = torch.rand(n, generator=g, dtype=torch.float64) * 4 + low
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    return (mag * sign).to(device)


@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_gradcheck_and_gradgradcheck(device, surrogate, negative_only):
    x = away_from_zero(12, device).requires_grad_()
    alpha = None if DEFAULT_ALPHA[surrogate] is None else 0.3

    # gradcheck compares our analytic gradient with finite differences of the op, which only
    # sees the forward (relu); so check the backward op itself, whose derivative is d(x) and s''.
    def backward_op(g, t):
        return torch.ops.sugar.relu_backward(g, t, surrogate, alpha, negative_only)

    g = torch.randn(12, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(backward_op, (g, x))
    # Second order through the first-order backward of sugar::relu.
    fn = lambda t: torch.ops.sugar.relu(t, surrogate, alpha, negative_only)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_first_and_second_order_match_reference(device, surrogate, negative_only):
    x = away_from_zero(50, device, seed=3).requires_grad_()
    gy = torch.randn(50, dtype=torch.float64, device=device, requires_grad=True)
    y = torch.ops.sugar.relu(x, surrogate, None, negative_only)
    (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
    ref1 = grad_input(surrogate, gy.detach().cpu().numpy(), x.detach().cpu().numpy(), None, negative_only)
    np.testing.assert_allclose(gx.detach().cpu().numpy(), ref1, rtol=1e-12, atol=1e-14)
    v = torch.randn(50, dtype=torch.float64, device=device)
    gx_x, gx_gy = torch.autograd.grad(gx, (x, gy), v, allow_unused=True)
    ref_x = grad_self_second(
        surrogate, v.cpu().numpy(), gy.detach().cpu().numpy(), x.detach().cpu().numpy(), None, negative_only
    )
    ref_gy = grad_input(surrogate, v.cpu().numpy(), x.detach().cpu().numpy(), None, negative_only)
    got_x = np.zeros(50) if gx_x is None else gx_x.cpu().numpy()
    np.testing.assert_allclose(got_x, ref_x, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(gx_gy.cpu().numpy(), ref_gy, rtol=1e-12, atol=1e-14)


def test_third_order_says_not_implemented(device):
    x = away_from_zero(5, device).requires_grad_()
    y = torch.ops.sugar.relu(x, "gelu")
    (g1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third or higher order are not implemented"):
        torch.autograd.grad(g2.sum(), x)


# float32: the FGI form itself rounds sigma * (1 - sigma) with cancellation (about 1e-6 relative
# error near x = 15), so the two float32 results agree to that, not to the last bit.
@pytest.mark.parametrize("dtype,rtol,atol", [(torch.float64, 1e-13, 1e-15), (torch.float32, 1e-5, 1e-7)])
def test_bsilu_equals_seed_fgi_form(device, dtype, rtol, atol):
    x = (torch.randn(4096, dtype=torch.float64) * 5).to(dtype).to(device)
    x[:6] = torch.tensor([0.0, 1e-4, -1e-4, 20.0, -20.0, -60.0])
    gy = torch.randn_like(x)
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    y1 = torch_sugar.relu(x1, "bsilu")
    y2 = fgi_bsilu(x2, 1.67)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    (g1,) = torch.autograd.grad(y1, x1, gy)
    (g2,) = torch.autograd.grad(y2, x2, gy)
    torch.testing.assert_close(g1, g2, rtol=rtol, atol=atol)


def test_only_the_input_is_saved_for_backward(device):
    x = torch.randn(64, 32, device=device, requires_grad=True)
    h = x * 2  # a non-leaf, as inside a network
    packed = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = torch.ops.sugar.relu(h, "mish")
    assert len(packed) == 1
    assert packed[0].data_ptr() == h.data_ptr() and packed[0].shape == h.shape
    y.sum().backward()
    assert x.grad is not None


def test_saved_input_is_released_after_backward(device):
    x = torch.randn(16, device=device, requires_grad=True)
    y = torch.ops.sugar.relu(x * 1.0)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()


def test_no_graph_without_grad(device):
    x = torch.randn(8, device=device, requires_grad=True)
    with torch.no_grad():
        y = torch.ops.sugar.relu(x)
    assert y.grad_fn is None and not y.requires_grad
    with torch.inference_mode():
        z = torch.ops.sugar.relu(x)
    assert torch.equal(z, torch.relu(x.detach()))


@pytest.mark.parametrize("surrogate", sorted(KINKED - {"relu"}))
def test_negative_only_keeps_exact_relu_gradient_on_active_units(device, surrogate):
    x = torch.tensor([0.5, 2.0, -0.5, -2.0], dtype=torch.float64, device=device, requires_grad=True)
    gy = torch.tensor([3.0, -1.0, 2.0, 1.0], dtype=torch.float64, device=device)
    (gx,) = torch.autograd.grad(torch.ops.sugar.relu(x, surrogate, None, True), x, gy)
    assert gx[:2].tolist() == [3.0, -1.0]
    assert torch.all(gx[2:] != 0)


def test_half_precision_gradients_round_once(device):
    # Computed in float32 and rounded once: equal to the float32 result rounded to the dtype.
    for dtype in (torch.float16, torch.bfloat16):
        x = (torch.randn(5000) * 3).to(dtype).to(device)
        g = torch.randn(5000).to(dtype).to(device)
        ours = torch.ops.sugar.relu_backward(g, x, "gelu", None, False)
        f32 = torch.ops.sugar.relu_backward(g.float(), x.float(), "gelu", None, False)
        assert torch.equal(ours, f32.to(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_double_backward_op(device, dtype):
    """The private double-backward op under FakeTensor (its Meta kernel against the real one,
    output strides included) and opcheck's schema checks, on layouts where torch.relu's output
    strides differ from x's (size-1 dims with unusual strides) or follow them (transposed)."""

    def make(size, stride=None):
        x = torch.randn(size, dtype=torch.float64).to(dtype).to(device)
        return x if stride is None else torch.empty_strided(size, stride, dtype=dtype, device=device).copy_(x)

    for x in (make((3, 5, 7)), make((2, 3, 1, 1), (3, 1, 3, 3)), make((7, 9)).t()):
        g = torch.randn_like(x)
        torch.library.opcheck(
            torch.ops.sugar._relu_double_backward.default,
            (g, g, x, "bsilu", None, False),
            test_utils=("test_schema", "test_faketensor"),
        )
