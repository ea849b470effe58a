"""``--model-fn FILE.py:FUNCTION``: the user's own ``nn.Module`` factory.

The factory is called as ``FUNCTION(spec, n_outputs)`` with the :class:`~.data.InputSpec` of the
data and the number of classes, once per run after the run's seed is set, and must return an
``nn.Module`` whose activations to compare are ``nn.ReLU`` modules; each SUGAR activation of
``--activations`` is put in with :func:`torch_sugar.convert`. See examples/model_fn_example.py.
"""

import importlib.util
import os
import warnings
from typing import Callable, Tuple

import torch
from torch import nn

import torch_sugar

from .errors import UsageError


def load_model_fn(text: str) -> Callable:
    """The function named by ``FILE.py:FUNCTION``, imported from the file."""
    path, sep, name = text.rpartition(":")
    if not sep or not path or not name:
        raise UsageError(f"--model-fn: expected FILE.py:FUNCTION, got {text!r}")
    if not os.path.isfile(path):
        raise UsageError(f"--model-fn: no such file: {path}")
    module_name = "torch_sugar_model_fn_" + "".join(c if c.isalnum() else "_" for c in os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--model-fn: cannot import {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it in one line
        raise UsageError(f"--model-fn: importing {path} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        defined = sorted(
            k
            for k, v in vars(module).items()
            if callable(v) and not k.startswith("_") and getattr(v, "__module__", None) == module_name
        )
        what = "no function" if fn is None else "a non-callable"
        raise UsageError(
            f"--model-fn: {path} has {what} {name!r}; its functions: {', '.join(defined) or 'none'}"
        )
    return fn


def model_factory(
    text: str, spec, n_outputs: int, example: torch.Tensor
) -> Tuple[Callable[[], nn.Module], nn.Module]:
    """(a factory that calls the user's function and checks what it returns, one probe model).

    Checks once: the result is an ``nn.Module``, has an ``nn.ReLU`` to convert (and for
    :class:`~torch_sugar.DeadUnitMonitor` to count), and maps ``example`` rows to ``(rows, n_outputs)``."""
    fn = load_model_fn(text)

    def factory() -> nn.Module:
        try:
            model = fn(spec, n_outputs)
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(
                f"--model-fn: {text}(spec, {n_outputs}) raised {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(model, nn.Module):
            raise UsageError(f"--model-fn: {text} returned a {type(model).__name__}, not an nn.Module")
        return model

    probe = factory()
    try:
        # The monitor sees the ReLUs a forward pass computes: nn.ReLU modules and F.relu calls.
        with torch_sugar.DeadUnitMonitor(probe) as watch, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no ReLU seen: the error below says it
            out = probe.eval()(example)
            relus = len(watch.results().layers)
    except Exception as exc:
        raise UsageError(
            f"--model-fn: the model from {text} fails on a batch of input shape "
            f"{tuple(example.shape)}: {type(exc).__name__}: {exc}"
        ) from None
    if not relus:
        raise UsageError(
            f"--model-fn: the model from {text} computes no ReLU (no nn.ReLU module, no "
            "F.relu/torch.relu/x.relu() call in its forward), so there is nothing to make SUGAR "
            "and no unit to count as dead (TorchScript code inside a model cannot be seen)"
        )
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (example.shape[0], n_outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(
            f"--model-fn: the model from {text} returns {shape} for {example.shape[0]} "
            f"rows; expected ({example.shape[0]}, {n_outputs}): one logit per class"
        )
    return factory, probe
