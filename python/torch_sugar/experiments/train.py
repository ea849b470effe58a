"""One training run: one activation, one seed, on prepared :class:`~.data.Data`.

Pairing: for a given seed every activation starts from the same initial weights (the model is
built with ``nn.ReLU`` after ``torch.manual_seed(seed)`` and only then converted) and sees the
same mini-batches in the same order (a generator of its own, seeded with the seed), so the
differences between activations over seeds are paired samples.

Model selection: after every epoch the model is scored on the validation rows (``select_by``:
the validation loss, the weighted one when classes are weighted, or the validation AUC); the test
metrics are those of the best epoch (epoch 0, the untrained model, is not a candidate), and with
``patience`` training stops after that many epochs without improvement.
"""

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import torch_sugar

from ..monitor import DeadUnitMonitor
from .activations import ActivationSpec, SmoothActivation
from .data import Data, Split
from .metrics import classification_metrics
from .models import build_model

MONITORED_TYPES = (nn.ReLU, torch_sugar.SugarReLU, SmoothActivation)


@dataclass
class TrainConfig:
    model: str = "mlp"
    hidden: Tuple[int, ...] = (16,) * 8
    width: float = 1.0
    dropout: float = 0.0
    norm: str = "auto"
    init: str = "kaiming"
    epochs: int = 30
    lr: float = 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: Optional[float] = None
    schedule: str = "constant"
    batch_size: int = 64
    eval_batch_size: int = 1024
    clip_grad: Optional[float] = None
    augment: bool = False
    device: str = "cpu"
    select_by: str = "loss"
    patience: Optional[int] = None
    pos_weight: Optional[str] = None  # None, "auto" or a number as text

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
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
    cfg: TrainConfig,
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
        for start in range(0, len(split), cfg.eval_batch_size):
            xb = split.x[start : start + cfg.eval_batch_size].to(cfg.device)
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


def _selection_score(val: dict, select_by: str) -> Optional[float]:
    """Higher is better."""
    if select_by == "auc":
        return val["auc"]
    loss = val.get("weighted_loss", val["loss"])
    return None if loss is None else -loss


