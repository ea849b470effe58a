"""``--activations``: what each name means and how it is put into a model.

Grammar of one name (a comma-separated list of them is compared):

- ``relu``: plain ``nn.ReLU``, the control;
- ``<surrogate>``: SUGAR, ReLU forward with the surrogate's derivative in backward, made with
  :func:`torch_sugar.convert`; ``<surrogate>:<alpha>`` sets alpha, ``<surrogate>-neg`` (or
  ``--negative-only``) uses the surrogate only where x <= 0;
- ``plain:<surrogate>[:<alpha>]``: the smooth function itself, forward and backward (what the
  paper compares SUGAR against, e.g. ``plain:gelu``).

The model is always built with ``nn.ReLU`` modules; each spec swaps them for its own module.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

import torch_sugar
from torch_sugar.modules import swap_modules

from .errors import UsageError

NEG_SUFFIX = "-neg"


def _bsilu(x, a):
    return (x + a) * torch.sigmoid(x) - a / 2


def _nelu(x, a):
    return torch.where(x > 0, x, -a / (1 + x * x))


#: The smooth functions s(x) of DESIGN.md's table, in plain PyTorch (autograd gives s'(x)).
SMOOTH_FUNCTIONS: Dict[str, Callable[[torch.Tensor, Optional[float]], torch.Tensor]] = {
    "bsilu": _bsilu,
    "nelu": _nelu,
    "elu": lambda x, a: F.elu(x, alpha=a),
    "selu": lambda x, a: F.selu(x),
    "leaky_relu": lambda x, a: F.leaky_relu(x, negative_slope=a),
    "gelu": lambda x, a: F.gelu(x),
    "gelu_tanh": lambda x, a: F.gelu(x, approximate="tanh"),
    "silu": lambda x, a: F.silu(x),
    "swish": lambda x, a: F.silu(x),
    "mish": lambda x, a: F.mish(x),
}


class SmoothActivation(nn.Module):
    """A surrogate's smooth function s(x) used as the activation, forward and backward."""

    def __init__(self, name: str, alpha: Optional[float] = None):
        super().__init__()
        if name not in SMOOTH_FUNCTIONS:
            raise ValueError(
                f"SmoothActivation: unknown function {name!r}; valid: {', '.join(SMOOTH_FUNCTIONS)}"
            )
        torch_sugar._ops.validate(name, alpha, fn="SmoothActivation")
        self.name = name
        self.alpha = _default_alpha(name) if alpha is None else float(alpha)
        self._fn = SMOOTH_FUNCTIONS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, self.alpha)

    def extra_repr(self) -> str:
        return self.name + ("" if self.alpha is None else f", alpha={self.alpha:g}")


def _default_alpha(name: str) -> Optional[float]:
    for s in torch_sugar.surrogates():
        if s.name == name:
            return s.default_alpha
    return None


def surrogate_names() -> List[str]:
    return [s.name for s in torch_sugar.surrogates()]


def valid_names_text() -> str:
    names = [n for n in surrogate_names() if n != "relu"]
    return (
        f"relu, {', '.join(names)} (SUGAR; add :ALPHA and/or {NEG_SUFFIX}), "
        f"plain:NAME for the smooth function itself (NAME one of {', '.join(SMOOTH_FUNCTIONS)})"
    )


