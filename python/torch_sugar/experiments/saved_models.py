"""``--save-models DIR``: each run's selected model as a state_dict and in the ``--save-format``
formats (TorchScript, an AOTInductor package), and preprocessing.json beside them. Everything
that writes a saved model lives here (one place to add another format)."""

import contextlib
import copy
import json
import logging
import os
import time
import warnings
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .._compat import without_torchscript_deprecation
from ..modules import drop_carried_patch
from .config import SAVE_FORMATS
from .preprocess import warn

#: Each format's file (after ``<activation>-seed<N>``) and how to load it; preprocessing.json
#: lists those written.
FORMAT_FILES = {
    "state_dict": (
        ".state_dict.pt",
        "torch.load, then load_state_dict into the same model (torch_sugar.convert for SUGAR)",
    ),
    "torchscript": (
        ".torchscript.pt",
        "torch.jit.load after import torch_sugar; C++: torch::jit::load in a program linked with "
        "TorchSugar::TorchSugar",
    ),
    "aoti": (
        ".aoti.pt2",
        "torch._inductor.aoti_load_package; C++: torch::inductor::AOTIModelPackageLoader "
        "(examples/cpp/score_aoti.cpp). Needs torch only, not torch-sugar; compiled for the CPU "
        "that saved it",
    ),
}


def save_model(
    model: nn.Module,
    directory: str,
    stem: str,
    example: torch.Tensor,
    formats: Sequence[str] = SAVE_FORMATS,
    status: Optional[Callable[[str], None]] = None,
) -> dict:
    """``<stem>.state_dict.pt`` (``torch.save`` of the state_dict) and, per ``formats``,
    ``<stem>.torchscript.pt`` and ``<stem>.aoti.pt2``. Returns results.json's ``saved`` entry:
    the paths written, how the TorchScript was made, the AOTInductor compile's seconds, or
    ``aoti_error`` when the model could not be exported or compiled (the other files are kept, a
    warning names the reason). ``example`` (encoded rows) is what tracing and export run on;
    ``status(text)`` is told what is being written (the progress bar's postfix)."""
    model = _without_functional_patch(model).cpu().eval()
    state_path = os.path.join(directory, stem + FORMAT_FILES["state_dict"][0])
    torch.save(model.state_dict(), state_path)
    saved = {"state_dict": state_path}
    if "torchscript" in formats:
        script_path = os.path.join(directory, stem + FORMAT_FILES["torchscript"][0])
        saved.update(_save_torchscript(model, script_path, example))
    if "aoti" in formats:
        path = os.path.join(directory, stem + FORMAT_FILES["aoti"][0])
        if status is not None:
            status(f"writing {os.path.basename(path)} (AOTInductor compile)")
        saved.update(_save_aoti(model, path, example))
    return saved


@without_torchscript_deprecation
def _save_torchscript(model: nn.Module, path: str, example: torch.Tensor) -> dict:
    """``torch.jit.script``, or ``torch.jit.trace`` on ``example`` when the model cannot be
    scripted; loads with ``torch.jit.load`` after ``import torch_sugar`` and from C++ with
    ``torch::jit::load`` in a program linked with ``TorchSugar::TorchSugar``."""
    try:
        scripted = torch.jit.script(model)
        how = "script"
    except Exception:  # e.g. plain:NAME activations hold a Python function
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
            scripted = torch.jit.trace(model, example.cpu())
        how = "trace"
    scripted.save(path)
    return {"torchscript": path, "torchscript_by": how}


#: A package checks its input's dtype, shape and strides only with AOTI_RUNTIME_CHECK_INPUTS=1 in
#: its environment (without, a wrong width or layout is not caught). Those checks would also
#: reject batches of 0 and 1 row, sizes export treats as special, though the compiled code scores
#: them like any other: off, where inductor has the setting (torch 2.13 and 2.15 do, 2.9 does
#: not: its packages refuse a batch of 1 row when the checks are on).
def _aoti_configs(inductor_config) -> dict:
    if hasattr(inductor_config.aot_inductor, "check_lowerbound"):
        return {"aot_inductor.check_lowerbound": False}
    return {}


def _save_aoti(model: nn.Module, path: str, example: torch.Tensor) -> dict:
    """``torch.export`` with a dynamic batch dimension (any number of rows), compiled and packaged
    by AOTInductor for this machine's CPU. Inductor lowers the sugar ops through their
    decompositions (registered by torch_sugar/_pt2.py), so the package calls no op library: it
    loads with torch alone, in Python or C++."""
    rows = example.cpu()
    if rows.shape[0] < 2:  # export specializes a dimension of size 0 or 1: show it two rows
        rows = rows[:1].expand(2, *rows.shape[1:]).contiguous()
    start = time.perf_counter()
    try:
        with torch.no_grad(), warnings.catch_warnings(), _without_cuda_home_notice():
            from torch import _inductor  # seconds to import: only when a package is written
            from torch._inductor import config as inductor_config

            # torch 2.13's export copies its own pytree specs with a deprecated isinstance check
            # and says so on stderr: torch's notice to itself, not the user's.
            warnings.filterwarnings(
                "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
            )
            program = torch.export.export(
                model, (rows,), dynamic_shapes=({0: torch.export.Dim("batch")},), strict=False
            )
            _inductor.aoti_compile_and_package(
                program, package_path=path, inductor_configs=_aoti_configs(inductor_config)
            )
    except Exception as exc:  # a --model-fn model export cannot trace, no C++ compiler, ...
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        warn(
            f"--save-models: no AOTInductor package {path}: {reason} (the other formats are "
            "saved; --save-format torchscript skips this one)"
        )
        return {"aoti_error": reason}
    return {"aoti": path, "aoti_seconds": round(time.perf_counter() - start, 1)}


@contextlib.contextmanager
def _without_cuda_home_notice():
    """A CUDA build of torch on a machine without the CUDA runtime logs "No CUDA runtime is found,
    using CUDA_HOME=..." when inductor's C++ builder imports torch.utils.cpp_extension: nothing
    to do with a CPU package, so not shown (errors still are)."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _without_functional_patch(model: nn.Module) -> nn.Module:
    """The model without what convert(functional=True) put on it (a copy, if there was any): the
    saved model is for scoring, where SUGAR is ReLU, and TorchScript cannot run the patch."""
    if "forward" not in vars(model):
        return model
    return drop_carried_patch(copy.deepcopy(model))


def write_preprocessing(
    directory: str,
    preprocessing: dict,
    spec,
    model_text: str,
    activations: Sequence[str],
    formats: Sequence[str] = SAVE_FORMATS,
) -> str:
    """``preprocessing.json``: how a raw row becomes the saved models' input (the data's
    preprocessing, its input spec), the model, the activations, and the files saved per run."""
    path = os.path.join(directory, "preprocessing.json")
    payload = {
        "about": "How to turn a raw row into the saved models' input; the models return one logit "
        "per class (softmax gives the probabilities, class order in 'classes').",
        **preprocessing,
        "input_spec": spec.as_dict(),
        "model": model_text,
        "activations": list(activations),
        "files": {
            name: {"file": "<activation>-seed<N>" + suffix, "load": how}
            for name, (suffix, how) in FORMAT_FILES.items()
            if name == "state_dict" or name in formats
        },
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    return path
