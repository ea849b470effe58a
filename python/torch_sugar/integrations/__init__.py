"""Dead and dormant units in the training frameworks, as callbacks that log through their own logging.

- :class:`torch_sugar.integrations.lightning.DeadUnitCallback`: Lightning (``pip install lightning``)
- :class:`torch_sugar.integrations.transformers.DeadUnitCallback`: the Hugging Face ``Trainer``
  (``pip install transformers accelerate``)

Both count with a :class:`torch_sugar.DeadUnitMonitor` on the validation/evaluation batches only and
log the dead and tau-dormant fractions of all hooked units (per layer too with ``per_layer=True``).
Importing this package imports neither framework; each submodule imports its own and, where it is
missing, raises an ImportError that names the package to install.
"""

import importlib
from typing import Dict

from ..monitor import DeadUnitResults

__all__ = []  # the callbacks live in the submodules, so that no framework is imported here


def _import_framework(module: str, integration: str, install: str):
    """Imports ``module`` for ``torch_sugar.integrations.<integration>``, or says what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"torch_sugar.integrations.{integration} needs the {module.split('.')[0]!r} package, which "
            f"cannot be imported ({exc}); install it with `pip install {install}` "
            f"(or `pip install 'torch-sugar[{integration}]'`)"
        ) from exc


def _metrics(results: DeadUnitResults, prefix: str, per_layer: bool) -> Dict[str, float]:
    """The logged values: ``<prefix>dead_fraction`` and ``<prefix>dormant_fraction`` of all units, and
    with ``per_layer`` the same per layer as ``<prefix>dead_fraction/<layer>``."""
    values = {
        f"{prefix}dead_fraction": results.fraction,
        f"{prefix}dormant_fraction": results.dormant_fraction,
    }
    if per_layer:
        for layer in results.layers:
            values[f"{prefix}dead_fraction/{layer.name}"] = layer.fraction
            values[f"{prefix}dormant_fraction/{layer.name}"] = layer.dormant_fraction
    return values


def _check_per_layer(per_layer, owner: str) -> bool:
    if not isinstance(per_layer, bool):
        raise TypeError(f"{owner}: per_layer must be True or False, got {per_layer!r}")
    return per_layer
