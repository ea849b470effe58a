"""``torch_sugar.patch``: SUGAR for every ReLU a program computes, without editing the program.

The mechanism is a ``torch.overrides.TorchFunctionMode`` (PyTorch's own hook for intercepting
calls of its Python API, the one ``torch.device(...)`` as a context manager uses). While a patch
is entered, every call of ``F.relu`` (``inplace=True`` too), ``F.relu_``, ``torch.relu``,
``torch.relu_``, ``Tensor.relu`` and ``Tensor.relu_`` in that thread becomes
``torch.ops.sugar.relu`` with the patch's settings; ``nn.ReLU`` calls ``F.relu``, and
``SugarReLU`` modules and ``torch_sugar.relu`` take the patch's settings too. Every other call
passes through unchanged (a mode sees every call: its cost is measured in bench_models.py).

torch.compile (dynamo) traces modes: a patch entered outside a compiled function or inside it
compiles into the same graph as ``SugarReLU`` modules (the op's decomposition, fused by
inductor). Dynamo leaves the in-place functions of the ``torch`` namespace (``torch.relu_``)
out of the calls it hands to modes, unlike eager mode; ``_pt2.dynamo_dispatches_relu_`` adds
``torch.relu_`` to its list so compiled and eager code agree.
"""

import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import _pt2, _threads
from ._ops import _RELU, _check_args, _relu_direct, validate

__all__ = ["patch"]

_SUPPORTED_DTYPES = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64))
_OUT_OF_PLACE = frozenset((torch.relu, torch.Tensor.relu))
_IN_PLACE = frozenset((torch.relu_, torch.Tensor.relu_))  # F.relu_ is torch.relu_
# Everything the patch rewrites; F.relu decides in-place or not by its `inplace` argument.
_HANDLED = _OUT_OF_PLACE | _IN_PLACE | frozenset((F.relu, _RELU))

_PLAIN_TENSORS = frozenset((torch.Tensor, torch.nn.Parameter))
_is_compiling = torch.compiler.is_compiling
_len_function_modes = torch._C._len_torch_function_stack
_is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


