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


def _check_args(fn: str, surrogate, alpha, negative_only) -> None:
    """Python-level type checks, so a wrong type names the argument; values are checked in C++."""
    if not isinstance(surrogate, str):
        raise TypeError(f"{fn}: surrogate must be a str naming a surrogate, got {type(surrogate).__name__}"
                        f" ({surrogate!r})")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, Real)):
        raise TypeError(f"{fn}: alpha must be a float or None, got {type(alpha).__name__} ({alpha!r})")
    if not isinstance(negative_only, bool):
        raise TypeError(f"{fn}: negative_only must be a bool, got {type(negative_only).__name__}"
                        f" ({negative_only!r})")


# The ops' overloads, looked up once (cheaper per call than torch.ops.sugar.relu(...)).
_RELU = torch.ops.sugar.relu.default
_RELU_BACKWARD = torch.ops.sugar.relu_backward.default

# Whether this build has the CUDA kernels; a plain bool so torch.compile reads it as a constant.
_CUDA_COMPILED = bool(_C.cuda_compiled)


def _check_cuda_built(fn: str, *tensors: torch.Tensor) -> None:
    """In a CPU-only build, a CUDA tensor gets an error that says so and how to build with CUDA.

    The C++ library says the same for calls that go through autograd (its AutogradCUDA kernels);
    this covers the wrappers under torch.inference_mode too."""
    if _CUDA_COMPILED:
        return
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_cuda:
            raise NotImplementedError(
                f"{fn}: got a tensor on {t.device}, but this build of torch-sugar has no CUDA kernels: "
                "it was built CPU-only (SUGAR_CUDA=0, or a CPU-only torch, or no CUDA toolkit found at "
                "build time). To run on the GPU, rebuild it with CUDA: with a CUDA build of torch and "
                "the CUDA toolkit (nvcc) installed, run `SUGAR_CUDA=1 pip install --no-build-isolation "
                "-e .` in the torch-sugar checkout (TORCH_CUDA_ARCH_LIST selects the GPU architectures; "
                "see the README, \"Building with CUDA\"). torch_sugar.build_info() shows what this "
                "build has.")


def relu(x: torch.Tensor, surrogate: str = "bsilu", alpha: Optional[float] = None,
         negative_only: bool = False) -> torch.Tensor:
    """SUGAR ReLU: ``torch.relu(x)`` forward; backward ``grad * s'(x)`` for surrogate ``s``.

    Args:
        x: a float16, bfloat16, float32 or float64 tensor, any shape and layout.
        surrogate: one of ``[s.name for s in torch_sugar.surrogates()]``; "relu" is the control
            (exactly torch.relu's gradient).
        alpha: the surrogate's parameter (bsilu, nelu, elu, leaky_relu); None for its default.
        negative_only: use the surrogate's derivative only where x <= 0 and pass the gradient
            through unchanged where x > 0.
    """
    # The common case costs three type tests; anything else gets the full checks (and ints for
    # alpha become floats). Per-call overhead matters here: activations run on small tensors too.
    if not (type(surrogate) is str and type(negative_only) is bool
            and (alpha is None or type(alpha) is float)):
        _check_args("torch_sugar.relu", surrogate, alpha, negative_only)
        alpha = None if alpha is None else float(alpha)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"torch_sugar.relu: x must be a torch.Tensor, got {type(x).__name__}")
    if not _CUDA_COMPILED:
        _check_cuda_built("torch_sugar.relu", x)
    return _RELU(x, surrogate, alpha, negative_only)


def relu_backward(grad_output: torch.Tensor, x: torch.Tensor, surrogate: str = "bsilu",
                  alpha: Optional[float] = None, negative_only: bool = False) -> torch.Tensor:
    """``grad_output * d(x)``: the gradient :func:`relu` uses, as a differentiable op."""
    _check_args("torch_sugar.relu_backward", surrogate, alpha, negative_only)
    _check_cuda_built("torch_sugar.relu_backward", grad_output, x)
    return _RELU_BACKWARD(grad_output, x, surrogate, None if alpha is None else float(alpha),
                          negative_only)


def validate(surrogate: str, alpha: Optional[float] = None, negative_only: bool = False,
             fn: str = "torch_sugar") -> None:
    """Raises TypeError/ValueError unless the arguments are accepted by the ops."""
    _check_args(fn, surrogate, alpha, negative_only)
    # The C++ library is the one judge of names and alpha ranges: ask it on an empty tensor.
    torch.ops.sugar.relu(torch.empty(0), surrogate, None if alpha is None else float(alpha),
                         negative_only)


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
        "kernels": {key: bool(has("sugar::relu", key)) for key in ("CPU", "CUDA", "Meta", "Autograd")},
        # The CPU kernels in use: "default", "avx2" or "avx512" (SUGAR_CPU_CAPABILITY forces one).
        "cpu_capability": _cpu_capability_or_error(),
    }


def _cpu_capability_or_error() -> str:
    try:
        return torch.ops.sugar._cpu_capability()
    except (RuntimeError, ValueError) as exc:  # a bad SUGAR_CPU_CAPABILITY: report, don't raise
        return f"error: {str(exc).splitlines()[0]}"
