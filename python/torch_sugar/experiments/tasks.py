"""The runs of a comparison: one :class:`Task` per (activation, seed), and :func:`run_task`, the
one function that runs one, used alike by the serial loop, the ``--jobs`` workers and torchrun
ranks.

A task is run by its *kind*, an object with the interface of :class:`TaskKind`: what every task
of a comparison shares (the data and model settings, or a script), picklable so that it travels to
the ``--jobs`` workers. :class:`ModelTasks` trains a built-in or ``--model-fn`` model; a kind that
runs the user's training script per task would be another class with the same methods. The
comparison itself (:mod:`.compare`), ``--resume``, ``--jobs`` and the results only see tasks and
:class:`TaskResult` records.
"""

import os
from dataclasses import dataclass
from typing import List, Optional, Protocol, Sequence

import numpy as np
import torch

from . import distributed
from .activations import ActivationSpec
from .config import ModelConfig, TrainConfig
from .data import Data
from .report import safe_name, write_predictions
from .saved_models import save_model
from .train import train_one
from .user_model import model_factory


@dataclass(frozen=True)
class Task:
    """One run: ``index`` is its place in the serial order (seed by seed, activation by
    activation), which results.json keeps whatever order the runs finish in."""

    index: int
    activation: ActivationSpec
    seed: int

    @property
    def label(self) -> str:
        return self.activation.label

    @property
    def stem(self) -> str:
        """File names of the run's outputs: ``<activation>-seed<N>``."""
        return f"{safe_name(self.label)}-seed{self.seed}"


def make_tasks(activations: Sequence[ActivationSpec], seeds: Sequence[int]) -> List[Task]:
    pairs = [(spec, seed) for seed in seeds for spec in activations]
    return [Task(i, spec, seed) for i, (spec, seed) in enumerate(pairs)]


@dataclass
class TaskResult:
    """A finished run: ``record`` its entry in results.json (``activation``, ``seed``, ``status``
    and the metrics), ``predictions`` what :meth:`TaskKind.write_predictions` writes (or None)."""

    index: int
    record: dict
    predictions: Optional[np.ndarray] = None


class TaskKind(Protocol):
    """What runs the tasks of a comparison."""

    #: Units of a task's progress (training rows x epochs for a model).
    progress_total: int

    def prepare_process(self) -> None:
        """Once per process, before its first task (thread count, deterministic kernels, ...)."""

    def run(self, task: Task, bar=None, ctx: distributed.Context = distributed.SINGLE) -> TaskResult: ...

    def write_predictions(self, path: str, result: TaskResult) -> None: ...


def set_determinism(device: str, threads: int) -> None:
    """Same seed, same numbers on the CPU: fixed thread count, deterministic kernels."""
    torch.set_num_threads(threads)
    if device == "cuda":
        # cuBLAS needs this before its first use to pick deterministic reductions
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


class ModelTasks:
    """Tasks that train a built-in (``--model``) or ``--model-fn`` model on prepared data, then
    save it (``--save-models``)."""

    def __init__(
        self,
        data: Data,
        model: ModelConfig,
        training: TrainConfig,
        device: str,
        threads: int,
        save_models: Optional[str] = None,
    ):
        self.data, self.model, self.training = data, model, training
        self.device, self.threads, self.save_models = device, threads, save_models
        self.progress_total = len(data.train) * training.epochs
        self._factory = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_factory"] = None  # the user's function: each process imports it itself
        return state

    def factory(self):
        """``--model-fn``'s checked factory (None for ``--model``), and a probe model built by it."""
        if self.model.model_fn is None:
            return None, None
        data = self.data
        self._factory, probe = model_factory(
            self.model.model_fn, data.spec, data.n_classes, data.example_rows()
        )
        return self._factory, probe

    def prepare_process(self) -> None:
        set_determinism(self.device, self.threads)
        if self.model.model_fn is not None and self._factory is None:
            self.factory()

    def run(self, task: Task, bar=None, ctx: distributed.Context = distributed.SINGLE) -> TaskResult:
        """Train, then save the model."""
        record, log_probs, model = train_one(
            self.data,
            task.activation,
            task.seed,
            self.model,
            self.training,
            self.device,
            bar,
            self._factory,
            ctx,
        )
        if self.save_models is not None and record["status"] == "done":
            record["saved"] = save_model(model, self.save_models, task.stem, self.data.example_rows())
        return TaskResult(task.index, record, log_probs)

    def write_predictions(self, path: str, result: TaskResult) -> None:
        test = self.data.test
        write_predictions(
            path, test.rows, test.groups, test.y.numpy(), result.predictions, self.data.class_names
        )


def run_task(
    kind: TaskKind, task: Task, bar=None, ctx: distributed.Context = distributed.SINGLE
) -> TaskResult:
    """Runs one (activation, seed) task; the serial loop, the ``--jobs`` workers and every torchrun
    rank call this."""
    result = kind.run(task, bar, ctx)
    result.record.setdefault("activation", task.label)
    result.record.setdefault("seed", task.seed)
    return result
