"""``DeadUnitMonitor``: counts the ReLU units that never fire, for any model and training loop.

A unit is *active* on an input if its activation output is > 0, and *dead* on a set of inputs if
it is active on none of them. For a ReLU (or a SugarReLU, whose forward is the same) that means
its pre-activation was <= 0 for every input, so plain ReLU passes it no gradient at all.

    monitor = torch_sugar.DeadUnitMonitor(model)   # hooks every nn.ReLU and SugarReLU
    with torch.no_grad():
        for x, _ in eval_loader:
            model(x)
    print(monitor.results().fraction)              # dead units / all units
    monitor.reset()                                # start counting afresh
    monitor.remove()                               # or use it as a context manager

A *unit* is a feature of a 2-D ``(batch, features)`` output and a channel of an ``(batch,
channels, ...)`` output (conv feature maps: the channel is active if any position is > 0).
"""

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._ops import _RELU
from .modules import SugarReLU

__all__ = ["DeadUnitMonitor", "DeadUnitResults", "LayerDeadUnits"]

# The calls that compute a ReLU (F.relu_ is torch.relu_; _RELU: torch_sugar.relu and patches).
_RELU_CALLS = frozenset((F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, _RELU))


@dataclass(frozen=True)
class LayerDeadUnits:
    """Counts for one hooked activation (one call site, see :class:`DeadUnitMonitor`)."""

    name: str  #: qualified module name, with ``#k`` for the k-th extra call of a reused module
    units: int  #: features (2-D outputs) or channels (N-D outputs)
    dead: int  #: units never active on the inputs seen since the last reset
    samples: int  #: inputs (batch rows) seen since the last reset

    @property
    def active(self) -> int:
        return self.units - self.dead

    @property
    def fraction(self) -> float:
        """Dead fraction of this layer's units."""
        return self.dead / self.units if self.units else 0.0


@dataclass(frozen=True)
class DeadUnitResults:
    """What :meth:`DeadUnitMonitor.results` returns: per-layer counts and the totals."""

    layers: Tuple[LayerDeadUnits, ...]

    @property
    def units(self) -> int:
        return sum(layer.units for layer in self.layers)

    @property
    def dead(self) -> int:
        return sum(layer.dead for layer in self.layers)

    @property
    def fraction(self) -> float:
        """Dead units over all units of all layers (0.0 before any input was seen)."""
        units = self.units
        return self.dead / units if units else 0.0

    def __getitem__(self, name: str) -> LayerDeadUnits:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(
            f"DeadUnitResults: no layer named {name!r}; layers seen: {[layer.name for layer in self.layers]}"
        )

    def as_dict(self) -> dict:
        """Plain-Python form (for JSON): totals plus ``layers: {name: {units, dead, fraction}}``."""
        return {
            "fraction": self.fraction,
            "dead": self.dead,
            "units": self.units,
            "layers": OrderedDict(
                (
                    layer.name,
                    {
                        "units": layer.units,
                        "dead": layer.dead,
                        "fraction": layer.fraction,
                        "samples": layer.samples,
                    },
                )
                for layer in self.layers
            ),
        }


