"""Data-parallel training under ``torchrun``: ``torchrun --nproc_per_node N -m torch_sugar compare
...`` (multi-node: the usual ``--nnodes``/``--rdzv-endpoint``).

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; compare then joins the process group
(gloo on the CPU, nccl on GPUs), every rank loads and splits the data the same way (the split is
seeded), and each run trains a ``DistributedDataParallel`` model: every global batch of
``--batch-size`` rows (the same permutation on every rank) is split between the ranks, rank r
taking rows r, r + N, ...; DDP averages the gradients, so a step uses the gradient of the whole
batch, as one process would (up to the order of the floating-point sums). Global batches with
fewer rows than ranks (a last partial batch) are skipped on every rank. The training loss is
all-reduced every batch, so every rank sees a diverging loss at the same step. Every rank scores
the whole validation and test sets with its (identical) model, so the metrics and the epoch
selection are those of the whole data and agree on every rank; only rank 0 prints and writes files.
Bad input stops every rank with the same one-line error (:func:`agree`).
"""

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from .errors import UsageError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Context()


def from_environment(device: str) -> Context:
    """The torchrun context, joining the process group; :data:`SINGLE` outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return Context(dist.get_rank(), dist.get_world_size())


_left_group = False


def leave() -> bool:
    """Under torchrun: waits for every rank (a bounded barrier, so that no rank tears its
    connections down while another still uses them), then leaves the process group. Returns
    whether this process was in one (now or at an earlier call); False outside torchrun."""
    global _left_group
    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
            else:
                dist.barrier()
        except Exception:  # noqa: BLE001  (a rank that is gone: leave all the same)
            pass
        dist.destroy_process_group()
        _left_group = True
    return _left_group


def agree(ctx: Context, error: Optional[str]) -> None:
    """Every rank calls this with its error message or None; if any rank has one, every rank
    raises the first one (by rank), prefixed with that rank, so all stop together."""
    if not ctx.active:
        if error is not None:
            raise UsageError(error)
        return
    errors = [None] * ctx.world
    dist.all_gather_object(errors, error)
    for rank, message in enumerate(errors):
        if message is not None:
            raise UsageError(message if ctx.world == 1 else f"(rank {rank}) {message}")


def all_mean(ctx: Context, value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a scalar tensor (a detached copy)."""
    value = value.detach().clone()
    if ctx.active:
        dist.all_reduce(value)
        value /= ctx.world
    return value


def parameter_digests(ctx: Context, model: torch.nn.Module) -> list:
    """SHA-256 of the model's parameters on every rank (gathered on all), to check that the
    ranks hold the same weights, i.e. applied the same gradients."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    if not ctx.active:
        return [digest]
    out = [None] * ctx.world
    dist.all_gather_object(out, digest)
    return out


def share(ctx: Context, value):
    """Rank 0's ``value`` on every rank (a broadcast); ``value`` itself outside torchrun."""
    if not ctx.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
