"""``torch_sugar.report``: a training script's numbers, for ``torch-sugar compare --script``.

Outside ``compare`` a call prints one readable line and does nothing else, so a script runs the
same alone. Under ``compare --script`` (which sets ``TORCH_SUGAR_REPORT_FILE`` in the run's
environment) each call also appends one JSON record to that file: ``{"step": ..., "metrics":
{...}, "time": ...}``, one line per call, flushed at once (a run that crashes later keeps what it
reported).
"""

import json
import math
import numbers
import os
import sys
import time
from typing import Optional

__all__ = ["report", "REPORT_FILE_ENV"]

#: The environment variable through which ``compare --script`` tells a run where its reports go.
REPORT_FILE_ENV = "TORCH_SUGAR_REPORT_FILE"


def report(step: Optional[int] = None, **metrics) -> None:
    """Reports a training script's numbers for this point of training.

        torch_sugar.report(epoch=3, val_loss=0.41, val_auc=0.77)   # per epoch ...
        torch_sugar.report(test_accuracy=0.93)                      # ... or once at the end

    Args:
        step: where in training this is (an int >= 0, e.g. the epoch or the optimizer step); None
            numbers the reports 0, 1, 2, ... in the order they are made.
        **metrics: the numbers, by name: ints, floats, numpy scalars or one-element tensors, each
            finite (a NaN loss is an error here, not a result).

    Outside ``torch-sugar compare --script`` it prints one line (``report: step 3  val_loss=0.41
    ...``) and does nothing else. Under it, the record also goes to the run's report file, which
    compare reads for its table, statistics and learning curves. In a ``torch.distributed`` job
    only rank 0 reports (the other ranks' calls do nothing): rank 0 speaks for the run.
    """
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise TypeError(f"torch_sugar.report: step must be an int >= 0 or None, got {step!r}")
        step = int(step)
    if not metrics:
        raise TypeError("torch_sugar.report: give at least one metric, e.g. report(epoch=1, val_loss=0.5)")
    values = {name: _number(name, value) for name, value in metrics.items()}
    if _rank() != 0:
        return
    shown = "  ".join(f"{name}={value:.6g}" for name, value in values.items())
    print(f"report: {'' if step is None else f'step {step}  '}{shown}", flush=True)
    path = os.environ.get(REPORT_FILE_ENV)
    if path:
        record = {"step": step, "metrics": values, "time": time.time()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _number(name: str, value) -> float:
    if hasattr(value, "numel") and hasattr(value, "item"):  # a tensor: one element only
        if value.numel() != 1:
            raise TypeError(
                f"torch_sugar.report: metric {name!r} must be a number, got a tensor of shape "
                f"{tuple(value.shape)} (report value.item() of one element, or a mean)"
            )
        value = value.item()
    elif hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy scalar
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"torch_sugar.report: metric {name!r} must be a number (int or float), got "
            f"{type(value).__name__} ({value!r})"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"torch_sugar.report: metric {name!r} is {value}; report finite numbers (a {value} loss "
            "usually means training diverged: lower the learning rate, or check the data)"
        )
    return value


def _rank() -> int:
    """This process's rank in a torch.distributed job (0 when there is none)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
