"""``SugarReLU`` (an ``nn.Module``) and ``convert``/``revert`` to swap it with ``nn.ReLU``."""

from typing import Optional

import torch
from torch import nn

from ._ops import _has_torch_function_unary, _is_compiling, _relu_checked, _relu_direct, surrogates, validate


class SugarReLU(nn.Module):
    """ReLU in the forward pass, the derivative of a smooth surrogate in the backward pass.

    A drop-in for ``nn.ReLU`` that ``torch.jit.script``, ``torch.compile``, ``torch.export`` and
    ``torch.fx`` handle. ``torch.fx.symbolic_trace`` keeps it as a module (a ``call_module`` node,
    as it keeps ``nn.ReLU``), so :func:`revert` and :class:`DeadUnitMonitor` work on the traced
    ``GraphModule`` as on the original model.

    Args:
        surrogate: surrogate name, see :func:`torch_sugar.surrogates` (default "bsilu").
        alpha: the surrogate's parameter, None for its default.
        negative_only: apply the surrogate only where x <= 0.
    """

    surrogate: str
    alpha: Optional[float]
    negative_only: bool

    def __init__(self, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False):
        super().__init__()
        validate(surrogate, alpha, negative_only, fn="SugarReLU")
        self.surrogate = surrogate
        self.alpha = None if alpha is None else float(alpha)
        self.negative_only = negative_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return torch.ops.sugar.relu(x, self.surrogate, self.alpha, self.negative_only)
        else:
            return self._forward_python(x)

    @torch.jit.unused
    def _forward_python(self, x: torch.Tensor) -> torch.Tensor:
        # torch_sugar.relu's eager fast path (see _ops.relu), inlined: a module call is the most
        # common way to call the op, and every function call shows at 1k elements.
        if not _is_compiling() and not _has_torch_function_unary(x):
            try:
                return _relu_direct(x, self.surrogate, self.alpha, self.negative_only)
            except TypeError:
                pass
        if isinstance(x, torch.fx.Proxy):
            # Under torch.fx.symbolic_trace, record this module as a leaf: a call_module node,
            # not the op it calls, so the traced GraphModule still has the module to revert or
            # hook. (The default tracer only treats torch.nn's own modules as leaves.)
            tracer = x.tracer
            return tracer.create_proxy("call_module", tracer.path_of_module(self), (x,), {})
        return _relu_checked("SugarReLU", x, self.surrogate, self.alpha, self.negative_only)

    def extra_repr(self) -> str:
        if self.alpha is None:
            default = next((s.default_alpha for s in surrogates() if s.name == self.surrogate), None)
            alpha = "" if default is None else f", alpha={default:g} (default)"
        else:
            alpha = f", alpha={self.alpha:g}"
        scope = ", negative_only=True" if self.negative_only else ""
        return f"surrogate={self.surrogate!r}{alpha}{scope}"


def convert(
    model: nn.Module, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False
) -> nn.Module:
    """Replaces every ``nn.ReLU`` in ``model`` (nested ones too) by ``SugarReLU`` in place.

    Returns the model (a new SugarReLU if ``model`` itself is an ``nn.ReLU``). Calls of
    ``torch.relu``/``F.relu`` inside ``forward`` methods are code, not modules, and stay as they are.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"torch_sugar.convert: model must be an nn.Module, got {type(model).__name__}")
    validate(surrogate, alpha, negative_only, fn="torch_sugar.convert")

    def make(relu: nn.ReLU) -> SugarReLU:
        new = SugarReLU(surrogate, alpha, negative_only)
        new._relu_inplace = bool(relu.inplace)  # so revert() gives back the same nn.ReLU
        return new

    return swap_modules(model, nn.ReLU, make)


def revert(model: nn.Module) -> nn.Module:
    """Replaces every ``SugarReLU`` in ``model`` by ``nn.ReLU`` in place; returns the model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"torch_sugar.revert: model must be an nn.Module, got {type(model).__name__}")

    def make(sugar: SugarReLU) -> nn.ReLU:
        return nn.ReLU(inplace=getattr(sugar, "_relu_inplace", False))

    return swap_modules(model, SugarReLU, make)


def swap_modules(model: nn.Module, kind: type, make) -> nn.Module:
    """Replaces every submodule of type ``kind`` (nested ones too) by ``make(old)``, in place.

    Returns the model, or ``make(model)`` if the model itself is a ``kind``. The one loop behind
    :func:`convert`, :func:`revert` and the experiment tool's plain-activation swap."""
    if isinstance(model, kind):
        return make(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, name, make(child))
    return model
