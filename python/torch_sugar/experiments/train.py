"""One training run: one activation, one seed, on prepared :class:`~.data.Data`.

Pairing: for a given seed every activation starts from the same initial weights (the model is
built with ``nn.ReLU`` after ``torch.manual_seed(seed)`` and only then converted) and sees the
same mini-batches in the same order (a generator of its own, seeded with the seed), so the
differences between activations over seeds are paired samples.

Model selection: after every epoch the model is scored on the validation rows (``select_by``:
the validation loss, the weighted one when classes are weighted, or the validation AUC); the test
metrics are those of the best epoch (epoch 0, the untrained model, is not a candidate), and with
``patience`` training stops after that many epochs without improvement.

:func:`train_one` runs the epochs: :func:`train_epoch` (the batches; under torchrun each rank's
share with :func:`ddp_loss`), :func:`evaluate_epoch` (the validation scores, the dead units and
:class:`EpochSelection`), then the test metrics of the selected epoch (:func:`_finish`).
"""

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import torch_sugar

from ..monitor import DeadUnitMonitor
from . import distributed
from .activations import ActivationSpec, SmoothActivation
from .config import ModelConfig, TrainConfig
from .data import Data, Split
from .metrics import classification_metrics
from .models import build_model

MONITORED_TYPES = (nn.ReLU, torch_sugar.SugarReLU, SmoothActivation)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """``--optimizer`` with ``--lr``, ``--momentum`` (sgd) and ``--weight-decay``."""
    kwargs = {} if cfg.weight_decay is None else {"weight_decay": cfg.weight_decay}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, **kwargs)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, **kwargs)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, **kwargs)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad`` pixels of zero padding and random horizontal flip (CIFAR style)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):  # per-sample crops; cheap next to the model at these sizes
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def class_weights(data: Data, pos_weight: Optional[str]) -> Optional[torch.Tensor]:
    """``--pos-weight``: None, or the loss weights (1, w) of a binary task; ``auto`` is
    w = negatives / positives of the training rows."""
    if pos_weight is None:
        return None
    if pos_weight == "auto":
        counts = data.train_class_counts()
        w = counts[0] / max(int(counts[1]), 1)
    else:
        w = float(pos_weight)
    return torch.tensor([1.0, w], dtype=torch.float32)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    eval_batch_size: int,
    device: str,
    monitor: Optional[DeadUnitMonitor] = None,
    weight: Optional[torch.Tensor] = None,
) -> Tuple[Dict[str, Optional[float]], np.ndarray, Optional[dict]]:
    """Metrics on one split; with ``monitor``, also the dead units over the whole split.

    Returns (metrics, log-probabilities, dead-unit results as a dict or None)."""
    model.eval()
    if monitor is not None:
        monitor.reset()
        monitor.enabled = True
    outs = []
    try:
        for start in range(0, len(split), eval_batch_size):
            xb = split.x[start : start + eval_batch_size].to(device)
            outs.append(F.log_softmax(model(xb).float(), dim=1).cpu())
    finally:
        if monitor is not None:
            monitor.enabled = False
    log_probs = torch.cat(outs).double().numpy()
    metrics = classification_metrics(
        split.y.numpy(), log_probs, split.groups, None if weight is None else weight.numpy()
    )
    dead = monitor.results().as_dict() if monitor is not None else None
    return metrics, log_probs, dead


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


class EpochSelection:
    """The epoch with the best validation score (``--select-by``; epoch 0, the untrained model,
    is not a candidate) and a copy of its weights."""

    def __init__(self, select_by: str):
        self.select_by = select_by
        self.epoch: Optional[int] = None
        self.score: Optional[float] = None
        self.state: Optional[dict] = None

    def score_of(self, val: dict) -> Optional[float]:
        """Higher is better: the validation AUC, or minus the (weighted) validation loss."""
        if self.select_by == "auc":
            return val["auc"]
        loss = val.get("weighted_loss", val["loss"])
        return None if loss is None else -loss

    def offer(self, epoch: int, val: dict, model: nn.Module) -> None:
        score = self.score_of(val)
        if epoch > 0 and _finite(score) and (self.score is None or score > self.score):
            self.epoch, self.score = epoch, score
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def stalled(self, epoch: int, patience: Optional[int]) -> bool:
        """``--patience``: that many epochs without a better score."""
        return patience is not None and self.epoch is not None and epoch - self.epoch >= patience

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