class patch(TorchFunctionMode, contextlib.ContextDecorator):
    """Context manager and decorator: inside it, every ReLU the program computes is SUGAR.

    ``nn.ReLU`` modules (``inplace=True`` too), ``F.relu`` (``inplace=True`` too), ``F.relu_``,
    ``torch.relu``, ``torch.relu_``, ``Tensor.relu`` and ``Tensor.relu_`` compute
    ``torch.ops.sugar.relu(x, surrogate, alpha, negative_only)``; ``SugarReLU`` modules and
    ``torch_sugar.relu`` calls use the patch's settings instead of their own. Every other call
    runs untouched.

        with torch_sugar.patch("bsilu"):
            loss = loss_fn(model(x), y)     # the model's F.relu / x.relu() / nn.ReLU are SUGAR
            loss.backward()

        @torch_sugar.patch("nelu", alpha=0.05)
        def train_step(batch): ...

    Semantics:

    * The forward is bit for bit ``torch.relu``'s; the backward (second order, forward mode,
      ``torch.func``, DDP) is the op's, exactly as for :func:`torch_sugar.relu`.
    * In-place spellings write the result into their input and return it, as without the patch.
      SUGAR's backward needs the pre-activation, which the in-place write destroys, so when a
      gradient can flow, the input is first copied and the copy is saved for backward: one extra
      input-sized tensor per in-place ReLU, the same memory as the out-of-place form (the README's
      "SUGAR without editing your model" gives the measurement). Without gradients (``no_grad``,
      inference) in-place ReLUs run unchanged.
    * Tensors the op does not take (integer dtypes, sparse layouts) keep ``torch.relu``.
    * Nested patches: the innermost wins; ``patch("relu")`` restores exact ReLU gradients inside
      an outer patch.
    * ``torch.compile(fullgraph=True)`` works with the patch entered outside or inside the
      compiled function, and compiles to the same fused code as ``SugarReLU`` modules.
    * The patch holds in the thread that entered it (PyTorch's function modes are per thread).
    * TorchScript code (``torch.jit.script``/``trace``/``load``) cannot be patched: it does not
      call Python. A scripted model keeps the ReLUs it was scripted with; convert its modules to
      ``SugarReLU`` before scripting instead.

    Args:
        surrogate: surrogate name, see :func:`torch_sugar.surrogates` (default "bsilu"); "relu"
            is the control (exact ReLU gradients).
        alpha: the surrogate's parameter, None for its default.
        negative_only: use the surrogate's derivative only where x <= 0.
    """

    def __init__(self, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False):
        super().__init__()
        validate(surrogate, alpha, negative_only, fn="torch_sugar.patch")
        self.surrogate = surrogate
        self.alpha = _check_args("torch_sugar.patch", surrogate, alpha, negative_only)
        self.negative_only = negative_only
        _pt2.dynamo_dispatches_relu_()

    def __enter__(self):
        # Entered once per call of a decorated function or a converted model's forward: the
        # check inline, TorchFunctionMode's own __enter__ called directly (80 ns, not 290).
        if not _threads._registered:
            _threads.settle_at_exit()
        return TorchFunctionMode.__enter__(self)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _HANDLED:
            return self._relu(func, args, {} if kwargs is None else kwargs)
        if kwargs is None:
            return func(*args)
        return func(*args, **kwargs)

    def _relu(self, func, args, kwargs):
        # Whatever this patch hands on with func(...) reaches the modes below it, outer patches
        # included; so every ReLU whose gradient this patch decides is computed here, by the op
        # ("relu" too: the op's "relu" gradient is bit for bit torch.relu's).
        if func is _RELU:
            # SugarReLU and torch_sugar.relu pass their settings by keyword (_ops._relu_checked);
            # a patch's own call below passes them by position and is left alone, so an outer
            # patch never overrides an inner one.
            if not kwargs:
                return func(*args)
            return self._sugar(args[0] if args else kwargs["self"])
        x = args[0] if args else kwargs.get("input", kwargs.get("self"))
        if not isinstance(x, torch.Tensor) or x.dtype not in _SUPPORTED_DTYPES or x.layout != torch.strided:
            return func(*args, **kwargs)
        if func is F.relu:
            extra = set(kwargs) - {"input", "inplace"}
            if extra or len(args) > 2:
                return func(*args, **kwargs)  # not F.relu's signature: let it raise its own error
            inplace = kwargs.get("inplace", args[1] if len(args) > 1 else False)
        else:
            inplace = func in _IN_PLACE
        if not inplace:
            return self._sugar(x)
        if not _is_compiling() and not _may_need_grad(x):
            return func(*args, **kwargs)
        # The pre-activation must survive the in-place write: SUGAR runs on a copy, whose
        # autograd node saves it, and the result is written back into x (x's history then ends
        # in that copy_, as an in-place op's does).
        return x.copy_(self._sugar(x.clone()))

    def _sugar(self, x: torch.Tensor) -> torch.Tensor:
        """The op on x with this patch's settings, called positionally (see _relu). With no other
        function mode below this one (it is off while it handles a call) and a plain tensor,
        straight to the dispatcher, as torch_sugar.relu's fast path; otherwise through torch.ops,
        so the modes below (a DeadUnitMonitor's, say) and torch.compile see the call."""
        if type(x) in _PLAIN_TENSORS and not _is_compiling() and _len_function_modes() == 0:
            return _relu_direct(x, self.surrogate, self.alpha, self.negative_only)
        return _RELU(x, self.surrogate, self.alpha, self.negative_only)

    def __repr__(self) -> str:
        alpha = "" if self.alpha is None else f", alpha={self.alpha:g}"
        scope = ", negative_only=True" if self.negative_only else ""
        return f"torch_sugar.patch({self.surrogate!r}{alpha}{scope})"

    # contextlib.ContextDecorator: each call of a decorated function enters this same object.
    def _recreate_cm(self):
        return self


def _may_need_grad(x: torch.Tensor) -> bool:
    """Whether a gradient (reverse or forward mode, a torch.func transform) can flow from x."""
    return (
        (x.requires_grad and torch.is_grad_enabled())
        or torch.autograd.forward_ad._current_level >= 0
        or _is_functorch_wrapped(x)
    )


def settings_of(p: Optional[patch]) -> Optional[dict]:
    """A patch's settings as keyword arguments (None for None)."""
    if p is None:
        return None
    return {"surrogate": p.surrogate, "alpha": p.alpha, "negative_only": p.negative_only}


class PatchedForward:
    """``model.forward`` while :func:`torch_sugar.convert` (``functional=True``) holds: the
    model's own forward (its class's, or an instance-level one that was there before) run under
    the patch. A plain object, so the model still pickles and deep-copies."""

    def __init__(self, module: torch.nn.Module, patch_: patch, previous=None):
        self.module = module
        self.patch = patch_
        self.previous = previous  # an instance attribute `forward` that convert replaced, if any

    def __call__(self, *args, **kwargs):
        forward = self.previous
        with self.patch:
            if forward is None:
                return type(self.module).forward(self.module, *args, **kwargs)
            return forward(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self.module).__name__}.forward under {self.patch!r}>"


SCRIPTING_ERROR = (
    "TorchScript cannot run a model that carries torch_sugar.convert(..., functional=True): "
    "scripted code does not call Python, so its F.relu/torch.relu calls would silently lose "
    "SUGAR. Call torch_sugar.revert(model), or convert(model, functional=False) (its nn.ReLU "
    "modules become SugarReLU, which TorchScript runs), before torch.jit.script/trace."
)
