"""The ops under FakeTensor/torch.library.opcheck, torch.compile(fullgraph=True) and torch.export."""

import logging
import subprocess
import sys

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
            torch.library.opcheck(
                torch.ops.sugar.relu_backward.default, (g, xx, surrogate, alpha, negative_only)
            )


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


# ---------------------------------------------------------------------------------------------
# Inductor sees through the ops (their decompositions, torch_sugar/_decomp.py): no extern call,
# the activation fused with its neighbours, no more saved than with nn.ReLU.

from torch._inductor.utils import run_and_get_code  # noqa: E402

from reference import DTYPE_NAMES, SURROGATES  # noqa: E402
from torch_sugar import _decomp, _pt2  # noqa: E402


@pytest.fixture
def fresh_compile(monkeypatch, tmp_path):
    """No FX graph or inductor cache from an earlier run may answer for today's decompositions."""
    monkeypatch.setenv("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def mlp(act):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 32), act(), torch.nn.Linear(32, 32), act(), torch.nn.Linear(32, 4)
    )


def cnn(act):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        act(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        act(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 3),
    )


class Residual(torch.nn.Module):
    """conv-BatchNorm-act, then conv-BatchNorm plus the skip, then act: the second activation's
    input is a sum of two feature maps, which the partitioner should not be told to recompute."""

    def __init__(self, act):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), act())
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8))
        self.act = act()
        self.head = torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3)
        )

    def forward(self, x):
        h = self.stem(x)
        return self.head(self.act(self.branch(h) + h))


def train_step(model, x):
    out = model(x)
    out.square().mean().backward()
    return out


def saved_for_backward(model, x):
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sorted(shapes)


@pytest.mark.parametrize("make", [mlp, cnn, Residual], ids=["mlp", "cnn", "residual"])
def test_inductor_fuses_sugar_and_saves_what_relu_saves(make, fresh_compile):
    x = torch.randn(8, 16) if make is mlp else torch.randn(4, 3, 8, 8)
    relu_model = torch.compile(make(torch.nn.ReLU), fullgraph=True)
    sugar_model = torch.compile(make(lambda: torch_sugar.SugarReLU("bsilu")), fullgraph=True)
    _, codes = run_and_get_code(train_step, sugar_model, x)
    assert len(codes) == 2, "expected a forward and a backward kernel module"
    for code in codes:
        calls = [line for line in code.splitlines() if "sugar" in line and not line.lstrip().startswith("#")]
        assert not calls, f"an extern call to a sugar op survived in the compiled code: {calls[:3]}"
    # The surrogate's math was fused into a generated kernel of the backward.
    assert "exp" in codes[1]
    train_step(relu_model, x)
    # No more saved than nn.ReLU's model saves: no more feature maps, and in all no more than a
    # few per-channel statistics more (the CNN's backward recomputes the first BatchNorm's output
    # from the convolution output, with the mean that nn.ReLU's graph does not keep).
    sugar_saved, relu_saved = saved_for_backward(sugar_model, x), saved_for_backward(relu_model, x)
    numel = lambda shapes: sum(torch.Size(s).numel() for s in shapes)  # noqa: E731
    maps = lambda shapes: [s for s in shapes if torch.Size(s).numel() >= x.numel() // 4]  # noqa: E731
    assert len(maps(sugar_saved)) <= len(maps(relu_saved)), (sugar_saved, relu_saved)
    assert numel(sugar_saved) <= numel(relu_saved) + 16, (sugar_saved, relu_saved)
    # Inference: the same code as nn.ReLU's, the same numbers.
    with torch.no_grad():
        sugar_model.eval(), relu_model.eval()
        torch.testing.assert_close(sugar_model(x), relu_model(x), rtol=0, atol=0)


@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_inductor_gradients_equal_eager_every_surrogate_and_scope(dtype_name, fresh_compile):
    """One compiled function applies every surrogate in both scopes to its own input."""
    dtype = getattr(torch, dtype_name)
    cases = [(s, neg) for s in SURROGATES for neg in (False, True)]
    g = torch.Generator().manual_seed(0)
    base = torch.cat(
        [torch.tensor([0.0, -0.0, 1e-4, -1e-4, 20.0, -20.0, 60.0, -60.0]), torch.randn(200, generator=g) * 4]
    ).to(dtype)
    weight = torch.randn(base.shape, generator=g).to(dtype)

    def f(*xs):
        return sum(((torch_sugar.relu(x, s, None, neg) * weight).sum() for x, (s, neg) in zip(xs, cases)))

    def grads(fn):
        xs = [base.clone().requires_grad_() for _ in cases]
        fn(*xs).backward()
        return [x.grad for x in xs]

    eager = grads(f)
    compiled_f = torch.compile(f, fullgraph=True)
    compiled, codes = run_and_get_code(grads, compiled_f)
    # Every surrogate, scope and dtype went through the lowering, none to its extern fallback.
    calls = [line for code in codes for line in code.splitlines() if "torch.ops.sugar" in line]
    assert not calls, calls[:3]
    tol = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3}[dtype_name]
    for (s, neg), a, b in zip(cases, eager, compiled):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol, msg=lambda m: f"{s} negative_only={neg}: {m}")


def backward_bytes(model, x):
    """Bytes the generated kernels of the compiled backward read and write (inductor's count)."""
    from torch._inductor import metrics

    out = model(x)
    metrics.reset()
    out.square().mean().backward()
    return metrics.num_bytes_accessed


