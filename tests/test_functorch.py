"""torch.func transforms and forward-mode AD on the sugar ops, against the float64 reference.

Semantics (DESIGN.md): reverse mode gives grad * d(x) and s''(x) on the Hessian's diagonal;
forward mode follows the FGI form, tangent * d(x); vmap is elementwise, with a real batching
rule (no per-sample fallback, no warning).
"""

import warnings

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

import torch_sugar
from reference import DEFAULT_ALPHA, SURROGATES, d_and_d2, fgi_bsilu


def points(n=24, seed=0, low=0.1):
    """float64 points away from 0 (where some surrogates' d jumps)."""
    g = torch.Generator().manual_seed(seed)
    mag = torch.rand(n, generator=g, dtype=torch.float64) * 4 + low
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    return mag * sign


def reference(surrogate, x, alpha=None, negative_only=False):
    d, d2 = d_and_d2(surrogate, x.numpy(), alpha)
    if negative_only:
        pos = x.numpy() > 0
        d, d2 = np.where(pos, 1.0, d), np.where(pos, 0.0, d2)
    return torch.from_numpy(d), torch.from_numpy(d2)


@pytest.fixture
def no_warnings():
    """Fails the test on any warning other than TorchScript's deprecation (raised inside torch)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    caught = [w for w in caught if "torch.jit" not in str(w.message)]
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_every_transform_matches_reference(surrogate, negative_only, no_warnings):
    x = points()
    alpha = None if DEFAULT_ALPHA[surrogate] is None else 0.3
    d, d2 = reference(surrogate, x, alpha, negative_only)
    f = lambda t: torch_sugar.relu(t, surrogate, alpha, negative_only)  # noqa: E731
    loss = lambda t: f(t).sum()  # noqa: E731
    relu_x = torch.relu(x)

    torch.testing.assert_close(grad(loss)(x), d, rtol=1e-12, atol=1e-14)
    out, pullback = vjp(f, x)
    assert torch.equal(out, relu_x)
    v = torch.linspace(-1, 1, x.numel(), dtype=torch.float64)
    torch.testing.assert_close(pullback(v)[0], v * d, rtol=1e-12, atol=1e-14)
    out, tangent = jvp(f, (x,), (v,))
    assert torch.equal(out, relu_x)
    torch.testing.assert_close(tangent, v * d, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(jacrev(f)(x), torch.diag(d), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(jacfwd(f)(x), torch.diag(d), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(hessian(loss)(x), torch.diag(d2), rtol=1e-10, atol=1e-12)
    # Forward over reverse and reverse over reverse agree.
    torch.testing.assert_close(jacrev(jacrev(loss))(x), torch.diag(d2), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        vmap(grad(lambda t: f(t).sum()))(x.view(-1, 1)).view(-1), d, rtol=1e-12, atol=1e-14
    )


def test_forward_ad_follows_the_fgi_form():
    """tangent * d(x), as torch.func.jvp of the seed's stop-gradient form gives it."""
    x = points(seed=1)
    t = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with fwAD.dual_level():
        y = torch_sugar.relu(fwAD.make_dual(x, t), "bsilu", 1.67)
        primal, tangent = fwAD.unpack_dual(y)
    assert torch.equal(primal, torch.relu(x))
    _, fgi_tangent = jvp(lambda z: fgi_bsilu(z, 1.67), (x,), (t,))
    torch.testing.assert_close(tangent, fgi_tangent, rtol=1e-12, atol=1e-14)
    # And through the module, the backward op, and at second order (jvp of a gradient).
    with fwAD.dual_level():
        y = torch_sugar.SugarReLU("gelu")(fwAD.make_dual(x, t))
        d, d2 = reference("gelu", x)
        torch.testing.assert_close(fwAD.unpack_dual(y).tangent, t * d, rtol=1e-12, atol=1e-14)
        g = torch.randn_like(x)
        gx = torch_sugar.relu_backward(g, fwAD.make_dual(x, t), "gelu")
        torch.testing.assert_close(fwAD.unpack_dual(gx).tangent, g * d2 * t, rtol=1e-11, atol=1e-13)


def test_third_order_in_forward_mode_says_not_implemented():
    x = points(5)
    with pytest.raises(NotImplementedError, match="third or higher order"):
        jacfwd(jacfwd(jacrev(lambda t: torch_sugar.relu(t, "gelu").sum())))(x)


def test_vmap_batching_rule_is_elementwise_with_mixed_batch_dims(no_warnings):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, dtype=torch.float64, generator=g)
    go = torch.randn(6, 4, dtype=torch.float64, generator=g)
    # relu: batch along dim 1; relu_backward: x batched along 0, grad batched along 1, and unbatched.
    out = vmap(lambda t: torch_sugar.relu(t, "mish"), in_dims=1)(x)
    assert torch.equal(out, torch.relu(x).t())
    got = vmap(lambda gg, t: torch_sugar.relu_backward(gg, t, "nelu", 0.05, True), in_dims=(1, 0))(go, x)
    loop = torch.stack([torch_sugar.relu_backward(go[:, i], x[i], "nelu", 0.05, True) for i in range(4)])
    torch.testing.assert_close(got, loop, rtol=0, atol=0)
    shared = go[:, 0]
    got = vmap(lambda t: torch_sugar.relu_backward(shared, t, "gelu"))(x)
    loop = torch.stack([torch_sugar.relu_backward(shared, x[i], "gelu") for i in range(4)])
    torch.testing.assert_close(got, loop, rtol=0, atol=0)


def test_vmap_makes_one_call_not_a_loop():
    """The batching rule calls the op once on the whole batch (the fallback calls it per sample)."""
    calls = []

    class Count(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.sugar.relu.default:
                calls.append(args[0].shape)
            return func(*args, **(kwargs or {}))

    x = torch.randn(16, 3)
    with Count():
        vmap(lambda t: torch_sugar.relu(t, "silu"))(x)
    assert calls == [torch.Size([16, 3])]


def test_torch_func_trains_a_sugar_model_like_eager_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1)).double()
    torch_sugar.convert(model, "bsilu")
    x = torch.randn(9, 5, dtype=torch.float64)
    params = dict(model.named_parameters())
    grads = grad(lambda p: functional_call(model, p, (x,)).square().mean())(params)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-12, atol=1e-14)
    # Per-sample gradients, the usual vmap(grad) use.
    per_sample = vmap(
        grad(lambda p, xi: functional_call(model, p, (xi[None],)).square().sum()), in_dims=(None, 0)
    )(params, x)
    torch.testing.assert_close(
        per_sample["0.weight"].mean(0) * 1.0, grads["0.weight"], rtol=1e-10, atol=1e-12
    )