@dataclass
class RunState:
    """What one run trains with (built by :func:`start_run`)."""

    model: nn.Module  #: the model itself (selection, evaluation, saving)
    train_model: nn.Module  #: what trains: the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Optional[object]
    monitor: DeadUnitMonitor
    weight: Optional[torch.Tensor]  #: --pos-weight's class weights (CPU), or None
    training: TrainConfig
    device: str
    ctx: distributed.Context
    order_gen: torch.Generator
    augment_gen: torch.Generator
    uses_bn: bool
    history: List[dict] = field(default_factory=list)

    @property
    def train_weight(self) -> Optional[torch.Tensor]:
        return None if self.weight is None else self.weight.to(self.device)

    def evaluate(self, split: Split, with_weight: bool = True):
        weight = self.weight if with_weight else None
        return evaluate(self.model, split, self.training.eval_batch_size, self.device, self.monitor, weight)


def start_run(
    data: Data,
    spec: ActivationSpec,
    seed: int,
    model_cfg: ModelConfig,
    training: TrainConfig,
    device: str,
    factory: Optional[Callable[[], nn.Module]],
    ctx: distributed.Context,
) -> RunState:
    """Seeds everything, builds the model (``factory``, or ``--model``) with ``nn.ReLU`` and puts
    the activation in; the optimizer, the schedule and the generators of the batch order and the
    augmentation."""
    seed_everything(seed)
    if factory is not None:
        model = factory()
    else:
        m = model_cfg
        model = build_model(m.model, data.spec, data.n_classes, m.hidden, m.width, m.dropout, m.norm, m.init)
    model = spec.apply(model).to(device)
    train_model = model
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if device == "cuda" else None
        )
    weight = class_weights(data, training.pos_weight)
    monitor = DeadUnitMonitor(model, MONITORED_TYPES, enabled=False)
    optimizer = make_optimizer(training, model.parameters())
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
        if training.schedule == "cosine"
        else None
    )
    return RunState(
        model,
        train_model,
        optimizer,
        scheduler,
        monitor,
        weight,
        training,
        device,
        ctx,
        torch.Generator().manual_seed(seed),
        torch.Generator().manual_seed(seed + 1_000_003),
        any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
    )


