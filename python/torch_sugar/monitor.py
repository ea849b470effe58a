"""``DeadUnitMonitor``: counts the ReLU units that never fire, for any model and training loop.

A unit is *active* on an input if its activation output is > 0, and *dead* on a set of inputs if
it is active on none of them. For a ReLU (or a SugarReLU, whose forward is the same) that means
its pre-activation was <= 0 for every input, so plain ReLU passes it no gradient at all.

    monitor = torch_sugar.DeadUnitMonitor(model)   # hooks every nn.ReLU and SugarReLU
    with torch.no_grad():
        for x, _ in eval_loader:
            model(x)
    print(monitor.results().fraction)              # dead units / all units
    print(monitor.results().dormant_fraction)      # tau-dormant units / all units (see below)
    monitor.reset()                                # start counting afresh
    monitor.remove()                               # or use it as a context manager

A *unit* is a feature of a 2-D ``(batch, features)`` output and a channel of an ``(batch,
channels, ...)`` output (conv feature maps: the channel is active if any position is > 0);
``unit_dim=-1`` makes it the last dimension instead, the features of ``(batch, tokens, features)``
transformer outputs.

A unit is *tau-dormant* (ReDo: Sokar et al., 2023, "The Dormant Neuron Phenomenon in Deep
Reinforcement Learning", Definition 3.1) when its score

    s_i = E|h_i| / ((1/H) * sum_j E|h_j|)        (H units in the layer)

is at most ``tau`` (0.1 by default). E is the mean over the inputs seen since the last reset and, for
a conv channel, over every position too. The score divides the unit's mean absolute activation by
the layer's average of those means, so a layer's scores average 1 (the paper's text and its code's
comment say they "sum to one", but its formula and its code divide by the mean). The comparison
is ``<=``, as in the paper and its code, so with ``tau=0`` the dormant units are those whose
activation is exactly 0 on every input. A layer whose activations are all 0 has every score 0/0;
here, as in the authors' code, all its units are dormant (their code adds 1e-9 to the
denominator, which also makes more units dormant in a layer whose mean activation is itself
tiny; this implementation divides exactly). For a ReLU every dead unit is dormant (its mean is
exactly 0); a unit can be dormant without being dead.
"""

import math
import numbers
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from . import _threads
from ._ops import _RELU
from .modules import SugarReLU

__all__ = ["DeadUnitMonitor", "DeadUnitResults", "LayerDeadUnits"]

# The calls that compute a ReLU (F.relu_ is torch.relu_; _RELU: torch_sugar.relu and patches).
_RELU_CALLS = frozenset((F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, _RELU))
# Devices without float64 keep the running sums of |activation| in float32.
_SUM_DTYPE = {"mps": torch.float32}


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"DeadUnitMonitor: tau must be a number (a finite float >= 0), got {tau!r}")
    if not (math.isfinite(tau) and tau >= 0):
        raise ValueError(f"DeadUnitMonitor: tau must be a finite number >= 0 (default 0.1), got {tau!r}")
    return float(tau)


def _check_unit_dim(unit_dim) -> int:
    if isinstance(unit_dim, bool) or not isinstance(unit_dim, int):
        raise TypeError(f"DeadUnitMonitor: unit_dim must be an int (1 or -1, typically), got {unit_dim!r}")
    if unit_dim == 0:
        raise ValueError(
            f"DeadUnitMonitor: unit_dim must be a nonzero int (1: (batch, units, ...) outputs, "
            f"-1: (batch, ..., units); 0 is the batch), got {unit_dim!r}"
        )
    return unit_dim


def _dormancy_scores(abs_sums: torch.Tensor) -> torch.Tensor:
    """ReDo scores of one layer from its per-unit sums of |h| (float64, on the CPU).

    Every unit of a layer is summed over the same inputs and positions, so the ratio of a unit's
    sum to the layer's mean sum is the ratio of the means; a layer whose sums are all 0 scores 0."""
    sums = abs_sums.detach().cpu().to(torch.float64)
    layer_mean = sums.mean()
    return torch.zeros_like(sums) if layer_mean == 0 else sums / layer_mean


