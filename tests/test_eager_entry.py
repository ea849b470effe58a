"""torch_sugar.relu's and SugarReLU's eager fast path (a direct, unboxed call into the dispatcher)
behaves exactly as torch.ops.sugar.relu, and everything it does not handle reaches the checked
torch.ops path: __torch_function__ overrides and modes, wrong types, int alphas."""

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
