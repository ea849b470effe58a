"""Python entry points to the sugar ops. All the work happens in the C++ op library."""

from collections import namedtuple
from numbers import Real
from typing import List, Optional

import torch

from . import _C

Surrogate = namedtuple("Surrogate", ["name", "default_alpha", "alpha_range", "description", "alias_of"])
Surrogate.__doc__ = """One surrogate the ops accept.

name: the string to pass as ``surrogate``; default_alpha: its alpha when none is given (None if it
takes no alpha); alpha_range: what alpha may be, in words; description: one line; alias_of: the
canonical name if this name is an alias (``swish`` -> ``silu``), else None."""


def surrogates() -> List[Surrogate]:
    """Every surrogate name the ops accept, with default alpha and a one-line description."""
    return [Surrogate(**row) for row in _C.surrogates()]


def _check_args(fn: str, surrogate, alpha, negative_only) -> Optional[float]:
    """Python-level type checks, so a wrong type names the argument; values are checked in C++.

    Returns alpha as a float (or None): an int alpha is a value like any other."""
    if not isinstance(surrogate, str):
        raise TypeError(
            f"{fn}: surrogate must be a str naming a surrogate, got {type(surrogate).__name__}"
            f" ({surrogate!r})"
        )
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, Real)):
        raise TypeError(f"{fn}: alpha must be a float or None, got {type(alpha).__name__} ({alpha!r})")
    if not isinstance(negative_only, bool):
        raise TypeError(
            f"{fn}: negative_only must be a bool, got {type(negative_only).__name__} ({negative_only!r})"
        )
    if alpha is None:
        return None
    try:
        return float(alpha)
    except OverflowError:
        text = str(alpha)
        shown = text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(text)} digits)"
        raise ValueError(
            f"{fn}: alpha must be a finite number, but got alpha={shown}, which is too "
            "large for a float (torch_sugar.surrogates() lists each surrogate's range)"
        ) from None


# The ops' overloads, looked up once (cheaper per call than torch.ops.sugar.relu(...)).
_RELU = torch.ops.sugar.relu.default
_RELU_BACKWARD = torch.ops.sugar.relu_backward.default
_relu_direct = _C.relu
_is_compiling = torch.compiler.is_compiling
_has_torch_function_unary = torch._C._has_torch_function_unary


def _relu_checked(fn: str, x, surrogate, alpha, negative_only) -> torch.Tensor:
    """torch.ops.sugar.relu after the Python-level checks: what every path but the eager fast
    path runs (torch.compile traces this call; __torch_function__ overrides, torch.fx proxies
    included, see it)."""
    alpha = _check_args(fn, surrogate, alpha, negative_only)
    if not isinstance(x, torch.Tensor) and not _has_torch_function_unary(x):
        raise TypeError(f"{fn}: x must be a torch.Tensor, got {type(x).__name__}")
    # By keyword: an active torch_sugar.patch recognizes this call as a SugarReLU's or
    # torch_sugar.relu's and gives it the patch's settings (see _patch.patch._relu).
    return _RELU(x, surrogate=surrogate, alpha=alpha, negative_only=negative_only)


def relu(
    x: torch.Tensor, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False
) -> torch.Tensor:
    """SUGAR ReLU: ``torch.relu(x)`` forward; backward ``grad * s'(x)`` for surrogate ``s``.

    Args:
        x: a float16, bfloat16, float32 or float64 tensor, any shape and layout.
        surrogate: one of ``[s.name for s in torch_sugar.surrogates()]``; "relu" is the control
            (exactly torch.relu's gradient).
        alpha: the surrogate's parameter (bsilu, nelu, elu, leaky_relu); None for its default.
        negative_only: use the surrogate's derivative only where x <= 0 and pass the gradient
            through unchanged where x > 0.

    Forward-mode AD (``torch.func.jvp``, ``torch.autograd.forward_ad``) follows the FGI form: the
    tangent of the output is ``tangent * s'(x)``, the same factor as backward.
    """
    # The eager fast path: a plain tensor and exactly-typed arguments go straight to the
    # dispatcher (per-call cost matters: activations run on small tensors too). Anything else
    # (an int alpha, a wrong type, a tensor subclass or mode with __torch_function__, a
    # torch.fx proxy, tracing by torch.compile) takes the checked torch.ops path, whose errors
    # name the argument.
    if not _is_compiling() and not _has_torch_function_unary(x):
        try:
            return _relu_direct(x, surrogate, alpha, negative_only)
        except TypeError:
            pass
    return _relu_checked("torch_sugar.relu", x, surrogate, alpha, negative_only)


def relu_backward(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    surrogate: str = "bsilu",
    alpha: Optional[float] = None,
    negative_only: bool = False,
) -> torch.Tensor:
    """``grad_output * d(x)``: the gradient :func:`relu` uses, as a differentiable op."""
    alpha = _check_args("torch_sugar.relu_backward", surrogate, alpha, negative_only)
    return _RELU_BACKWARD(grad_output, x, surrogate, alpha, negative_only)


def validate(
    surrogate: str, alpha: Optional[float] = None, negative_only: bool = False, fn: str = "torch_sugar"
) -> None:
    """Raises TypeError/ValueError unless the arguments are accepted by the ops."""
    alpha = _check_args(fn, surrogate, alpha, negative_only)
    # The C++ library is the one judge of names and alpha ranges: ask it on an empty tensor.
    torch.ops.sugar.relu(torch.empty(0), surrogate, alpha, negative_only)


def build_info() -> dict:
    """How this copy of torch-sugar was built, and which kernels are registered now."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    return {
        "version": _C.version,
        "torch_built_against": _C.torch_version,
        "torch_running": torch.__version__,
        "cuda_compiled": bool(_C.cuda_compiled),
        # TORCH_CUDA_ARCH_LIST the CUDA kernels were compiled for (None in a CPU-only build).
        "cuda_arch_list": _C.cuda_arch_list,
        # (A CPU-only build registers error kernels for CUDA that say so: not kernels.)
        "kernels": {
            key: bool(has("sugar::relu", key)) and (key != "CUDA" or bool(_C.cuda_compiled))
            for key in ("CPU", "CUDA", "Meta", "Autograd")
        },
        # The CPU kernels in use: "default", "avx2" or "avx512" (SUGAR_CPU_CAPABILITY forces one).
        "cpu_capability": _cpu_capability_or_error(),
    }


def _cpu_capability_or_error() -> str:
    try:
        return torch.ops.sugar._cpu_capability()
    except (RuntimeError, ValueError) as exc:  # a bad SUGAR_CPU_CAPABILITY: report, don't raise
        return f"error: {str(exc).splitlines()[0]}"