def ddp_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    weight: Optional[torch.Tensor],
    ctx: distributed.Context,
    denom: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Under torchrun, this rank's loss on its share of a global batch: world x (the share's
    summed loss) / ``denom``, the global batch's normalizer (its rows, or their class weights).
    DDP's mean over the ranks of the gradients is then the gradient of the global batch's mean
    loss, also when the shares differ in size (the last batch). Returns (that loss, the global
    batch's mean loss, all-reduced so that every rank sees a diverging loss at the same step)."""
    loss = F.cross_entropy(logits, y, weight=weight, reduction="sum") * (ctx.world / denom)
    return loss, distributed.all_mean(ctx, loss)


def batch_loss(
    run: RunState, data: Data, xb: torch.Tensor, yb: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the loss to back-propagate, the batch's mean loss) of one global batch."""
    ctx = run.ctx
    denom = 0.0
    if ctx.active:  # this rank's share of the global batch
        denom = float(len(yb) if run.weight is None else run.weight[yb].sum())
        xb, yb = xb[ctx.rank :: ctx.world], yb[ctx.rank :: ctx.world]
    if run.training.augment and data.kind == "image":
        xb = augment_batch(xb, run.augment_gen)
    xb, yb = xb.to(run.device), yb.to(run.device)
    if ctx.active:
        return ddp_loss(run.train_model(xb), yb, run.train_weight, ctx, denom)
    loss = F.cross_entropy(run.train_model(xb), yb, weight=run.train_weight)
    return loss, loss


def train_epoch(run: RunState, data: Data, bar=None) -> Tuple[Optional[float], int, float]:
    """One epoch: (mean training loss, or None when the loss stopped being finite; rows trained;
    seconds)."""
    run.train_model.train()
    total, count = 0.0, 0
    start = time.perf_counter()
    for xb, yb in data.train.batches(run.training.batch_size, run.order_gen):
        rows = len(yb)
        if (run.uses_bn and rows < 2 * run.ctx.world) or rows < run.ctx.world:
            # batch norm cannot train on one row; under torchrun every rank needs a row
            if bar is not None:
                bar.update(rows)
            continue
        loss, shown = batch_loss(run, data, xb, yb)
        if not torch.isfinite(shown):
            return None, count, time.perf_counter() - start
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if run.training.clip_grad is not None:
            nn.utils.clip_grad_norm_(run.model.parameters(), run.training.clip_grad)
        run.optimizer.step()
        total += shown.item() * rows
        count += rows
        if bar is not None:
            bar.update(rows)
    return total / max(count, 1), count, time.perf_counter() - start


def evaluate_epoch(
    run: RunState,
    data: Data,
    selection: EpochSelection,
    epoch: int,
    train_loss: Optional[float] = None,
    seconds: Optional[float] = None,
    rows: int = 0,
    bar=None,
) -> dict:
    """The validation scores and dead units after an epoch (its history entry); offers the epoch
    to ``selection``."""
    val, _, dead = run.evaluate(data.val)
    entry = {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_seconds": seconds,
        "train_rows_per_second": rows / seconds if seconds else None,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "val_auc": val["auc"],
        "val_pr_auc": val["pr_auc"],
        "dead_fraction": dead["fraction"],
        "dead_layers": {k: v["fraction"] for k, v in dead["layers"].items()},
        "dormant_fraction": dead["dormant_fraction"],
    }
    if "weighted_loss" in val:
        entry["val_weighted_loss"] = val["weighted_loss"]
    selection.offer(epoch, val, run.model)
    run.history.append(entry)
    if bar is not None:
        key = "auc" if data.n_classes == 2 else "accuracy"
        shown = val[key]
        bar.set_postfix_str(
            ("" if train_loss is None else f"train loss {train_loss:.3f} ")
            + ("" if shown is None else f"val {key} {shown:.3f} ")
            + f"dead {dead['fraction']:.0%}",
            refresh=False,
        )
    return entry


def train_one(
    data: Data,
    spec: ActivationSpec,
    seed: int,
    model_cfg: ModelConfig,
    training: TrainConfig,
    device: str = "cpu",
    bar=None,
    factory: Optional[Callable[[], nn.Module]] = None,
    ctx: Optional[distributed.Context] = None,
) -> Tuple[dict, Optional[np.ndarray], nn.Module]:
    """Trains one model; returns (the run's record for results.json, test log-probabilities, the
    model at the selected epoch, in eval mode).

    ``bar``: a tqdm-like object (``update``, ``set_postfix_str``) advanced by each batch's rows
    (all of the global batch's rows under torchrun).
    ``factory``: builds the model with ``nn.ReLU`` activations (``--model-fn``); default
    :func:`~.models.build_model` from ``model_cfg``.
    ``ctx``: a :class:`~.distributed.Context` under torchrun: the model trains as
    ``DistributedDataParallel``, each rank on its share of every global batch.
    """
    run = start_run(data, spec, seed, model_cfg, training, device, factory, ctx or distributed.SINGLE)
    record: dict = {"activation": spec.label, "seed": seed, "status": "done"}
    selection = EpochSelection(training.select_by or "loss")
    _, _, dead_start = run.evaluate(data.test, with_weight=False)
    evaluate_epoch(run, data, selection, 0, bar=bar)
    epoch_seconds: List[float] = []
    for epoch in range(1, training.epochs + 1):
        loss, rows, seconds = train_epoch(run, data, bar)
        if loss is None:
            record.update(status="diverged", diverged_epoch=epoch)
            if bar is not None:
                bar.set_postfix_str(f"diverged (loss not finite) in epoch {epoch}", refresh=False)
            break
        if run.scheduler is not None:
            run.scheduler.step()
        epoch_seconds.append(seconds)
        evaluate_epoch(run, data, selection, epoch, loss, seconds, rows, bar)
        if selection.stalled(epoch, training.patience):
            break
    return _finish(run, data, record, selection, epoch_seconds, dead_start)


def _finish(
    run: RunState,
    data: Data,
    record: dict,
    selection: EpochSelection,
    epoch_seconds: List[float],
    dead_start: dict,
) -> Tuple[dict, Optional[np.ndarray], nn.Module]:
    """The selected epoch's test metrics and dead units: the run's record."""
    selection.restore(run.model)
    test, log_probs, dead_end = run.evaluate(data.test)
    run.monitor.remove()
    run.model.eval()
    if record["status"] != "done" or not _finite(test["loss"]):
        record["status"] = "diverged"
        test = {k: None for k in test}
        dead_end, log_probs = None, None
    record.update(
        {
            "loss": test["loss"],
            "accuracy": test["accuracy"],
            "auc": test["auc"],
            "pr_auc": test["pr_auc"],
            "uauc": test["uauc"],
            "uauc_groups": test.get("uauc_groups"),
            "selected_epoch": selection.epoch,
            "selected_by": selection.select_by,
            "stopped_early": len(epoch_seconds) < run.training.epochs and record["status"] == "done",
            "dead_fraction_start": dead_start["fraction"],
            "dead_fraction_end": None if dead_end is None else dead_end["fraction"],
            "dormant_fraction_start": dead_start["dormant_fraction"],
            "dormant_fraction_end": None if dead_end is None else dead_end["dormant_fraction"],
            "dead_start": dead_start,
            "dead_end": dead_end,
            "epochs_run": len(epoch_seconds),
            "epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else None,
            "train_seconds": float(np.sum(epoch_seconds)),
            "history": run.history,
        }
    )
    if run.weight is not None:
        record["pos_weight"] = float(run.weight[1])
    if run.ctx.active:
        record["ddp"] = {
            "world_size": run.ctx.world,
            "parameter_digests": distributed.parameter_digests(run.ctx, run.model),
        }
    return record, log_probs, run.model
