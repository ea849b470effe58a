"""``DeadUnitCallback`` for the Hugging Face ``Trainer``: dead and dormant units at each evaluation.

    from transformers import Trainer, TrainingArguments
    from torch_sugar.integrations.transformers import DeadUnitCallback

    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., callbacks=[DeadUnitCallback()])
    trainer.train()   # each evaluation's log has eval_dead_fraction and eval_dormant_fraction

Needs ``pip install transformers accelerate`` (the ``Trainer`` needs accelerate).
"""

import warnings
from typing import Iterable, Optional, Type

from torch import nn

from ..monitor import DeadUnitMonitor, _check_tau, _check_unit_dim
from . import _check_per_layer, _import_framework, _metrics

transformers = _import_framework("transformers", "transformers", "transformers accelerate")

__all__ = ["DeadUnitCallback"]


def _evaluation_prefix(logs) -> Optional[str]:
    """``"eval"`` (or the ``metric_key_prefix`` of ``evaluate``) when ``logs`` are an evaluation's
    metrics: the Trainer's speed metrics ``<prefix>_runtime`` and ``<prefix>_samples_per_second``,
    which the end of ``train()`` also logs, as ``train_*``."""
    for key in logs or ():
        if key.endswith("_runtime"):
            prefix = key[: -len("_runtime")]
            if prefix != "train" and f"{prefix}_samples_per_second" in logs:
                return prefix
    return None


class DeadUnitCallback(transformers.TrainerCallback):
    """Counts the dead and tau-dormant units of the model on the evaluation data at each evaluation
    and adds their fractions to that evaluation's metrics.

    Added: ``eval_dead_fraction`` and ``eval_dormant_fraction`` over all hooked units (``eval`` is the
    evaluation's ``metric_key_prefix``: ``eval_<name>`` for each of several eval datasets); with
    ``per_layer=True`` also ``eval_dead_fraction/<layer>`` and ``eval_dormant_fraction/<layer>``
    (layer names as in :class:`torch_sugar.DeadUnitMonitor`). They go into the dict that
    ``Trainer.log`` hands to the callbacks, so they are in ``trainer.state.log_history``, in what
    ``evaluate()`` returns, in the metrics that ``on_evaluate`` callbacks and ``metric_for_best_model``
    see, and in what the reporting callbacks that run after this one log. The ``report_to``
    integrations (TensorBoard, W&B, ...) come before the callbacks passed to the Trainer and see
    them only if this one runs first: ``DeadUnitCallback().add_to(trainer)`` puts it there.

    Args:
        per_layer: also add each layer's fractions.
        tau: the dormancy threshold (see :class:`torch_sugar.DeadUnitMonitor`), 0.1 by default.
        unit_dim: which output dimension indexes the units: -1 (the default) for the
            ``(batch, tokens, features)`` activations of transformer blocks, 1 for conv feature maps
            ``(batch, channels, height, width)`` (HF's ResNet, ConvNeXt, ...).
        module_types: the activation module classes to hook (``nn.ReLU`` and ``SugarReLU`` by
            default; a config's ``hidden_act="relu"`` builds ``nn.ReLU`` modules).

    What is counted: the forward passes that the model runs in eval mode after the last training
    step, that is the evaluation's batches (``predict()``'s are dropped). Every token position counts,
    padding included: the monitor does not see the attention mask. Pass the callback in
    ``Trainer(callbacks=[...])`` or use :meth:`add_to`, so that it hooks the model before the first
    evaluation (one added with ``trainer.add_callback`` hooks it when training begins). In a
    distributed run each rank counts its own shard and the callback combines them
    (:meth:`~torch_sugar.DeadUnitMonitor.results` with ``all_ranks=True``), so every rank adds the
    fractions of the whole evaluation set.
    """

    def __init__(
        self,
        per_layer: bool = False,
        tau: float = DeadUnitMonitor.DEFAULT_TAU,
        unit_dim: int = -1,
        module_types: Optional[Iterable[Type[nn.Module]]] = None,
    ):
        self.per_layer = _check_per_layer(per_layer, "DeadUnitCallback")
        self._monitor_args = dict(
            module_types=module_types, enabled=False, tau=_check_tau(tau), unit_dim=_check_unit_dim(unit_dim)
        )
        self.monitor: Optional[DeadUnitMonitor] = None  #: the monitor on the Trainer's model
        self._model: Optional[nn.Module] = None
        self._gate = None

    def add_to(self, trainer) -> "DeadUnitCallback":
        """Hooks ``trainer.model`` and makes this the Trainer's first callback, so that the
        ``report_to`` integrations, which run after it, log the fractions too. Returns ``self``."""
        self._attach(trainer.model)
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    # -- hooking the Trainer's model -----------------------------------------------------------
    def _attach(self, model: Optional[nn.Module]) -> None:
        if model is None or model is self._model:
            return
        self._detach()
        self.monitor = DeadUnitMonitor(model, **self._monitor_args)
        self._gate = model.register_forward_pre_hook(self._count_in_eval_mode)
        self._model = model

    def _detach(self) -> None:
        if self.monitor is not None:
            self.monitor.remove()
            self._gate.remove()
        self.monitor, self._model, self._gate = None, None, None

    def _count_in_eval_mode(self, module, args) -> None:
        self.monitor.enabled = not module.training

    def _reset(self) -> None:
        if self.monitor is not None:
            self.monitor.reset()

    # -- Trainer events ------------------------------------------------------------------------
    def on_init_end(self, args, state, control, model=None, **kwargs):
        self._attach(model)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._attach(model)  # a new model where the Trainer has a model_init
        self._reset()

    def on_step_begin(self, args, state, control, **kwargs):
        self._reset()  # only eval-mode passes after the last training step count

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._reset()

    def on_log(self, args, state, control, logs=None, **kwargs):
        prefix = _evaluation_prefix(logs)
        if prefix is None:
            return
        if self.monitor is None:
            warnings.warn(
                "DeadUnitCallback: the model was not hooked before this evaluation (the callback was "
                "added after the Trainer was built); pass it in Trainer(callbacks=[...]) or use "
                "DeadUnitCallback().add_to(trainer)",
                stacklevel=2,
            )
            return
        results = self.monitor.results(all_ranks=True)  # every rank logs, so every rank gets here
        self.monitor.reset()
        if not results.layers:
            return
        metrics = _metrics(results, f"{prefix}_", self.per_layer)
        logs.update(metrics)  # the very dict evaluate() returns and passes to on_evaluate
        if state.log_history and state.log_history[-1].get(f"{prefix}_runtime") == logs[f"{prefix}_runtime"]:
            state.log_history[-1].update(metrics)  # Trainer.log appended a copy of logs
