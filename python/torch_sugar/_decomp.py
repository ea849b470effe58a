"""The sugar ops as ATen pointwise math: their decompositions.

Like ATen's own ops (torch/_decomp/decompositions.py has ``gelu_backward``,
``threshold_backward``, ...), each sugar op has an eager kernel (C++) and a decomposition into
simpler ATen ops. Eager mode, TorchScript and C++ programs run the kernels; the decompositions
are for the compilers and exporters, which see through them:

- inductor (``torch.compile``, AOTInductor) fuses ``relu`` and the surrogate backward with the
  neighbouring ops, and its partitioner may recompute them instead of saving activations;
- the ONNX exporter (``dynamo=True``) turns ``sugar::relu`` into ``aten.relu``, i.e. ``Relu``.

The formulas are those of csrc/ops/surrogate_math.h, term for term (the same stable forms: one
``exp(-|x|)`` for the sigmoid, no overflow for any finite x), and the tests hold both to the
same float64 reference (tests/reference.py). Half types compute in float32 and round once, as
the kernels do.
"""

import itertools
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from . import _C

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
_SQRT_HALF = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794
_SQRT_2_OVER_PI = 0.79788456080286535588
_GELU_TANH_COEF = 0.044715


def _surrogate_table() -> Dict[str, Tuple[str, Optional[float]]]:
    """name -> (canonical name, default alpha) from the C++ library's table."""
    table = {}
    for row in _C.surrogates():
        table[row["name"]] = (row["alias_of"] or row["name"], row["default_alpha"])
    return table


_TABLE = _surrogate_table()


def resolve(surrogate: str, alpha: Optional[float]) -> Tuple[str, float]:
    """(canonical surrogate, alpha with its default applied; 0.0 for surrogates without one).

    Names and alpha ranges are checked by the ops' Meta/CPU kernels, which every tracer runs
    before it decomposes; an unknown name here is a bug in the caller."""
    canonical, default = _TABLE[surrogate]
    if default is None:
        return canonical, 0.0
    return canonical, float(default if alpha is None else alpha)


# ---- the surrogate math, as surrogate_math.h writes it ----


def _sigmoid_parts(x: Tensor):
    """sigmoid(x), sigmoid(-x) and their product from one exp(-|x|)."""
    e = torch.exp(-x.abs())
    big = 1.0 / (1.0 + e)  # sigmoid(|x|)
    small = e * big  # sigmoid(-|x|)
    nonneg = x >= 0
    return torch.where(nonneg, big, small), torch.where(nonneg, small, big), big * small


def _bsilu_grad(x, a):
    sig, _, prod = _sigmoid_parts(x)
    return sig + (x + a) * prod


def _bsilu_grad2(x, a):
    sig, sig_n, prod = _sigmoid_parts(x)
    return 2.0 * prod + ((x + a) * prod) * (sig_n - sig)


def _nelu_grad(x, a):
    u = 1.0 / (1.0 + x * x)
    return torch.where(x > 0, 1.0, 2.0 * a * (x * u) * u)


def _nelu_grad2(x, a):
    u = 1.0 / (1.0 + x * x)
    return torch.where(x > 0, 0.0, 2.0 * a * (4.0 * u - 3.0) * u * u)


def _elu_grad(x, a):
    return torch.where(x > 0, 1.0, a * torch.exp(-x.abs()))


def _elu_grad2(x, a):
    return torch.where(x > 0, 0.0, a * torch.exp(-x.abs()))


def _selu_grad(x, a):
    return torch.where(x > 0, SELU_LAMBDA, (SELU_LAMBDA * SELU_ALPHA) * torch.exp(-x.abs()))


def _selu_grad2(x, a):
    return torch.where(x > 0, 0.0, (SELU_LAMBDA * SELU_ALPHA) * torch.exp(-x.abs()))


def _leaky_relu_grad(x, a):
    # A 0-d slope, not full_like(x): a traced graph of these formulas must not depend on x's shape
    # (the inductor lowering traces them once, on a small tensor; see _pt2.py).
    return torch.where(x > 0, 1.0, torch.full((), a, dtype=x.dtype, device=x.device))


def _zero_grad2(x, a):
    return torch.zeros_like(x)


def _gelu_grad(x, a):
    cdf = 0.5 * torch.erfc(-x * _SQRT_HALF)
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * x * x)
    return cdf + x * pdf


