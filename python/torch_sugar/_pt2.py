"""How the sugar ops meet the PyTorch 2 stack. Importing torch_sugar runs ``register()``:

- vmap: a batching rule for each op (``torch.library.register_vmap``). The ops are elementwise, so
  a batched call is one call on the underlying tensors: no per-sample loop, no warning.
- decompositions (_decomp.py) for the compilers and exporters:
  * ``torch._decomp``'s global table, which the ONNX exporter (``dynamo=True``) applies, so an
    exported SUGAR model says ``Relu``;
  * inductor's table (``torch.compile``, AOTInductor), so inductor fuses the ReLU forward with
    its neighbours instead of calling the op as an extern kernel.
    Importing torch._inductor costs seconds, so this registration waits until something else
    imports ``torch._inductor.decomposition`` (see ``_after_import``).
- an inductor lowering of ``relu_backward`` (``_lower_relu_backward``): the same decomposition,
  lowered as one pointwise node, so the surrogate's derivative is computed once per element, in
  the loop that writes grad_input, where its decomposed ops would each be a node of their own.
- the TorchScript-based ONNX exporter (``dynamo=False``): ``sugar::relu`` exports as ``Relu``
  (registered when ``torch.onnx`` is imported).

Autograd (reverse and forward mode, second order) is the C++ library's, for every caller: the
functorch transforms (grad, vjp, jacrev, jvp, jacfwd, hessian) run it as they run ATen's own.
"""

import functools
import importlib.abc
import importlib.machinery
import importlib.util
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
    table = _decomp.table()
    table[torch.ops.sugar.relu_backward.default] = _relu_backward_for_inductor
    for op, fn in table.items():
        module.decompositions.setdefault(op, fn)


# ---- inductor: relu_backward as one pointwise node ----
#
# Decomposed, relu_backward is a dozen ATen nodes, and inductor decides for each node whether to
# store it in a buffer or inline it into its consumers. Reused nodes that contain an exp (CPU) or
# many loads get stored: in a conv + BatchNorm + SUGAR backward, the recomputed pre-activation x
# and exp(-|x|) became two extra full-size buffers, and grad_input, which the BatchNorm backward
# reads twice, was computed twice (README, "Compiled CNN training, per kernel"). Lowered as one
# node, the formula is inlined whole into one loop: inductor then stores grad_input once, as it
# stores nn.ReLU's threshold_backward, and nothing else.
#
# The lowering traces the decomposition once per (surrogate, alpha, scope, dtypes, device) on
# small meta tensors (its graph does not depend on the shape) and runs that graph through
# inductor's own lowerings with PointwiseSubgraphLowering, the helper inductor uses for the
# pointwise subgraphs of higher-order ops; it refuses to create a buffer. Any failure (an op
# without a lowering in some torch version) falls back to the eager kernel as an extern call.
#
# How inductor computes relu_backward: "lowering" (the above; set once it is registered),
# "decomposition" (each ATen op of _decomp.relu_backward a node of its own: before the lowering,
# and on a torch without PointwiseSubgraphLowering) or "extern" (the eager kernel, called from the
# compiled code). Read when a graph is compiled; bench_models.py and the tests set it to compare.
INDUCTOR_RELU_BACKWARD_MODES = ("lowering", "decomposition", "extern")
_inductor_relu_backward = "decomposition"


def _relu_backward_for_inductor(grad_output, self, surrogate, alpha, negative_only):
    if _inductor_relu_backward != "decomposition":
        return NotImplemented  # AOTAutograd keeps the op whole, for the lowering
    return _decomp.relu_backward(grad_output, self, surrogate, alpha, negative_only)


def set_inductor_relu_backward(mode: str) -> str:
    """Choose how graphs compiled from now on compute relu_backward; returns the previous mode."""
    global _inductor_relu_backward
    if mode not in INDUCTOR_RELU_BACKWARD_MODES:
        raise ValueError(f"mode: got {mode!r}; allowed: {', '.join(INDUCTOR_RELU_BACKWARD_MODES)}")
    if mode != "decomposition":
        import torch._inductor.lowering  # noqa: F401  (registers the lowering, see register())
    if mode == "lowering" and not _lowering_registered:
        raise RuntimeError("mode: 'lowering' needs torch._inductor.subgraph_lowering, absent in this torch")
    previous, _inductor_relu_backward = _inductor_relu_backward, mode
    return previous


@functools.lru_cache(maxsize=None)
def _traced_relu_backward(surrogate, alpha, negative_only, grad_dtype, self_dtype, device):
    from torch._inductor.decomposition import select_decomp_table
    from torch.fx.experimental.proxy_tensor import make_fx

    def relu_backward(grad_output, self):
        return _decomp.relu_backward(grad_output, self, surrogate, alpha, negative_only)

    example = (
        torch.empty(2, dtype=grad_dtype, device="meta"),
        torch.empty(2, dtype=self_dtype, device="meta"),
    )
    graph = make_fx(relu_backward, decomposition_table=select_decomp_table())(*example)
    for node in graph.graph.nodes:  # constants (scalar_tensor) belong on the real device
        if "device" in node.kwargs:
            node.update_kwarg("device", device)
    graph.recompile()
    return graph


_lowering_registered = False


def _register_inductor_lowering(lowering) -> None:
    global _lowering_registered, _inductor_relu_backward
    if importlib.util.find_spec("torch._inductor.subgraph_lowering") is None:
        return  # a torch without the helper: inductor keeps decomposing relu_backward
    op = torch.ops.sugar.relu_backward.default
    extern_kernel = lowering.fallback_handler(op, add_to_fallback_set=False)

    def lower_relu_backward(grad_output, self, surrogate, alpha, negative_only):
        # Imported here: this hook runs while torch._inductor.graph may still be importing.
        from torch._inductor.exc import SubgraphLoweringException
        from torch._inductor.subgraph_lowering import PointwiseSubgraphLowering
        from torch._inductor.virtualized import V

        if _inductor_relu_backward == "extern":
            return extern_kernel(grad_output, self, surrogate, alpha, negative_only)
        graph = _traced_relu_backward(
            surrogate, alpha, negative_only, grad_output.get_dtype(), self.get_dtype(), self.get_device()
        )
        subgraph = PointwiseSubgraphLowering(graph, root_graph_lowering=V.graph)
        try:
            with V.set_graph_handler(subgraph):
                subgraph.run(grad_output, self)
        except SubgraphLoweringException:
            return extern_kernel(grad_output, self, surrogate, alpha, negative_only)
        return subgraph.graph_outputs

    lowering.register_lowering(op, broadcast=True, type_promotion_kind=None)(lower_relu_backward)
    _lowering_registered = True
    _inductor_relu_backward = "lowering"


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
    _after_import("torch._inductor.lowering", _register_inductor_lowering)
    _after_import("torch.onnx", _register_onnx_torchscript)
