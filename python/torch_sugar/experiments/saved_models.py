"""``--save-models DIR``: each run's selected model as a state_dict and as TorchScript, and
preprocessing.json beside them. Everything that writes a saved model lives here (one place to
add another format)."""

import copy
import json
import os
import warnings
from typing import Sequence

import torch
from torch import nn

from .._compat import without_torchscript_deprecation
from ..modules import drop_carried_patch


@without_torchscript_deprecation
def save_model(model: nn.Module, directory: str, stem: str, example: torch.Tensor) -> dict:
    """``<stem>.state_dict.pt`` (``torch.save`` of the state_dict) and ``<stem>.torchscript.pt``
    (``torch.jit.script``, or ``torch.jit.trace`` on ``example`` when the model cannot be
    scripted); the TorchScript file loads with ``torch.jit.load`` after ``import torch_sugar``
    and from C++ with ``torch::jit::load`` in a program linked with ``TorchSugar::TorchSugar``."""
    model = _without_functional_patch(model).cpu().eval()
    state_path = os.path.join(directory, stem + ".state_dict.pt")
    script_path = os.path.join(directory, stem + ".torchscript.pt")
    torch.save(model.state_dict(), state_path)
    try:
        scripted = torch.jit.script(model)
        how = "script"
    except Exception:  # e.g. plain:NAME activations hold a Python function
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
            scripted = torch.jit.trace(model, example.cpu())
        how = "trace"
    scripted.save(script_path)
    return {"state_dict": state_path, "torchscript": script_path, "torchscript_by": how}


def _without_functional_patch(model: nn.Module) -> nn.Module:
    """The model without what convert(functional=True) put on it (a copy, if there was any): the
    saved model is for scoring, where SUGAR is ReLU, and TorchScript cannot run the patch."""
    if "forward" not in vars(model):
        return model
    return drop_carried_patch(copy.deepcopy(model))


def write_preprocessing(
    directory: str, preprocessing: dict, spec, model_text: str, activations: Sequence[str]
) -> str:
    """``preprocessing.json``: how a raw row becomes the saved models' input (the data's
    preprocessing, its input spec), the model and the activations."""
    path = os.path.join(directory, "preprocessing.json")
    payload = {
        "about": "How to turn a raw row into the saved models' input; the models return one logit "
        "per class (softmax gives the probabilities, class order in 'classes').",
        **preprocessing,
        "input_spec": spec.as_dict(),
        "model": model_text,
        "activations": list(activations),
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    return path
