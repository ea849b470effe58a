"""torch_sugar.patch and convert(functional=True): SUGAR for ReLUs written as calls.

Every spelling of a ReLU a program can compute is checked under the patch against the float64
reference (tests/reference.py: grad * s'(x) from DESIGN.md's table), and outside it against
torch.relu's own gradient."""

import copy
import io
import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_pt2 import fresh_compile  # noqa: F401  (the fixture: no compile cache answers for today's code)
from torch import nn

import torch_sugar
from reference import DTYPE_NAMES, TOLERANCES, bits, grad_input

# name -> f(h): a ReLU of h (an intermediate tensor, so in-place forms are legal), in every way a
# program can write one.
SPELLINGS = {
    "F.relu": lambda h: F.relu(h),
    "F.relu(inplace=True)": lambda h: F.relu(h, inplace=True),
    "F.relu(h, True)": lambda h: F.relu(h, True),
    "F.relu_": lambda h: F.relu_(h),
    "torch.relu": lambda h: torch.relu(h),
    "torch.relu(input=)": lambda h: torch.relu(input=h),
    "torch.relu_": lambda h: torch.relu_(h),
    "Tensor.relu": lambda h: h.relu(),
    "Tensor.relu_": lambda h: h.relu_(),
    "nn.ReLU": lambda h: nn.ReLU()(h),
    "nn.ReLU(inplace=True)": lambda h: nn.ReLU(inplace=True)(h),
    # These name their own settings; inside a patch, the patch's win.
    "SugarReLU": lambda h: torch_sugar.SugarReLU("mish")(h),
    "torch_sugar.relu": lambda h: torch_sugar.relu(h, "gelu", None, True),
}
IN_PLACE = {
    "F.relu(inplace=True)",
    "F.relu(h, True)",
    "F.relu_",
    "torch.relu_",
    "Tensor.relu_",
    "nn.ReLU(inplace=True)",
}
CASES = [("bsilu", None, False), ("nelu", 0.05, True), ("gelu", None, False), ("elu", 0.5, True)]


