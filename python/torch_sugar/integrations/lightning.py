"""``DeadUnitCallback`` for Lightning (``lightning.pytorch``): dead and dormant units at each validation.

    import lightning as L
    from torch_sugar.integrations.lightning import DeadUnitCallback

    trainer = L.Trainer(max_epochs=10, callbacks=[DeadUnitCallback(per_layer=True)])
    trainer.fit(model, train_loader, val_loader)
    trainer.callback_metrics["val/dead_fraction"], trainer.callback_metrics["val/dormant_fraction"]

Needs ``pip install lightning`` (the ``lightning`` package; the standalone ``pytorch_lightning``
package has its own ``Callback`` class, which this one is not).
"""

from typing import Iterable, Optional, Type

from torch import nn

from ..monitor import DeadUnitMonitor, _check_tau, _check_unit_dim
from . import _check_per_layer, _import_framework, _metrics

pl = _import_framework("lightning.pytorch", "lightning", "lightning")

__all__ = ["DeadUnitCallback"]


class DeadUnitCallback(pl.Callback):
    """Counts the dead and tau-dormant units of the LightningModule on the validation data at each
    validation, and logs their fractions with ``pl_module.log``.

    Logged (epoch-level, so they reach every logger, ``trainer.callback_metrics`` and can drive
    ``ModelCheckpoint``/``EarlyStopping``): ``<prefix>dead_fraction`` and ``<prefix>dormant_fraction``
    over all hooked units; with ``per_layer=True`` also ``<prefix>dead_fraction/<layer>`` and
    ``<prefix>dormant_fraction/<layer>`` (layer names as in :class:`torch_sugar.DeadUnitMonitor`).

    Args:
        per_layer: also log each layer's fractions.
        tau: the dormancy threshold (see :class:`torch_sugar.DeadUnitMonitor`), 0.1 by default.
        prefix: put before every logged name; ``"val/"`` by default.
        module_types: the activation module classes to hook (``nn.ReLU`` and ``SugarReLU`` by default).
        unit_dim: which output dimension indexes the units (see :class:`torch_sugar.DeadUnitMonitor`).

    Counting is on during the validation loop only (every validation dataloader, together), not on
    training batches nor during the sanity check before training. The ranks of a distributed run each
    count their own share of the validation data and the callback combines them
    (:meth:`~torch_sugar.DeadUnitMonitor.results` with ``all_ranks=True``), so every rank logs the
    fractions of the whole validation set (with the samples a ``DistributedSampler`` repeats to even
    out the shards counted twice). Calls of one activation module several times in a step get one
    entry per call only where ``validation_step`` runs the LightningModule's ``forward``
    (``self(x)``); otherwise they count as one layer.
    """

    def __init__(
        self,
        per_layer: bool = False,
        tau: float = DeadUnitMonitor.DEFAULT_TAU,
        prefix: str = "val/",
        module_types: Optional[Iterable[Type[nn.Module]]] = None,
        unit_dim: int = 1,
    ):
        if not isinstance(prefix, str):
            raise TypeError(f"DeadUnitCallback: prefix must be a str, got {prefix!r}")
        self.per_layer = _check_per_layer(per_layer, "DeadUnitCallback")
        self.prefix = prefix
        self._monitor_args = dict(
            module_types=module_types, enabled=False, tau=_check_tau(tau), unit_dim=_check_unit_dim(unit_dim)
        )
        self.monitor: Optional[DeadUnitMonitor] = None  #: the monitor on the module being trained

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.teardown(trainer, pl_module, stage)
        self.monitor = DeadUnitMonitor(pl_module, **self._monitor_args)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self.monitor is not None:
            self.monitor.remove()
            self.monitor = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if self.monitor is not None and not trainer.sanity_checking:
            self.monitor.reset()
            self.monitor.enabled = True

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.monitor is None or not self.monitor.enabled:
            return  # the sanity check
        self.monitor.enabled = False
        results = self.monitor.results(all_ranks=True)
        # Every rank holds the same combined values; sync_dist with "max" keeps them exactly as they
        # are (and spares Lightning's warning about epoch-level values logged without sync_dist).
        pl_module.log_dict(
            _metrics(results, self.prefix, self.per_layer),
            on_step=False,
            on_epoch=True,
            sync_dist=True,
            reduce_fx="max",
        )
