"""The ops under FakeTensor/torch.library.opcheck, torch.compile(fullgraph=True) and torch.export."""
import pytest
import torch

import torch_sugar

SURROGATES_UNDER_TEST = ["relu", "bsilu", "nelu", "gelu", "mish"]


def sample_inputs(device, requires_grad):
    """(args, kwargs) samples for sugar::relu: dtypes, layouts, alphas and scopes."""
    def make(*shape, dtype=torch.float32):
        return torch.randn(*shape, device=device, dtype=dtype, requires_grad=requires_grad)

    yield (make(16),), {}
    yield (make(3, 5, dtype=torch.float64), "nelu", 0.05, True), {}
    yield (make(2, 3, 4, 5).contiguous(memory_format=torch.channels_last), "gelu", None, False), {}
    yield (make(7, 9).t(), "mish"), {"negative_only": True}
    yield (make(8, dtype=torch.bfloat16), "elu", 0.5, False), {}
    yield (make(()), "silu"), {}
    yield (make(0, 4), "bsilu"), {}


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_relu(device, requires_grad):
    for args, kwargs in sample_inputs(device, requires_grad):
        torch.library.opcheck(torch.ops.sugar.relu.default, args, kwargs)


def test_opcheck_relu_backward(device):
    for args, kwargs in sample_inputs(device, False):
        x = args[0]
        rest = list(args[1:]) + [None] * (4 - len(args))
        surrogate = rest[0] if rest[0] is not None else "bsilu"
        alpha = rest[1]
        negative_only = kwargs.get("negative_only", rest[2] if rest[2] is not None else False)
        for rg in (False, True):
            g = torch.randn_like(x).requires_grad_(rg and x.dtype == torch.float64)
            xx = x.detach().clone().requires_grad_(rg and x.dtype == torch.float64)
            torch.library.opcheck(torch.ops.sugar.relu_backward.default,
                                  (g, xx, surrogate, alpha, negative_only))


def test_meta_kernels_give_shapes_dtypes_and_strides(device):
    x = torch.randn(2, 3, 4, 5, device="meta").contiguous(memory_format=torch.channels_last)
    y = torch.ops.sugar.relu(x, "gelu")
    assert y.device.type == "meta" and y.shape == x.shape and y.stride() == x.stride()
    g = torch.ops.sugar.relu_backward(torch.empty_like(x), x, "gelu", None, False)
    assert g.shape == x.shape
    with pytest.raises(ValueError, match="unknown surrogate"):
        torch.ops.sugar.relu(x, "bogus")


class TinyNet(torch.nn.Module):
    def __init__(self, surrogate):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.act = torch_sugar.SugarReLU(surrogate)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)) + torch_sugar.relu(x.sum(-1, keepdim=True), "nelu"))


def grads_of(model, x):
    model.zero_grad()
    x = x.clone().requires_grad_()
    out = model(x)
    out.square().mean().backward()
    return [out.detach(), x.grad] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("surrogate", SURROGATES_UNDER_TEST)
def test_compile_fullgraph_matches_eager(device, surrogate):
    torch.manual_seed(0)
    model = TinyNet(surrogate).to(device)
    x = torch.randn(32, 8, device=device)
    eager = grads_of(model, x)
    torch._dynamo.reset()
    # aot_eager traces forward and backward through our Meta and Autograd kernels without
    # generating code; inductor (the default backend) is run once below.
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    for a, b in zip(eager, grads_of(compiled, x)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_compile_fullgraph_inductor_and_dynamic_shapes(device):
    torch.manual_seed(0)
    model = TinyNet("bsilu").to(device)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for n in (5, 9):
        x = torch.randn(n, 8, device=device)
        for a, b in zip(grads_of(model, x), grads_of(compiled, x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_export_round_trips(device):
    torch.manual_seed(0)
    model = TinyNet("mish").to(device)
    x = torch.randn(4, 8, device=device)
    exported = torch.export.export(model, (x,))
    ops = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert "sugar.relu.default" in ops, ops
    torch.testing.assert_close(exported.module()(x), model(x))