def test_compiled_cnn_backward_moves_what_relu_backward_moves(fresh_compile):
    """relu_backward lowered as one node: the surrogate's derivative is computed in the loop that
    writes grad_input, once; no buffer of x or exp(-|x|), no second evaluation in the BatchNorm
    backward's loops. (Decomposed op by op, as before, it moved 1.65x nn.ReLU's bytes here.)"""
    from torch._inductor.compile_fx import inductor_metrics_log  # inductor counts bytes when INFO

    level = inductor_metrics_log.level
    inductor_metrics_log.setLevel(logging.INFO)
    try:
        x = torch.randn(16, 3, 16, 16)
        relu_bytes = backward_bytes(torch.compile(cnn(torch.nn.ReLU), fullgraph=True), x)
        sugar = torch.compile(cnn(lambda: torch_sugar.SugarReLU("bsilu")), fullgraph=True)
        sugar_bytes = backward_bytes(sugar, x)
    finally:
        inductor_metrics_log.setLevel(level)
    assert relu_bytes > 0
    assert sugar_bytes <= 1.1 * relu_bytes, (sugar_bytes, relu_bytes)


@pytest.mark.parametrize("mode", ["decomposition", "extern"])
def test_other_inductor_modes_of_relu_backward_give_the_same_gradients(mode, fresh_compile):
    torch.manual_seed(0)
    model = cnn(lambda: torch_sugar.SugarReLU("gelu"))
    x = torch.randn(4, 3, 8, 8)
    eager = grads_of(model, x)
    previous = _pt2.set_inductor_relu_backward(mode)
    try:
        compiled = grads_of(torch.compile(model, fullgraph=True), x)
    finally:
        _pt2.set_inductor_relu_backward(previous)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="mode: got 'fused'; allowed: lowering, decomposition, extern"):
        _pt2.set_inductor_relu_backward("fused")


def test_lowering_is_registered_whichever_inductor_module_is_imported_first():
    """The lowering registers when torch._inductor.lowering is imported; inductor's graph module
    imports it half-way through its own import (a path that once left the lowering out)."""
    script = (
        "import torch, torch_sugar\n"
        "import torch._inductor.graph\n"
        "import torch._inductor.lowering as lowering\n"
        "from torch_sugar import _pt2\n"
        "assert torch.ops.sugar.relu_backward.default in lowering.lowerings\n"
        "assert _pt2._inductor_relu_backward == 'lowering', _pt2._inductor_relu_backward\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_lowered_graph_of_relu_backward_holds_for_every_shape(surrogate):
    """The lowering traces the decomposition on two elements and reuses the graph for any shape:
    no op in it may take its shape from the example (full_like did, for leaky_relu)."""
    x = torch.cat([torch.tensor([0.0, -0.0, 1e-4, -1e-4, 60.0, -60.0]), torch.randn(30) * 4]).view(4, 9)
    g = torch.randn(4, 9)
    for negative_only in (False, True):
        graph = _pt2._traced_relu_backward(
            surrogate, None, negative_only, torch.float32, torch.float32, torch.device("cpu")
        )
        want = _decomp.relu_backward(g, x, surrogate, None, negative_only)
        torch.testing.assert_close(graph(g, x), want, rtol=0, atol=0)


def test_compiled_bad_surrogate_still_raises(fresh_compile):
    fn = torch.compile(lambda x: torch_sugar.relu(x, "bogus"), fullgraph=True)
    with pytest.raises(Exception, match="unknown surrogate 'bogus'"):
        fn(torch.randn(3))


# ---------------------------------------------------------------------------------------------
# torch.fx: SugarReLU stays a module (a leaf), so revert and DeadUnitMonitor work on the trace.


def test_fx_symbolic_trace_keeps_sugar_relu_as_a_module():
    model = torch_sugar.convert(mlp(torch.nn.ReLU), "gelu")
    traced = torch.fx.symbolic_trace(model)
    targets = [(n.op, n.target) for n in traced.graph.nodes if n.op in ("call_module", "call_function")]
    assert ("call_module", "1") in targets and ("call_module", "3") in targets, targets
    assert not any("sugar" in str(t) for _, t in targets), targets
    x = torch.randn(32, 16)
    assert torch.equal(traced(x), model(x))
    # The monitor finds and hooks the two activations of the traced module.
    with torch_sugar.DeadUnitMonitor(traced) as monitor, torch.no_grad():
        traced(x)
    assert [layer.name for layer in monitor.results().layers] == ["1", "3"]
    assert monitor.results().units == 64
    # revert swaps them for nn.ReLU in the GraphModule too; the code runs the new modules.
    torch_sugar.revert(traced)
    assert isinstance(traced.get_submodule("1"), torch.nn.ReLU)
    xg = x.clone().requires_grad_()
    traced(xg).sum().backward()
    ref = x.clone().requires_grad_()
    torch_sugar.revert(model)(ref).sum().backward()
    torch.testing.assert_close(xg.grad, ref.grad)


def test_fx_trace_of_the_function_records_the_op():
    """torch_sugar.relu written in forward is code, not a module: the trace records the op."""

    class Net(torch.nn.Module):
        def forward(self, x):
            return torch_sugar.relu(x, "nelu", 0.05)

    traced = torch.fx.symbolic_trace(Net())
    assert any(n.target is torch.ops.sugar.relu.default for n in traced.graph.nodes)
    x = torch.randn(10)
    assert torch.equal(traced(x), torch.relu(x))