def inputs(dtype, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    special = torch.tensor([0.0, -0.0, 1e-4, -1e-4, 3.0, -3.0, 20.0, -20.0])
    x = torch.cat([special, torch.randn(n, generator=g) * 3]).to(dtype)
    grad = torch.randn(x.shape, generator=g).to(dtype)
    return x, grad


def run(spelling, x, grad):
    """(output, input gradient) of the spelling applied to an intermediate copy of x."""
    leaf = x.clone().requires_grad_()
    h = leaf * 1  # an intermediate, as in a network (an in-place op on a leaf is an error)
    out = SPELLINGS[spelling](h)
    if spelling in IN_PLACE:
        assert out is h, "an in-place ReLU must return its input"
    out.backward(grad)
    return out.detach(), leaf.grad


@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_every_spelling_is_sugar_inside_and_relu_outside(spelling, dtype_name):
    dtype = getattr(torch, dtype_name)
    x, grad = inputs(dtype)
    rtol, atol = TOLERANCES[dtype_name]
    xs, gs = x.double().numpy(), grad.double().numpy()
    for surrogate, alpha, negative_only in CASES:
        with torch_sugar.patch(surrogate, alpha, negative_only):
            out, gx = run(spelling, x, grad)
        # The forward is torch.relu's, bit for bit.
        assert torch.equal(bits(out), bits(torch.relu(x))), (spelling, surrogate)
        want = grad_input(surrogate, gs, xs, alpha, negative_only)
        np.testing.assert_allclose(
            gx.double().numpy(), want, rtol=rtol, atol=atol, err_msg=f"{spelling} {surrogate} {negative_only}"
        )
    # Outside the patch: torch.relu's gradient, except the two spellings that are SUGAR anyway.
    out, gx = run(spelling, x, grad)
    assert torch.equal(bits(out), bits(torch.relu(x)))
    if spelling in ("SugarReLU", "torch_sugar.relu"):
        ref = (
            grad_input("mish", gs, xs) if spelling == "SugarReLU" else grad_input("gelu", gs, xs, None, True)
        )
        np.testing.assert_allclose(gx.double().numpy(), ref, rtol=rtol, atol=atol)
    else:
        leaf = x.clone().requires_grad_()
        torch.relu(leaf * 1).backward(grad)
        assert torch.equal(bits(gx), bits(leaf.grad)), spelling


def test_patch_relu_is_exactly_relu_and_the_innermost_patch_wins():
    x, grad = inputs(torch.float32)
    plain = {s: run(s, x, grad)[1] for s in SPELLINGS if s not in ("SugarReLU", "torch_sugar.relu")}
    with torch_sugar.patch("bsilu"):
        with torch_sugar.patch("relu"):
            for spelling, want in plain.items():
                assert torch.equal(bits(run(spelling, x, grad)[1]), bits(want)), spelling
            # SugarReLU/torch_sugar.relu take the innermost patch's settings: exact ReLU too.
            for spelling in ("SugarReLU", "torch_sugar.relu"):
                assert torch.equal(bits(run(spelling, x, grad)[1]), bits(plain["F.relu"])), spelling
        with torch_sugar.patch("nelu", 0.1, True):
            inner = run("F.relu", x, grad)[1]
        outer = run("F.relu", x, grad)[1]
    xs, gs = x.double().numpy(), grad.double().numpy()
    np.testing.assert_allclose(inner.numpy(), grad_input("nelu", gs, xs, 0.1, True), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(outer.numpy(), grad_input("bsilu", gs, xs), rtol=2e-6, atol=1e-7)


def test_decorator_exceptions_threads_and_what_is_left_alone():
    x, grad = inputs(torch.float32)
    xs, gs = x.double().numpy(), grad.double().numpy()

    @torch_sugar.patch("elu")
    def step():
        return run("F.relu", x, grad)[1]

    for _ in range(2):  # the same patch object enters on every call
        np.testing.assert_allclose(step().numpy(), grad_input("elu", gs, xs), rtol=2e-6, atol=1e-7)
    with pytest.raises(ZeroDivisionError):
        with torch_sugar.patch("elu"):
            1 / 0
    assert torch.equal(run("F.relu", x, grad)[1], (x > 0).float() * grad)  # left after the error
    # Another thread does not see this thread's patch (function modes are per thread).
    seen = {}
    with torch_sugar.patch("elu"):
        t = threading.Thread(target=lambda: seen.update(g=run("F.relu", x, grad)[1]))
        t.start(), t.join()
    assert torch.equal(seen["g"], (x > 0).float() * grad)
    # Integer tensors (no gradient) keep torch.relu; other calls pass through unchanged.
    with torch_sugar.patch():
        ints = torch.tensor([-2, 3])
        assert torch.equal(F.relu(ints), torch.tensor([0, 3])) and torch.relu(ints).dtype == torch.int64
        assert torch.equal(torch.sigmoid(torch.zeros(2)), torch.full((2,), 0.5))
        with pytest.raises(TypeError):
            F.relu(x, inplace=True, bogus=1)
    with pytest.raises(ValueError, match="unknown surrogate 'nope'"):
        torch_sugar.patch("nope")
    with pytest.raises(TypeError, match="alpha must be a float"):
        torch_sugar.patch("bsilu", alpha="1")
    with pytest.raises(ValueError, match="takes no alpha"):
        torch_sugar.patch("gelu", alpha=1.0)
    assert (
        repr(torch_sugar.patch("nelu", 0.05, True))
        == "torch_sugar.patch('nelu', alpha=0.05, negative_only=True)"
    )


def saved_numel(fn):
    numel = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: numel.append(t.numel()) or t, lambda t: t):
        fn()
    return numel


def test_in_place_saves_one_copy_and_no_grad_runs_unchanged():
    """The documented memory cost: an in-place ReLU under the patch saves one input-sized copy
    (the out-of-place form saves its input; plain relu_ saves its output)."""
    x = torch.randn(1000, requires_grad=True)
    assert saved_numel(lambda: torch.relu_(x * 1)) == [1000]
    with torch_sugar.patch():
        assert saved_numel(lambda: torch.relu_(x * 1)) == [1000]  # the copy
        assert saved_numel(lambda: torch.relu(x * 1)) == [1000]  # x * 1
        h = torch.randn(1000)
        with torch.no_grad():
            before = h.data_ptr()
            out = F.relu(h, inplace=True)
        assert out is h and h.data_ptr() == before and torch.equal(h, torch.relu(out))


def test_second_order_forward_mode_and_torch_func_are_the_ops():
    x = torch.randn(50, dtype=torch.float64)
    t = torch.randn(50, dtype=torch.float64)

    def patched(v):
        with torch_sugar.patch("gelu"):
            return F.relu(v * 1, inplace=True).pow(2).sum()

    def direct(v):
        return torch_sugar.relu(v, "gelu").pow(2).sum()

    for transform in (torch.func.grad, torch.func.hessian):
        torch.testing.assert_close(transform(patched)(x), transform(direct)(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        torch.func.jvp(patched, (x,), (t,)), torch.func.jvp(direct, (x,), (t,)), rtol=1e-12, atol=1e-12
    )
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, t)
        with torch_sugar.patch("gelu"):
            tangent = torch.autograd.forward_ad.unpack_dual(torch.relu_(dual * 1)).tangent
    torch.testing.assert_close(tangent, torch.func.jvp(lambda v: torch_sugar.relu(v, "gelu"), (x,), (t,))[1])
    xs = x.clone().requires_grad_()
    with torch_sugar.patch("gelu"):
        (g,) = torch.autograd.grad(xs.relu().pow(3).sum(), xs, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), xs)
    xd = x.clone().requires_grad_()
    (gd,) = torch.autograd.grad(torch_sugar.relu(xd, "gelu").pow(3).sum(), xd, create_graph=True)
    torch.testing.assert_close(gg, torch.autograd.grad(gd.sum(), xd)[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# A tutorial-style model: only functional ReLUs.


class Tutorial(nn.Module):
    """The way PyTorch's tutorials write a network, with every ReLU spelling."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 16)
        self.fc4 = nn.Linear(16, 16)
        self.fc5 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = torch.relu(self.fc1(x.flatten(1)))
        x = self.fc2(x).relu_()
        x = F.relu(self.fc3(x), inplace=True)
        x = torch.relu_(self.fc4(x))
        x = self.fc5(x).relu()
        return self.out(x)


def grads_of(model, x):
    model.zero_grad()
    model(x).square().mean().backward()
    return [p.grad.clone() for p in model.parameters()]


def reference_grads(model, x, surrogate):
    """The same network written with torch_sugar.relu."""

    def forward(v):
        v = torch_sugar.relu(model.conv(v), surrogate)
        v = torch_sugar.relu(model.fc1(v.flatten(1)), surrogate)
        v = torch_sugar.relu(model.fc2(v), surrogate)
        v = torch_sugar.relu(model.fc3(v), surrogate)
        v = torch_sugar.relu(model.fc4(v), surrogate)
        v = torch_sugar.relu(model.fc5(v), surrogate)
        return model.out(v)

    model.zero_grad()
    forward(x).square().mean().backward()
    return [p.grad.clone() for p in model.parameters()]


def assert_all_close(got, want, tol=1e-5):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_tutorial_model_trains_with_sugar_gradients_under_the_patch():
    torch.manual_seed(0)
    model, x = Tutorial(), torch.randn(8, 3, 8, 8)
    plain = grads_of(model, x)
    with torch_sugar.patch("bsilu"):
        patched = grads_of(model, x)
    assert_all_close(patched, reference_grads(model, x, "bsilu"), tol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(plain, patched))
    assert_all_close(grads_of(model, x), plain, tol=0)  # gone after the block


@pytest.mark.usefixtures("fresh_compile")
def test_tutorial_model_compiles_fullgraph_patched_outside_or_inside():
    torch.manual_seed(0)
    model, x = Tutorial(), torch.randn(8, 3, 8, 8)
    with torch_sugar.patch("nelu", 0.05):
        eager = grads_of(model, x)
    compiled = torch.compile(model, fullgraph=True)
    with torch_sugar.patch("nelu", 0.05):
        assert_all_close(grads_of(compiled, x), eager)

    # (inductor above; the two below trace the same way and run the ops' kernels: faster)
    @torch.compile(fullgraph=True, backend="aot_eager")
    def inside(v):
        with torch_sugar.patch("nelu", 0.05):
            return model(v)

    model.zero_grad()
    inside(x).square().mean().backward()
    assert_all_close([p.grad for p in model.parameters()], eager)
    # Leaving the patch recompiles (dynamo guards on the mode stack): plain ReLU again.
    plain = grads_of(torch.compile(model, fullgraph=True, backend="aot_eager"), x)
    assert any(not torch.allclose(a, b) for a, b in zip(plain, eager))


def compiled_code(model, x, patched):
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)

    def step():
        compiled(x).square().mean().backward()

    if patched:
        with torch_sugar.patch("bsilu"):
            _, codes = run_and_get_code(step)
    else:
        _, codes = run_and_get_code(step)
    # Comments name the source nodes (F.relu vs the module): the code itself must be the same.
    return [
        "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#")) for code in codes
    ]


@pytest.mark.usefixtures("fresh_compile")
def test_patched_functional_model_compiles_to_the_same_code_as_sugar_modules():
    class Functional(nn.Module):
        def __init__(self, act=None):
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Linear(512, 3)
            self.act = act

        def forward(self, x):
            act = self.act or F.relu
            return self.fc(act(self.bn(self.conv(x))).flatten(1))

    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    patched = compiled_code(Functional(), x, patched=True)
    torch.manual_seed(0)
    modules = compiled_code(Functional(torch_sugar.SugarReLU("bsilu")), x, patched=False)
    assert len(patched) == 2 and patched == modules
    assert not any("torch.ops.sugar" in code for code in patched), "an extern sugar call survived"


# ---------------------------------------------------------------------------------------------
# convert(functional=True) / revert


@pytest.mark.usefixtures("fresh_compile")
def test_convert_functional_round_trip_pickle_deepcopy_state_dict():
    torch.manual_seed(0)
    model, x = Tutorial(), torch.randn(8, 3, 8, 8)
    plain, keys = grads_of(model, x), list(model.state_dict())
    want = reference_grads(model, x, "mish")
    assert torch_sugar.convert(model, "mish", functional=True) is model
    assert_all_close(grads_of(model, x), want, tol=1e-6)  # any training loop: model(x) is patched
    assert list(model.state_dict()) == keys
    for copy_ in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert copy_.forward.module is copy_
        assert_all_close(grads_of(copy_, x), want, tol=1e-6)
    buf = io.BytesIO()
    torch.save(model, buf)
    assert_all_close(grads_of(torch.load(io.BytesIO(buf.getvalue()), weights_only=False), x), want, tol=1e-6)
    assert_all_close(grads_of(torch.compile(model, fullgraph=True), x), want)
    with pytest.raises(RuntimeError, match="TorchScript cannot run a model that carries"):
        torch.jit.script(model)
    torch_sugar.convert(model, "elu", functional=True)  # again: new settings, not a second wrapper
    assert_all_close(grads_of(model, x), reference_grads(model, x, "elu"), tol=1e-6)
    assert torch_sugar.revert(model) is model and "forward" not in vars(model)
    assert_all_close(grads_of(model, x), plain, tol=0)


def test_convert_warns_when_nothing_is_converted_and_retargets_sugar_modules():
    with pytest.warns(UserWarning, match=r"Tutorial has no nn.ReLU or SugarReLU modules.*functional=True"):
        torch_sugar.convert(Tutorial(), "bsilu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch_sugar.convert(Tutorial(), "bsilu", functional=True)
        model = torch_sugar.convert(nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True)), "bsilu")
    torch_sugar.convert(model, "nelu", 0.2)  # an existing SugarReLU takes the new settings
    assert (model[1].surrogate, model[1].alpha) == ("nelu", 0.2)
    assert torch_sugar.revert(model)[1].inplace
    with pytest.raises(TypeError, match="functional must be a bool"):
        torch_sugar.convert(model, functional="yes")


# A native (GIL-free) computation on another thread, running for about `seconds`: hashlib
# releases the GIL while it hashes a large buffer, so the thread stays in state R meanwhile.
BUSY_THREAD = """
import hashlib, threading, time

def busy(seconds, then=None):
    data = b"x" * 20_000_000
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        hashlib.sha256(data).digest()
    if then is not None:
        then()
"""


def test_settle_waits_for_running_threads_and_not_for_sleeping_ones():
    from torch_sugar import _threads

    namespace = {}
    exec(BUSY_THREAD, namespace)
    assert _threads._running_threads() is not None, "this test needs Linux's /proc"
    sleeper = threading.Event()
    idle = threading.Thread(target=sleeper.wait)  # asleep: never waited for
    idle.start()
    try:
        assert _threads.settle() < 0.5
        worker = threading.Thread(target=namespace["busy"], args=(0.6,))
        worker.start()
        waited = _threads.settle()
        worker.join()
        assert 0.4 < waited < _threads._TIMEOUT_S  # until the busy thread ended, not the timeout
        runaway = threading.Thread(target=namespace["busy"], args=(2.5,))
        runaway.start()
        assert 0.25 <= _threads.settle(timeout_s=0.3) < 1.5  # a thread that never rests: the timeout
        runaway.join()
    finally:
        sleeper.set()
        idle.join()


@pytest.mark.parametrize("entered_by", ["patch", "monitor", "nothing"])
def test_a_process_that_entered_our_modes_lets_other_threads_finish_before_python_shuts_down(
    tmp_path, entered_by
):
    # The daemon thread ends its native work after the program has returned, then needs the GIL
    # (as gloo's threads do to drop a copy of the mode stack): Python kills a thread that asks for
    # it while shutting down, so the file appears only if the exit waited for the thread.
    import subprocess
    import sys

    marker = tmp_path / "finished"
    script = (
        BUSY_THREAD
        + f"""
import pathlib, threading, torch, torch_sugar
model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
if {entered_by!r} == "patch":
    with torch_sugar.patch("elu"):
        model(torch.randn(4, 3))
elif {entered_by!r} == "monitor":
    with torch_sugar.DeadUnitMonitor(model):
        model(torch.randn(4, 3))
threading.Thread(target=busy, args=(0.5, lambda: pathlib.Path({str(marker)!r}).write_text("done")), daemon=True).start()
"""
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists() == (entered_by != "nothing")