def _gelu_grad2(x, a):
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * x * x)
    return 2.0 * pdf - x * (x * pdf)


def _gelu_tanh_grad(x, a):
    far = x.abs() > 50.0
    xc = torch.where(far, 0.0, x)
    u = _SQRT_2_OVER_PI * (xc + _GELU_TANH_COEF * xc * xc * xc)
    du = _SQRT_2_OVER_PI * (1.0 + (3 * _GELU_TANH_COEF) * xc * xc)
    sig, _, prod = _sigmoid_parts(2.0 * u)
    near = sig + 2.0 * xc * prod * du
    return torch.where(far, (x > 0).to(x.dtype), near)


def _gelu_tanh_grad2(x, a):
    far = x.abs() > 50.0
    xc = torch.where(far, 0.0, x)
    u = _SQRT_2_OVER_PI * (xc + _GELU_TANH_COEF * xc * xc * xc)
    du = _SQRT_2_OVER_PI * (1.0 + (3 * _GELU_TANH_COEF) * xc * xc)
    d2u = (6 * _SQRT_2_OVER_PI * _GELU_TANH_COEF) * xc
    sig, sig_n, prod = _sigmoid_parts(2.0 * u)
    t = sig - sig_n
    near = 4.0 * prod * (du + 0.5 * xc * d2u - xc * t * du * du)
    return torch.where(far, 0.0, near)


def _mish_grad(x, a):
    # (A B + 4x C) / B^2 over one denominator; see surrogate_math.h's mish_grad.
    e = torch.exp(-x.abs())
    pos = x > 0
    e2 = e * e
    num = torch.where(pos, 2.0 * e + 1.0, 2.0 * e + e2)
    den = num + torch.where(pos, e2 + e2, 2.0)
    c = (e + e2) * torch.where(pos, e, 1.0)
    return (num * den + x * (4.0 * c)) / (den * den)


def _mish_grad2(x, a):
    e = torch.exp(-x.abs())
    pos = x > 0
    t_num = torch.where(pos, 1.0 + 2.0 * e, e * (e + 2.0))
    t_den = t_num + torch.where(pos, 2.0 * e * e, 2.0)
    one_e = 1.0 + e
    q = one_e * one_e
    r = torch.where(pos, e * e, 1.0)
    qr = q + r
    t = t_num / t_den
    sech2 = 4.0 * q * r / (qr * qr)
    sig = torch.where(pos, 1.0, e) / one_e
    sig_n = torch.where(pos, e, 1.0) / one_e
    qq = sech2 * sig
    return 2.0 * qq + (x * qq) * (sig_n - 2.0 * t * sig)


def _relu_grad(x, a):
    return (x > 0).to(x.dtype)


# canonical name -> (d, s'')
MATH: Dict[str, Tuple[Callable, Callable]] = {
    "relu": (_relu_grad, _zero_grad2),
    "bsilu": (_bsilu_grad, _bsilu_grad2),
    "nelu": (_nelu_grad, _nelu_grad2),
    "elu": (_elu_grad, _elu_grad2),
    "selu": (_selu_grad, _selu_grad2),
    "leaky_relu": (_leaky_relu_grad, _zero_grad2),
    "gelu": (_gelu_grad, _gelu_grad2),
    "gelu_tanh": (_gelu_tanh_grad, _gelu_tanh_grad2),
    "silu": (lambda x, a: _bsilu_grad(x, 0.0), lambda x, a: _bsilu_grad2(x, 0.0)),
    "mish": (_mish_grad, _mish_grad2),
}


