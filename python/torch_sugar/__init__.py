"""torch-sugar: SUGAR (surrogate-gradient ReLU) as a native PyTorch operator.

Forward is exactly ``torch.relu``; backward multiplies the incoming gradient by the derivative of
a smooth surrogate (B-SiLU, NeLU, ELU, SELU, GELU, SiLU, Mish, LeakyReLU), so dead ReLU units
still get gradient ("The Resurrection of the ReLU", arXiv 2505.22074).

    import torch_sugar
    y = torch_sugar.relu(x, "bsilu")            # or torch.ops.sugar.relu(x, "bsilu")
    model = torch_sugar.convert(model, "nelu")  # every nn.ReLU becomes a SugarReLU
    with torch_sugar.patch("bsilu"):            # every ReLU computed inside is SUGAR
        train(model)                            # (F.relu, torch.relu, x.relu(), in-place too)

Importing this package loads the op library (``library_path``), which registers the ops
``torch.ops.sugar.relu`` and ``torch.ops.sugar.relu_backward`` for eager mode, autograd,
TorchScript and torch.compile.
"""

import os as _os

import torch as _torch

from .version import __version__

_HERE = _os.path.dirname(_os.path.abspath(__file__))

#: Path of the Python-free op library; ``torch.ops.load_library(library_path)`` registers the
#: ops in any process (for example one that loads a TorchScript model without this package).
library_path = _os.path.join(_HERE, "lib", "libtorch_sugar.so")

#: Prefix for CMake: ``cmake -DCMAKE_PREFIX_PATH=<this>`` lets ``find_package(TorchSugar)`` find
#: the headers and library that this package ships.
cmake_prefix_path = _HERE


def _load():
    if not _os.path.exists(library_path):
        raise ImportError(
            f"torch_sugar: the op library {library_path} is missing; this package was not built. "
            "Build it with `make build` (or `pip install -e .`) in the torch-sugar checkout."
        )
    try:
        from . import _C
    except ImportError as exc:
        raise ImportError(
            f"torch_sugar: cannot import its extension module ({exc}); it was built for another torch "
            f"or Python. Rebuild it against torch {_torch.__version__} with `make build`."
        ) from exc
    built_for = _C.torch_version
    running = _torch.__version__.split("+")[0]
    if built_for != running:
        raise ImportError(
            f"torch_sugar was built against torch {built_for} but torch {running} is installed; "
            "C++ extensions only work with the torch they were built for. Rebuild with `make build`."
        )
    _torch.ops.load_library(library_path)
    return _C


_C = _load()

from . import _pt2  # noqa: E402
from ._ops import build_info, relu, relu_backward, surrogates  # noqa: E402
from ._patch import patch  # noqa: E402
from ._report import report  # noqa: E402
from .modules import SugarReLU, convert, revert  # noqa: E402
from .monitor import DeadUnitMonitor  # noqa: E402

_pt2.register()  # vmap rules, decompositions for inductor and ONNX (see _pt2.py)

__all__ = [
    "__version__",
    "build_info",
    "cmake_prefix_path",
    "convert",
    "DeadUnitMonitor",
    "library_path",
    "patch",
    "report",
    "relu",
    "relu_backward",
    "revert",
    "surrogates",
    "SugarReLU",
]