@dataclass(frozen=True)
class ActivationSpec:
    """One entry of ``--activations``."""

    label: str  #: canonical name, used in tables, files and results.json
    kind: str  #: "relu", "sugar" or "plain"
    surrogate: Optional[str] = None
    alpha: Optional[float] = None
    negative_only: bool = False

    def make(self) -> nn.Module:
        """A fresh activation module of this kind (``nn.ReLU`` for the control)."""
        if self.kind == "relu":
            return nn.ReLU()
        if self.kind == "sugar":
            return torch_sugar.SugarReLU(self.surrogate, self.alpha, self.negative_only)
        return SmoothActivation(self.surrogate, self.alpha)

    def apply(self, model: nn.Module) -> nn.Module:
        """Makes ``model``'s ReLUs this activation, in place; returns the model. SUGAR reaches
        every ReLU: the ``nn.ReLU`` modules and, through ``convert(functional=True)``, the
        ``F.relu``/``torch.relu`` calls of a ``--model-fn`` model's forward. A plain activation
        can only replace modules: a model without ``nn.ReLU`` modules gets a warning."""
        if self.kind == "relu":
            return model
        if self.kind == "sugar":
            return torch_sugar.convert(model, self.surrogate, self.alpha, self.negative_only, functional=True)
        if not any(isinstance(m, nn.ReLU) for m in model.modules()):
            warnings.warn(
                f"--activations {self.label}: {type(model).__name__} has no nn.ReLU modules to replace; "
                "ReLUs computed as calls in its forward (F.relu, torch.relu) stay ReLU for a plain "
                "activation (SUGAR activations reach them)",
                UserWarning,
                stacklevel=2,
            )
        return replace_relu(model, self.make)

    def describe(self) -> str:
        if self.kind == "relu":
            return "nn.ReLU (control)"
        alpha = _default_alpha(self.surrogate) if self.alpha is None else self.alpha
        alpha_text = "" if alpha is None else f", alpha={alpha:g}"
        if self.kind == "sugar":
            scope = ", negative_only" if self.negative_only else ""
            return f"SUGAR: ReLU forward, {self.surrogate}' backward{alpha_text}{scope}"
        return f"{self.surrogate} forward and backward{alpha_text}"


def replace_relu(model: nn.Module, factory: Callable[[], nn.Module]) -> nn.Module:
    """Replaces every ``nn.ReLU`` (nested ones too) by ``factory()``, in place (the loop of
    ``torch_sugar.convert``, with another module)."""
    return swap_modules(model, nn.ReLU, lambda relu: factory())


def _parse_alpha(text: str, whole: str) -> float:
    try:
        alpha = float(text)
    except ValueError:
        raise UsageError(f"--activations: alpha in {whole!r} must be a number, got {text!r}") from None
    if not math.isfinite(alpha):
        raise UsageError(f"--activations: alpha in {whole!r} must be finite, got {text!r}")
    return alpha


def _check_with_ops(name: str, alpha: Optional[float], negative_only: bool, whole: str) -> None:
    """The op library is the judge of which alphas a surrogate takes."""
    try:
        torch_sugar._ops.validate(name, alpha, negative_only, fn="--activations")
    except (RuntimeError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--activations: {whole!r} is not valid: {reason}") from None


def parse_activation(text: str, negative_only: bool = False) -> ActivationSpec:
    """Parses one name of ``--activations`` (see the module docstring for the grammar)."""
    whole = text
    text = text.strip().lower()
    if not text:
        raise UsageError(f"--activations: empty name; valid names: {valid_names_text()}")
    names = surrogate_names()
    if text == "relu":
        return ActivationSpec("relu", "relu")
    if text.startswith("plain:"):
        parts = text.split(":")
        if len(parts) > 3 or parts[1] not in SMOOTH_FUNCTIONS:
            raise UsageError(
                f"--activations: unknown smooth function in {whole!r}; "
                f"plain:NAME takes NAME from {', '.join(SMOOTH_FUNCTIONS)}"
            )
        alpha = _parse_alpha(parts[2], whole) if len(parts) == 3 else None
        _check_with_ops(parts[1], alpha, False, whole)
        label = f"plain:{parts[1]}" + ("" if alpha is None else f":{alpha:g}")
        return ActivationSpec(label, "plain", parts[1], alpha)
    neg = negative_only
    if NEG_SUFFIX in text:  # "nelu-neg", "nelu-neg:0.05" and "nelu:0.05-neg" all mean the same
        text = text.replace(NEG_SUFFIX, "", 1)
        neg = True
    name, _, alpha_text = text.partition(":")
    if name not in names or name == "relu" and (alpha_text or neg):
        raise UsageError(f"--activations: unknown activation {whole!r}; valid names: {valid_names_text()}")
    alpha = _parse_alpha(alpha_text, whole) if alpha_text else None
    _check_with_ops(name, alpha, neg, whole)
    label = name + (NEG_SUFFIX if neg else "") + ("" if alpha is None else f":{alpha:g}")
    return ActivationSpec(label, "sugar", name, alpha, neg)


def parse_activations(text: str, negative_only: bool = False) -> List[ActivationSpec]:
    """Parses the comma-separated ``--activations`` value; duplicates are an error."""
    specs = [parse_activation(part, negative_only) for part in text.split(",")]
    seen = set()
    for spec in specs:
        if spec.label in seen:
            raise UsageError(f"--activations: {spec.label!r} is listed twice in {text!r}")
        seen.add(spec.label)
    return specs
