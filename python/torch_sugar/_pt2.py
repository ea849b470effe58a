"""How the sugar ops meet the PyTorch 2 stack. Importing torch_sugar runs ``register()``:

- vmap: a batching rule for each op (``torch.library.register_vmap``). The ops are elementwise, so
  a batched call is one call on the underlying tensors: no per-sample loop, no warning.
- decompositions (_decomp.py) for the compilers and exporters:
  * ``torch._decomp``'s global table, which the ONNX exporter (``dynamo=True``) applies, so an
    exported SUGAR model says ``Relu``;
  * inductor's table (``torch.compile``, AOTInductor), so inductor fuses the ReLU forward and the
    surrogate backward with their neighbours instead of calling the ops as extern kernels.
    Importing torch._inductor costs seconds, so this registration waits until something else
    imports ``torch._inductor.decomposition`` (see ``_after_import``).
- the TorchScript-based ONNX exporter (``dynamo=False``): ``sugar::relu`` exports as ``Relu``
  (registered when ``torch.onnx`` is imported).

Autograd (reverse and forward mode, second order) is the C++ library's, for every caller: the
functorch transforms (grad, vjp, jacrev, jvp, jacfwd, hessian) run it as they run ATen's own.
"""

import importlib.abc
import importlib.machinery
import sys
import warnings
from typing import Callable, Dict, List

import torch

from . import _decomp

_OPS = ("relu", "relu_backward", "_relu_double_backward")
# Number of leading tensor arguments of each op (the rest are surrogate, alpha, negative_only).
_NUM_TENSORS = {"relu": 1, "relu_backward": 2, "_relu_double_backward": 3}


# ---- vmap ----


def _vmap_rule(name: str) -> Callable:
    op = getattr(torch.ops.sugar, name).default
    n = _NUM_TENSORS[name]

    def rule(info, in_dims, *args):
        tensors, rest = list(args[:n]), args[n:]
        dims = list(in_dims[:n])
        if len(set(dims)) == 1:
            # Every tensor batched along the same dimension (the usual case; always for relu):
            # elementwise, so the op runs on the tensors as they are, any layout.
            return op(*tensors, *rest), dims[0]
        # Mixed: batch dimension first everywhere, unbatched tensors broadcast (expanded, no copy).
        for i, (t, d) in enumerate(zip(tensors, dims)):
            tensors[i] = t.movedim(d, 0) if d is not None else t.expand(info.batch_size, *t.shape)
        return op(*tensors, *rest), 0

    return rule


# ---- running code once a module is imported ----


class _LoaderThenCall(importlib.abc.Loader):
    def __init__(self, loader, callback):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._callback(module)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls callback(module) right after `name` is first imported (a post-import hook)."""

    def __init__(self):
        self.callbacks: Dict[str, List[Callable]] = {}

    def find_spec(self, name, path, target=None):
        callbacks = self.callbacks.pop(name, None)
        if not callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None

        def run(module):
            for callback in callbacks:
                callback(module)

        spec.loader = _LoaderThenCall(spec.loader, run)
        return spec


_hook = _AfterImport()


def _after_import(name: str, callback: Callable) -> None:
    """callback(module) now if `name` is imported already, else as soon as it is."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _hook.callbacks.setdefault(name, []).append(callback)
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)


# ---- registrations ----


def _register_inductor(module) -> None:
    # inductor's own table (torch._inductor.decomposition.decompositions), read at every compile.
    for op, fn in _decomp.table().items():
        module.decompositions.setdefault(op, fn)


def _register_onnx_torchscript(onnx) -> None:
    def relu_symbolic(g, self, surrogate, alpha, negative_only):
        return g.op("Relu", self)

    onnx.register_custom_op_symbolic("sugar::relu", relu_symbolic, 1)


def _dynamo_hands_relu_to_modes(module) -> None:
    # Dynamo hands a call to torch function modes only if the function is in this cached set,
    # built from torch.overrides, which leaves out the torch namespace's in-place functions
    # (eager mode hands them over all the same). torch_sugar.patch needs torch.relu_ (= F.relu_).
    try:
        module.get_overridable_functions().add(torch.relu_)
    except AttributeError:
        warnings.warn(
            "torch_sugar.patch: this torch's compiler (dynamo) has no get_overridable_functions; "
            "compiled torch.relu_/F.relu_ calls may stay plain ReLU under the patch",
            RuntimeWarning,
            stacklevel=2,
        )


_dynamo_relu_pending = False


def dynamo_dispatches_relu_() -> None:
    """Makes torch.compile hand ``torch.relu_`` to torch function modes, as eager mode does."""
    global _dynamo_relu_pending
    if not _dynamo_relu_pending:
        _dynamo_relu_pending = True
        _after_import("torch._dynamo.variables.torch", _dynamo_hands_relu_to_modes)


_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    for name in _OPS:
        torch.library.register_vmap(f"sugar::{name}", _vmap_rule(name))
    table = torch._decomp.global_decomposition_table["post_autograd"]
    for op, fn in _decomp.table().items():
        table.setdefault(op, fn)
    _after_import("torch._inductor.decomposition", _register_inductor)
    _after_import("torch.onnx", _register_onnx_torchscript)