def train_one(
    data: Data,
    spec: ActivationSpec,
    seed: int,
    cfg: TrainConfig,
    progress: Optional[Callable[[int, dict], None]] = None,
    bar=None,
    factory: Optional[Callable[[], nn.Module]] = None,
    ctx=None,
) -> Tuple[dict, Optional[np.ndarray], nn.Module]:
    """Trains one model; returns (the run's record for results.json, test log-probabilities, the
    model at the selected epoch, in eval mode).

    ``bar``: a tqdm-like object (``update``, ``set_postfix_str``) advanced by each batch's rows
    (all of the global batch's rows under torchrun).
    ``factory``: builds the model with ``nn.ReLU`` activations (``--model-fn``); default
    :func:`~.models.build_model` from ``cfg``.
    ``ctx``: a :class:`~.distributed.Context` under torchrun: the model trains as
    ``DistributedDataParallel``, each rank on its share of every global batch.
    """
    from . import distributed

    ctx = ctx or distributed.SINGLE
    seed_everything(seed)
    if factory is not None:
        model = factory()
    else:
        model = build_model(
            cfg.model, data.spec, data.n_classes, cfg.hidden, cfg.width, cfg.dropout, cfg.norm, cfg.init
        )
    model = spec.apply(model).to(cfg.device)
    train_model = model
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if cfg.device == "cuda" else None
        )
    weight = class_weights(data, cfg.pos_weight)
    train_weight = None if weight is None else weight.to(cfg.device)
    monitor = DeadUnitMonitor(model, MONITORED_TYPES, enabled=False)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "cosine"
        else None
    )
    order_gen = torch.Generator().manual_seed(seed)
    augment_gen = torch.Generator().manual_seed(seed + 1_000_003)
    uses_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    record: dict = {"activation": spec.label, "seed": seed, "status": "done"}
    metric_key = "auc" if data.n_classes == 2 else "accuracy"
    history: List[dict] = []
    best = {"epoch": None, "score": None, "state": None}

    def log_epoch(epoch: int, train_loss: Optional[float], seconds: Optional[float], rows: int = 0) -> dict:
        val, _, dead = evaluate(model, data.val, cfg, monitor, weight)
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
        }
        if "weighted_loss" in val:
            entry["val_weighted_loss"] = val["weighted_loss"]
        score = _selection_score(val, cfg.select_by)
        if epoch > 0 and _finite(score) and (best["score"] is None or score > best["score"]):
            best.update(
                epoch=epoch, score=score, state={k: v.detach().clone() for k, v in model.state_dict().items()}
            )
        history.append(entry)
        if progress is not None:
            progress(epoch, entry)
        if bar is not None:
            shown = val[metric_key]
            bar.set_postfix_str(
                ("" if train_loss is None else f"train loss {train_loss:.3f} ")
                + ("" if shown is None else f"val {metric_key} {shown:.3f} ")
                + f"dead {dead['fraction']:.0%}",
                refresh=False,
            )
        return entry

    _, _, dead_start = evaluate(model, data.test, cfg, monitor)
    log_epoch(0, None, None)
    epoch_seconds: List[float] = []
    for epoch in range(1, cfg.epochs + 1):
        train_model.train()
        total, count = 0.0, 0
        start = time.perf_counter()
        diverged = False
        for xb, yb in data.train.batches(cfg.batch_size, order_gen):
            rows = len(yb)
            if (uses_bn and rows < 2 * ctx.world) or rows < ctx.world:
                # batch norm cannot train on one row; under torchrun every rank needs a row
                if bar is not None:
                    bar.update(rows)
                continue
            if ctx.active:  # this rank's share of the global batch
                # the global batch's loss normalizer (rows, or their class weights)
                denom = float(rows if weight is None else weight[yb].sum())
                xb, yb = xb[ctx.rank :: ctx.world], yb[ctx.rank :: ctx.world]
            if cfg.augment and data.kind == "image":
                xb = augment_batch(xb, augment_gen)
            xb, yb = xb.to(cfg.device), yb.to(cfg.device)
            if ctx.active:
                # world x (this share's summed loss) / normalizer: DDP's mean over the ranks of
                # the gradients is then the gradient of the global batch's mean loss, also when
                # the shares differ in size (the last batch)
                loss = F.cross_entropy(train_model(xb), yb, weight=train_weight, reduction="sum") * (
                    ctx.world / denom
                )
                shown = distributed.all_mean(ctx, loss)
            else:
                loss = F.cross_entropy(train_model(xb), yb, weight=train_weight)
                shown = loss
            if not torch.isfinite(shown):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            total += shown.item() * rows
            count += rows
            if bar is not None:
                bar.update(rows)
        seconds = time.perf_counter() - start
        if diverged:
            record.update(status="diverged", diverged_epoch=epoch)
            if bar is not None:
                bar.set_postfix_str(f"diverged (loss not finite) in epoch {epoch}", refresh=False)
            break
        if scheduler is not None:
            scheduler.step()
        epoch_seconds.append(seconds)
        log_epoch(epoch, total / max(count, 1), seconds, count)
        if cfg.patience is not None and best["epoch"] is not None and epoch - best["epoch"] >= cfg.patience:
            break

    if best["state"] is not None:
        model.load_state_dict(best["state"])
    test, log_probs, dead_end = evaluate(model, data.test, cfg, monitor, weight)
    monitor.remove()
    model.eval()
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
            "selected_epoch": best["epoch"],
            "selected_by": cfg.select_by,
            "stopped_early": len(epoch_seconds) < cfg.epochs and record["status"] == "done",
            "dead_fraction_start": dead_start["fraction"],
            "dead_fraction_end": None if dead_end is None else dead_end["fraction"],
            "dead_start": dead_start,
            "dead_end": dead_end,
            "epochs_run": len(epoch_seconds),
            "epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else None,
            "train_seconds": float(np.sum(epoch_seconds)),
            "history": history,
        }
    )
    if weight is not None:
        record["pos_weight"] = float(weight[1])
    if ctx.active:
        record["ddp"] = {
            "world_size": ctx.world,
            "parameter_digests": distributed.parameter_digests(ctx, model),
        }
    return record, log_probs, model
