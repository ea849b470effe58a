"""torch_sugar.relu's and SugarReLU's eager fast path (a direct, unboxed call into the dispatcher)
behaves exactly as torch.ops.sugar.relu, and everything it does not handle reaches the checked
torch.ops path: __torch_function__ overrides and modes, wrong types, int alphas."""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import torch_sugar


def test_fast_path_equals_the_op_values_and_gradients():
    x = torch.randn(300, dtype=torch.float64)
    for surrogate, alpha, neg in [("bsilu", None, False), ("nelu", 0.05, True), ("mish", None, False)]:
        a = x.clone().requires_grad_()
        b = x.clone().requires_grad_()
        ya = torch_sugar.relu(a, surrogate, alpha, neg)
        yb = torch.ops.sugar.relu(b, surrogate, alpha, neg)
        assert torch.equal(ya, yb) and ya.grad_fn.name() == "SugarReluBackward0"
        ya.backward(torch.ones_like(ya))
        yb.backward(torch.ones_like(yb))
        assert torch.equal(a.grad, b.grad)
    module = torch_sugar.SugarReLU("gelu")
    assert torch.equal(module(x), torch.relu(x))
    with torch.inference_mode():
        assert torch.equal(torch_sugar.relu(x), torch.relu(x))


def test_int_alpha_is_a_value_and_a_huge_one_a_value_error():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64, requires_grad=True)
    torch_sugar.relu(x, "elu", 2).sum().backward()
    ref = x.detach().clone().requires_grad_()
    torch.ops.sugar.relu(ref, "elu", 2.0, False).sum().backward()
    assert torch.equal(x.grad, ref.grad)
    with pytest.raises(
        ValueError, match=r"torch_sugar\.relu: alpha must be a finite number.*too large for a float"
    ):
        torch_sugar.relu(x, "bsilu", 10**400)
    with pytest.raises(ValueError, match=r"SugarReLU: alpha must be a finite number"):
        torch_sugar.SugarReLU("bsilu", 10**400)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: torch_sugar.relu(x, 3),
        lambda x: torch_sugar.relu(x, "bsilu", "big"),
        lambda x: torch_sugar.relu(x, "bsilu", True),
        lambda x: torch_sugar.relu(x, "bsilu", None, 1),
        lambda x: torch_sugar.relu([1.0, -1.0]),
    ],
)
def test_wrong_types_name_the_argument(call):
    with pytest.raises(TypeError, match=r"torch_sugar\.relu: (surrogate|alpha|negative_only|x) must be"):
        call(torch.randn(3))


def test_torch_function_modes_and_subclasses_see_the_op():
    seen = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.randn(5)
    with Record():
        torch_sugar.relu(x, "silu")
        torch_sugar.SugarReLU("silu")(x)
    assert seen.count(torch.ops.sugar.relu.default) == 2, seen

    class Tagged(torch.Tensor):
        calls = 0

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.ops.sugar.relu.default:
                cls.calls += 1
            return super().__torch_function__(func, types, args, kwargs or {})

    t = torch.randn(4).as_subclass(Tagged)
    out = torch_sugar.relu(t, "gelu")
    assert Tagged.calls == 1 and isinstance(out, Tagged)


# Arguments the ops reject that pybind11's own casters would let into the direct entry: a bool
# alpha (pybind11 3.1, in torch 2.14 and later, reads True as alpha = 1.0 under noconvert), bytes
# for the surrogate and numpy's bool for negative_only (every pybind11 version).
LOOSE_ARGS = {
    "alpha=True": (("bsilu", True, False), "alpha"),
    "alpha=False": (("nelu", False, False), "alpha"),
    "surrogate=bytes": ((b"bsilu", None, False), "surrogate"),
    "surrogate=bytearray": ((bytearray(b"bsilu"), None, False), "surrogate"),
    "negative_only=numpy.bool_": (("bsilu", None, np.True_), "negative_only"),
    "negative_only=1": (("bsilu", None, 1), "negative_only"),
}


@pytest.mark.parametrize("case", list(LOOSE_ARGS))
def test_direct_entry_is_as_strict_as_the_checked_path(case):
    """The same arguments fail the same way on every torch (and so pybind11) version: the direct
    entry refuses them, and the wrapper's checked path names the argument."""
    args, name = LOOSE_ARGS[case]
    x = torch.randn(6, requires_grad=True)
    with pytest.raises(TypeError):
        torch_sugar._C.relu(x, *args)
    with pytest.raises(TypeError, match=rf"torch_sugar\.relu: {name} must be"):
        torch_sugar.relu(x, *args)
    module = torch_sugar.SugarReLU("bsilu")
    module.surrogate, module.alpha, module.negative_only = args  # as a careless caller might
    with pytest.raises(TypeError, match=rf"SugarReLU: {name} must be"):
        module(x)


def test_direct_entry_takes_floats_and_their_subclasses_only():
    """A float (numpy.float64 is one) runs directly with its value; an int alpha is refused there
    (on every pybind11 version) and the checked path converts it, with the same result."""
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    want = torch.ops.sugar.relu(x.clone().requires_grad_(), "elu", 2.0, True)
    for alpha in (2.0, np.float64(2.0)):
        got = torch_sugar._C.relu(x.clone().requires_grad_(), "elu", alpha, True)
        assert torch.equal(got, want)
    with pytest.raises(TypeError):
        torch_sugar._C.relu(x, "elu", 2, True)
    for alpha in (2, np.float32(2.0), np.int64(2)):
        a = x.clone().requires_grad_()
        torch_sugar.relu(a, "elu", alpha, True).sum().backward()
        b = x.clone().requires_grad_()
        torch.ops.sugar.relu(b, "elu", 2.0, True).sum().backward()
        assert torch.equal(a.grad, b.grad), alpha


def test_a_str_that_is_not_utf8_is_an_error_naming_the_surrogate():
    with pytest.raises((ValueError, RuntimeError, TypeError), match="surrogate"):
        torch_sugar.relu(torch.randn(3), "bsilu\ud800")
