"""``SugarReLU`` (an ``nn.Module``) and ``convert``/``revert``: SUGAR for an existing model."""

import warnings
from typing import Optional

import torch
from torch import nn

from ._ops import _has_torch_function_unary, _is_compiling, _relu_checked, _relu_direct, surrogates, validate
from ._patch import SCRIPTING_ERROR, PatchedForward, patch


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
    model: nn.Module,
    surrogate: str = "bsilu",
    alpha: Optional[float] = None,
    negative_only: bool = False,
    functional: bool = False,
) -> nn.Module:
    """Makes the model's ReLUs SUGAR, in place; returns the model.

    Every ``nn.ReLU`` in ``model`` (nested ones too) becomes a :class:`SugarReLU` with these
    settings, and every existing ``SugarReLU`` takes them. (If ``model`` itself is an ``nn.ReLU``
    or ``SugarReLU``, a new ``SugarReLU`` is returned.)

    ReLUs written as calls in ``forward`` methods (``F.relu``, ``torch.relu``, ``x.relu()``, the
    in-place forms) are code, not modules. With ``functional=True`` the model object carries
    :func:`torch_sugar.patch` for its own forward: every ReLU computed while ``model(...)`` runs
    is SUGAR too, whatever training loop calls it (Lightning, a Hugging Face ``Trainer``, DDP,
    ``torch.compile``). The model still pickles, deep-copies and saves its ``state_dict`` with
    unchanged keys; :func:`revert` removes both changes. TorchScript cannot run such a model
    (it would silently drop the functional SUGAR): ``torch.jit.script`` refuses it.

    With ``functional=False``, a model without ``nn.ReLU``/``SugarReLU`` modules is left as it
    is, with a warning that points to ``functional=True``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"torch_sugar.convert: model must be an nn.Module, got {type(model).__name__}")
    validate(surrogate, alpha, negative_only, fn="torch_sugar.convert")
    if not isinstance(functional, bool):
        raise TypeError(
            f"torch_sugar.convert: functional must be a bool, got {type(functional).__name__} ({functional!r})"
        )

    def make(relu: nn.Module) -> SugarReLU:
        new = SugarReLU(surrogate, alpha, negative_only)
        # so revert() gives back the same nn.ReLU
        new._relu_inplace = bool(getattr(relu, "inplace", getattr(relu, "_relu_inplace", False)))
        return new

    found = any(isinstance(m, (nn.ReLU, SugarReLU)) for m in model.modules())
    model = swap_modules(model, (nn.ReLU, SugarReLU), make)
    if functional:
        _carry_patch(model, patch(surrogate, alpha, negative_only))
    elif not found:
        warnings.warn(
            f"torch_sugar.convert: {type(model).__name__} has no nn.ReLU or SugarReLU modules, so "
            "nothing was converted. ReLUs computed in forward() (F.relu, torch.relu, x.relu()) are "
            "code, not modules: use torch_sugar.convert(model, ..., functional=True) or run the "
            "training under torch_sugar.patch(...).",
            UserWarning,
            stacklevel=2,
        )
    return model


def revert(model: nn.Module) -> nn.Module:
    """Undoes :func:`convert`, in place: every ``SugarReLU`` in ``model`` becomes ``nn.ReLU``,
    and a patch that ``convert(..., functional=True)`` put on the model is removed. Returns the
    model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"torch_sugar.revert: model must be an nn.Module, got {type(model).__name__}")

    def make(sugar: SugarReLU) -> nn.ReLU:
        return nn.ReLU(inplace=getattr(sugar, "_relu_inplace", False))

    drop_carried_patch(model)
    return swap_modules(model, SugarReLU, make)


def drop_carried_patch(model: nn.Module) -> nn.Module:
    """Removes what ``convert(..., functional=True)`` put on ``model`` (nothing else); returns it."""
    forward = model.__dict__.get("forward")
    if isinstance(forward, PatchedForward):
        if forward.previous is None:
            del model.forward
        else:
            model.forward = forward.previous
        model.__dict__.pop("__prepare_scriptable__", None)
    return model


def _carry_patch(model: nn.Module, patch_: patch) -> None:
    """model.forward becomes the model's own forward under ``patch_`` (see PatchedForward)."""
    current = model.__dict__.get("forward")
    if isinstance(current, PatchedForward):  # converted before: only the settings change
        current.patch = patch_
        return
    model.forward = PatchedForward(model, patch_, previous=current)
    # torch.jit.script calls this first when a module has it: refuse rather than script the
    # forward without the patch.
    model.__prepare_scriptable__ = _refuse_scripting


def _refuse_scripting():
    raise RuntimeError(SCRIPTING_ERROR)


def swap_modules(model: nn.Module, kind, make) -> nn.Module:
    """Replaces every submodule of type ``kind`` (a class or tuple of classes; nested ones too)
    by ``make(old)``, in place.

    Returns the model, or ``make(model)`` if the model itself is a ``kind``. The one loop behind
    :func:`convert`, :func:`revert` and the experiment tool's plain-activation swap."""
    if isinstance(model, kind):
        return make(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, name, make(child))
    return model