def _opmath(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


# ---- the three ops ----


def relu(
    self: Tensor, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False
) -> Tensor:
    """sugar::relu is torch.relu in the forward pass.

    In a training graph the backward needs the pre-activation x (for d(x)), and the next layer may
    need relu(x). nn.ReLU's backward needs relu(x) alone. Traced for a compiler, the op therefore
    tells AOTAutograd's partitioner (with the selective-checkpoint tag "prefer recompute") what to
    recompute in the backward so that it saves no more than nn.ReLU's graph saves:

    - x is a cheap pointwise result (a BatchNorm or bias output): recompute x, from the input the
      graph saves anyway (the BatchNorm backward keeps the convolution output). The partitioner
      would otherwise save x, because inductor lowers relu_backward as one opaque node (_pt2.py),
      which it cannot fuse. relu(x) is saved where the next layer needs it, as with nn.ReLU.
    - otherwise (a matmul or convolution output, a graph input): x is saved, and relu(x), which
      nn.ReLU would save, is recomputed from it; inductor fuses it into its consumers.
    """
    mode = _proxy_mode()
    if mode is None:
        return torch.relu(self)
    producer = _producer_node(mode, self)
    graph = mode.tracer.graph
    before = len(graph.nodes)
    out = torch.relu(self)
    if producer is not None and _cheap_to_recompute(producer, self):
        producer.meta["recompute"] = _PREFER_RECOMPUTE
    else:
        for node in itertools.islice(reversed(graph.nodes), len(graph.nodes) - before):
            node.meta["recompute"] = _PREFER_RECOMPUTE
    return out


def _producer_node(mode, tensor: Tensor):
    """The traced node that computed `tensor`, or None."""
    from torch.fx.experimental.proxy_tensor import get_proxy_slot

    return get_proxy_slot(tensor, mode.tracer, None, lambda slot: slot.proxy.node)


def _cheap_to_recompute(node, x: Tensor) -> bool:
    """Recomputing x (node's output) in the backward costs one fused pointwise pass and keeps no
    more memory than saving x: node is an ATen pointwise op that nobody tagged already, with at
    most one input of x's size (the rest broadcast: per-channel statistics, a bias). A residual
    sum (two full-size inputs) is not: recomputing it could keep both inputs instead of x."""
    from torch.fx.experimental.symbolic_shapes import statically_known_true

    target = node.target
    if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
        return False
    if torch.Tag.pointwise not in target.tags or node.meta.get("recompute") is not None:
        return False
    full_size = 0
    for arg in node.all_input_nodes:
        value = arg.meta.get("val")
        if not isinstance(value, Tensor) or not statically_known_true(value.numel() < x.numel()):
            full_size += 1
    return full_size <= 1


def _proxy_mode():
    """The active make_fx tracing mode, if any (None when the tag cannot be set)."""
    if _PREFER_RECOMPUTE is None:
        return None
    try:
        from torch.fx.experimental.proxy_tensor import get_proxy_mode
    except ImportError:  # an older or newer torch without it: no tag, correct all the same
        return None
    mode = get_proxy_mode()
    return mode if mode is not None and hasattr(mode, "tracer") else None


try:
    from torch.utils.checkpoint import CheckpointPolicy as _CheckpointPolicy

    _PREFER_RECOMPUTE = _CheckpointPolicy.PREFER_RECOMPUTE
except ImportError:
    _PREFER_RECOMPUTE = None


def relu_backward(
    grad_output: Tensor, self: Tensor, surrogate: str, alpha: Optional[float], negative_only: bool
) -> Tensor:
    """grad_output * d(self); d = 1 where self > 0 with negative_only."""
    kind, a = resolve(surrogate, alpha)
    if kind == "relu":
        # A select, as torch's threshold_backward: 0 where x <= 0 even for an inf or NaN grad.
        return torch.where(self <= 0, 0.0, grad_output)
    x = _opmath(self)
    g = _opmath(grad_output)
    # d(x) first: the product is laid out like x, as the kernels lay out grad_input (output.h),
    # where a dense grad_output of another layout (an expanded pooling gradient) would win.
    scaled = MATH[kind][0](x, a) * g
    if negative_only:
        scaled = torch.where(x > 0, g, scaled)
    return scaled.to(self.dtype)


def relu_double_backward(
    grad_grad: Tensor,
    grad_output: Tensor,
    self: Tensor,
    surrogate: str,
    alpha: Optional[float],
    negative_only: bool,
) -> Tensor:
    """grad_grad * grad_output * s''(self); 0 where negative_only pins d to 1."""
    kind, a = resolve(surrogate, alpha)
    if kind in ("relu", "leaky_relu"):
        return torch.zeros_like(self)
    x = _opmath(self)
    value = _opmath(grad_grad) * _opmath(grad_output) * MATH[kind][1](x, a)
    if negative_only:
        value = torch.where(x > 0, 0.0, value)
    return value.to(self.dtype)


def table() -> Dict[torch._ops.OpOverload, Callable]:
    """The decompositions, keyed by op overload (for decomposition tables)."""
    return {
        torch.ops.sugar.relu.default: relu,
        torch.ops.sugar.relu_backward.default: relu_backward,
        torch.ops.sugar._relu_double_backward.default: relu_double_backward,
    }