class DeadUnitMonitor:
    """Forward hooks on a model's ReLU modules that record which units were ever active.

    Args:
        model: any ``nn.Module``; every submodule that is an ``nn.ReLU`` or a
            :class:`torch_sugar.SugarReLU` (for example after :func:`torch_sugar.convert`) is hooked,
            the model itself included.
        module_types: the activation module classes to hook, if not those two.
        enabled: whether to count from the start; set ``monitor.enabled`` to pause and resume (for
            example count only during evaluation, not on training batches).

        functional: also count the ReLUs that ``forward`` methods compute as calls (``F.relu``,
            ``torch.relu``, ``x.relu()``, their in-place forms, ``torch_sugar.relu``), each named
            after the innermost module whose forward made the call and its place among that
            module's calls in one forward pass of ``model``: ``block1#relu0``, ``block1#relu1``;
            ``(model)#relu0`` for calls in the model's own forward (default True). They are seen
            through a ``torch.overrides.TorchFunctionMode`` entered only while ``model`` runs
            with counting enabled. TorchScript code cannot be watched.

    A module that a forward pass of ``model`` calls more than once (torchvision's ResNet reuses
    one ``nn.ReLU`` per block) gets one entry per call site, ``name``, ``name#1``, ...; calls made
    outside a forward pass of ``model`` all count as the first call site.

    Counting runs under ``torch.no_grad`` on detached outputs; it does not change the model's
    outputs or gradients. Counts stay on the outputs' device until :meth:`results` is asked.
    """

    DEFAULT_TYPES: Tuple[Type[nn.Module], ...] = (nn.ReLU, SugarReLU)

    def __init__(
        self,
        model: nn.Module,
        module_types: Optional[Iterable[Type[nn.Module]]] = None,
        enabled: bool = True,
        functional: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"DeadUnitMonitor: model must be an nn.Module, got {type(model).__name__}")
        types = self.DEFAULT_TYPES if module_types is None else tuple(module_types)
        if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
            raise TypeError(f"DeadUnitMonitor: module_types must be nn.Module subclasses, got {types!r}")
        self.enabled = bool(enabled)
        self._module_names: "OrderedDict[str, nn.Module]" = OrderedDict(
            (name or "(model)", module) for name, module in model.named_modules() if isinstance(module, types)
        )
        if not self._module_names and not functional:
            raise ValueError(
                "DeadUnitMonitor: the model has no "
                + " or ".join(t.__name__ for t in types)
                + " modules to hook (functional=True also counts F.relu/torch.relu calls)"
            )
        self._model_name = type(model).__name__
        self._forward_passes = 0
        self._warned_nothing_seen = False
        self._active: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._samples: Dict[str, int] = {}
        self._calls: Dict[int, int] = {}
        self._in_model_forward = False
        self._handles = [
            model.register_forward_pre_hook(self._model_pre_hook),
            model.register_forward_hook(self._model_post_hook, always_call=True),
        ]
        for name, module in self._module_names.items():
            self._handles.append(module.register_forward_hook(self._make_hook(name)))
        self._watch = _FunctionalReluWatch(self, set(self._module_names.values())) if functional else None
        if self._watch is not None:
            for name, module in model.named_modules():
                self._handles += self._watch.track(name or "(model)", module)

    # -- hooks ---------------------------------------------------------------------------------
    def _model_pre_hook(self, module, args):
        self._in_model_forward = True
        self._calls.clear()
        if self.enabled:
            self._forward_passes += 1
            if self._watch is not None:
                self._watch.start()

    def _model_post_hook(self, module, args, output):
        self._in_model_forward = False
        if self._watch is not None:
            self._watch.stop()

    def _make_hook(self, name: str):
        def hook(module, args, output):
            if not self.enabled or not isinstance(output, torch.Tensor):
                return
            key = name
            if self._in_model_forward:
                call = self._calls.get(id(module), 0)
                self._calls[id(module)] = call + 1
                if call:
                    key = f"{name}#{call}"
            self._record(key, output)

        return hook

    def _record(self, key: str, output: torch.Tensor) -> None:
        with torch.no_grad():
            out = output.detach()
            if out.dim() == 0:
                return
            if out.dim() == 1:  # an unbatched vector: one sample, each element a unit
                active, samples = out > 0, 1
            else:  # (batch, units, ...): reduce over the batch and every position
                active = (out.transpose(0, 1).reshape(out.shape[1], -1) > 0).any(dim=1)
                samples = out.shape[0]
            seen = self._active.get(key)
            if seen is None:
                self._active[key] = active.clone()
            elif seen.shape != active.shape:
                raise RuntimeError(
                    f"DeadUnitMonitor: layer {key!r} produced {active.numel()} units, earlier "
                    f"{seen.numel()}; call reset() before feeding inputs of another layout"
                )
            else:
                seen |= active.to(seen.device)
            self._samples[key] = self._samples.get(key, 0) + samples

    # -- public API ----------------------------------------------------------------------------
    @property
    def layer_names(self) -> List[str]:
        """Names of the hooked modules, in the model's module order."""
        return list(self._module_names)

    def reset(self) -> None:
        """Forgets every count (for example before each evaluation pass)."""
        self._active.clear()
        self._samples.clear()
        self._forward_passes = 0

    def dead_masks(self) -> "OrderedDict[str, torch.Tensor]":
        """``{layer: bool tensor (units,)}``, True where the unit was never active (on the CPU)."""
        return OrderedDict((key, ~active.cpu()) for key, active in self._active.items())

    def results(self) -> DeadUnitResults:
        """Per-layer counts since the last reset, in the order the layers first ran."""
        if self._forward_passes and not self._active and not self._warned_nothing_seen:
            self._warned_nothing_seen = True
            warnings.warn(
                f"DeadUnitMonitor: {self._model_name} ran {self._forward_passes} forward passes with "
                "counting enabled and computed no ReLU the monitor can see (nn.ReLU/SugarReLU modules, "
                "F.relu, torch.relu, x.relu(); TorchScript code cannot be watched)",
                RuntimeWarning,
                stacklevel=2,
            )
        return DeadUnitResults(
            tuple(
                LayerDeadUnits(
                    name=key,
                    units=int(active.numel()),
                    dead=int(active.numel() - int(active.sum())),
                    samples=self._samples[key],
                )
                for key, active in self._active.items()
            )
        )

    def remove(self) -> None:
        """Removes every hook; the counts stay readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "DeadUnitMonitor":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        res = self.results()
        state = "hooked" if self._handles else "hooks removed"
        return (
            f"DeadUnitMonitor({len(self._module_names)} modules, {state}, "
            f"{res.dead}/{res.units} units dead so far)"
        )


class _FunctionalReluWatch(TorchFunctionMode):
    """Records the ReLUs that forward methods compute as calls, for a DeadUnitMonitor.

    Entered only during a forward pass of the monitored model (with counting enabled). A stack
    of module names, kept by hooks on every submodule, names each call after the innermost module
    running; calls made inside a hooked activation module (nn.ReLU calls F.relu) are that
    module's hook's to count."""

    def __init__(self, monitor: "DeadUnitMonitor", hooked: set):
        super().__init__()
        self._monitor = monitor
        self._hooked_ids = {id(m) for m in hooked}
        self._stack: List[Tuple[str, int]] = []
        self._counts: Dict[str, int] = {}
        self._depth = 0

    def track(self, name: str, module: nn.Module) -> list:
        def pre(mod, args):
            self._stack.append((name, id(mod)))

        def post(mod, args, output):
            if self._stack:
                self._stack.pop()

        return [module.register_forward_pre_hook(pre), module.register_forward_hook(post, always_call=True)]

    def start(self) -> None:
        self._counts.clear()
        self._depth += 1
        if self._depth == 1:
            self.__enter__()

    def stop(self) -> None:
        if self._depth:
            self._depth -= 1
            if self._depth == 0:
                self.__exit__(None, None, None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = {} if kwargs is None else kwargs
        out = func(*args, **kwargs)
        if func in _RELU_CALLS and self._stack and isinstance(out, torch.Tensor):
            name, module_id = self._stack[-1]
            if module_id not in self._hooked_ids:
                k = self._counts.get(name, 0)
                self._counts[name] = k + 1
                if self._monitor.enabled:
                    self._monitor._record(f"{name}#relu{k}", out)
        return out