@dataclass(frozen=True)
class LayerDeadUnits:
    """Counts for one hooked activation (one call site, see :class:`DeadUnitMonitor`)."""

    name: str  #: qualified module name, with ``#k`` for the k-th extra call of a reused module
    units: int  #: features (2-D outputs) or channels (N-D outputs)
    dead: int  #: units never active on the inputs seen since the last reset
    samples: int  #: inputs (batch rows) seen since the last reset
    dormant: int  #: tau-dormant units (score <= tau, see the module docstring)

    @property
    def active(self) -> int:
        return self.units - self.dead

    @property
    def fraction(self) -> float:
        """Dead fraction of this layer's units."""
        return self.dead / self.units if self.units else 0.0

    @property
    def dormant_fraction(self) -> float:
        """tau-dormant fraction of this layer's units."""
        return self.dormant / self.units if self.units else 0.0


@dataclass(frozen=True)
class DeadUnitResults:
    """What :meth:`DeadUnitMonitor.results` returns: per-layer counts and the totals."""

    layers: Tuple[LayerDeadUnits, ...]
    tau: float  #: the dormancy threshold the ``dormant`` counts used

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

    @property
    def dormant(self) -> int:
        return sum(layer.dormant for layer in self.layers)

    @property
    def dormant_fraction(self) -> float:
        """tau-dormant units over all units of all layers (0.0 before any input was seen)."""
        units = self.units
        return self.dormant / units if units else 0.0

    def __getitem__(self, name: str) -> LayerDeadUnits:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(
            f"DeadUnitResults: no layer named {name!r}; layers seen: {[layer.name for layer in self.layers]}"
        )

    def as_dict(self) -> dict:
        """Plain-Python form (for JSON): the totals (``fraction`` is the dead fraction), ``tau``, and
        ``layers: {name: {units, dead, fraction, samples, dormant, dormant_fraction}}``."""
        return {
            "fraction": self.fraction,
            "dead": self.dead,
            "units": self.units,
            "dormant": self.dormant,
            "dormant_fraction": self.dormant_fraction,
            "tau": self.tau,
            "layers": OrderedDict(
                (
                    layer.name,
                    {
                        "units": layer.units,
                        "dead": layer.dead,
                        "fraction": layer.fraction,
                        "samples": layer.samples,
                        "dormant": layer.dormant,
                        "dormant_fraction": layer.dormant_fraction,
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
        tau: the dormancy threshold: a unit is dormant when its score (its mean absolute activation
            over the layer's average of those means) is ``<= tau``; a finite number >= 0.
        unit_dim: the dimension of an activation's output that indexes its units: 1 (the default)
            for ``(batch, features)`` and ``(batch, channels, ...)`` outputs, -1 for
            ``(batch, tokens, features)``; every other dimension is reduced over. A 1-D output is
            one unbatched sample whose elements are the units, whatever ``unit_dim`` says.

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
    DEFAULT_TAU = 0.1

    def __init__(
        self,
        model: nn.Module,
        module_types: Optional[Iterable[Type[nn.Module]]] = None,
        enabled: bool = True,
        tau: float = DEFAULT_TAU,
        unit_dim: int = 1,
        functional: bool = True,
    ):
        self.tau = _check_tau(tau)
        self.unit_dim = _check_unit_dim(unit_dim)
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
        self._abs_sums: Dict[str, torch.Tensor] = {}  # per unit: sum of |h| over samples and positions
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
                out, samples = out.unsqueeze(0), 1
            else:
                samples = out.shape[0]
            unit_dim = self._unit_dim_of(key, out)
            reduced = tuple(d for d in range(out.dim()) if d != unit_dim)  # the batch and every position
            active = (out > 0).any(dim=reduced)
            # Per-batch sums in float32 (float64 for float64 outputs), added up across batches in
            # float64 where the device has it, so that many batches lose no precision.
            batch_dtype = torch.float64 if out.dtype == torch.float64 else torch.float32
            abs_sum = out.abs().sum(dim=reduced, dtype=batch_dtype)
            seen = self._active.get(key)
            if seen is None:
                self._active[key] = active.clone()
                self._abs_sums[key] = abs_sum.to(_SUM_DTYPE.get(out.device.type, torch.float64))
            elif seen.shape != active.shape:
                raise RuntimeError(
                    f"DeadUnitMonitor: layer {key!r} produced {active.numel()} units, earlier "
                    f"{seen.numel()}; call reset() before feeding inputs of another layout"
                )
            else:  # out of place: counts made under inference_mode must not be updated in place later
                self._active[key] = seen | active.to(seen.device)
                running = self._abs_sums[key]
                self._abs_sums[key] = running + abs_sum.to(running.device, running.dtype)
            self._samples[key] = self._samples.get(key, 0) + samples

    def _unit_dim_of(self, key: str, out: torch.Tensor) -> int:
        unit_dim = self.unit_dim + out.dim() if self.unit_dim < 0 else self.unit_dim
        if not 0 < unit_dim < out.dim():
            raise RuntimeError(
                f"DeadUnitMonitor: layer {key!r} produced an output of shape {tuple(out.shape)}, which has "
                f"no unit dimension {self.unit_dim} besides the batch (dimension 0); set unit_dim to 1 or -1"
            )
        return unit_dim

    # -- public API ----------------------------------------------------------------------------
    @property
    def layer_names(self) -> List[str]:
        """Names of the hooked modules, in the model's module order."""
        return list(self._module_names)

    def reset(self) -> None:
        """Forgets every count (for example before each evaluation pass)."""
        self._active.clear()
        self._abs_sums.clear()
        self._samples.clear()
        self._forward_passes = 0

    def dead_masks(self) -> "OrderedDict[str, torch.Tensor]":
        """``{layer: bool tensor (units,)}``, True where the unit was never active (on the CPU)."""
        return OrderedDict((key, ~active.cpu()) for key, active in self._active.items())

    def dormancy_scores(self) -> "OrderedDict[str, torch.Tensor]":
        """``{layer: float64 tensor (units,)}``, each unit's ReDo score s_i (on the CPU; the scores
        of a layer average 1, or are all 0 when its activations were)."""
        return OrderedDict((key, _dormancy_scores(sums)) for key, sums in self._abs_sums.items())

    def dormant_masks(self) -> "OrderedDict[str, torch.Tensor]":
        """``{layer: bool tensor (units,)}``, True where the unit is tau-dormant (score <= tau)."""
        return OrderedDict((key, scores <= self.tau) for key, scores in self.dormancy_scores().items())

    def results(self, all_ranks: bool = False) -> DeadUnitResults:
        """Per-layer counts since the last reset, in the order the layers first ran.

        With ``all_ranks=True`` and an initialized ``torch.distributed`` process group, the counts of
        every rank are combined first (a unit is dead if it was dead on every rank; the dormancy
        scores come from the sums of all ranks): a collective call that every rank must make, and
        that returns the same results on each. With no process group it is the local counts."""
        if self._forward_passes and not self._active and not self._warned_nothing_seen:
            self._warned_nothing_seen = True
            warnings.warn(
                f"DeadUnitMonitor: {self._model_name} ran {self._forward_passes} forward passes with "
                "counting enabled and computed no ReLU the monitor can see (nn.ReLU/SugarReLU modules, "
                "F.relu, torch.relu, x.relu(); TorchScript code cannot be watched)",
                RuntimeWarning,
                stacklevel=2,
            )
        active, abs_sums, samples = self._all_ranks_counts() if all_ranks else self._local_counts()
        return DeadUnitResults(
            tuple(
                LayerDeadUnits(
                    name=key,
                    units=int(seen.numel()),
                    dead=int(seen.numel() - int(seen.sum())),
                    samples=samples[key],
                    dormant=int((_dormancy_scores(abs_sums[key]) <= self.tau).sum()),
                )
                for key, seen in active.items()
            ),
            self.tau,
        )

    def _local_counts(self):
        return self._active, self._abs_sums, self._samples

    def _all_ranks_counts(self):
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self._local_counts()
        local = [
            (key, active.cpu(), self._abs_sums[key].cpu().to(torch.float64), self._samples[key])
            for key, active in self._active.items()
        ]
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, local)
        active_all: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        sums_all: Dict[str, torch.Tensor] = {}
        samples_all: Dict[str, int] = {}
        for rank, counts in enumerate(gathered):
            for key, active, sums, samples in counts:
                if key not in active_all:
                    active_all[key], sums_all[key], samples_all[key] = active.clone(), sums.clone(), samples
                elif active_all[key].shape != active.shape:
                    raise RuntimeError(
                        f"DeadUnitMonitor: layer {key!r} has {active.numel()} units on rank {rank} but "
                        f"{active_all[key].numel()} on an earlier rank"
                    )
                else:
                    active_all[key] |= active
                    sums_all[key] += sums
                    samples_all[key] += samples
        return active_all, sums_all, samples_all

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
            f"{res.dead}/{res.units} units dead, {res.dormant} dormant (tau={self.tau:g}) so far)"
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
            _threads.settle_at_exit()
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
