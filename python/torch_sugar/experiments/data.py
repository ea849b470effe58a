"""Data for ``torch-sugar compare``: what a training run receives (:class:`Data`);
:func:`.loading.load_data` builds it from the data section of the config.

Sources: scikit-learn's bundled ``digits``/``breast_cancer``/``wine`` (no download), generated
click data with user and item ids (``synthetic-ctr``), a user's CSV or Parquet files (in memory,
or ``--stream`` for data larger than memory), a folder of images with one sub-folder per class,
and CIFAR-10/100 in their python format. Nothing is ever downloaded.

Tables go through one pipeline (:mod:`.tables`): a source yields batches of rows
(:mod:`.sources`), one column plan gives each column its role (:mod:`.columns`), one fitted
encoder turns rows into model input (:mod:`.preprocess`); in memory and ``--stream`` differ only
in where the training rows live. Images: :mod:`.images`. Bad input raises
:class:`~.errors.UsageError` with a one-line message.
"""

import math
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Protocol, Tuple

import numpy as np
import torch

from .preprocess import CategoricalColumn, InputSpec, embedding_dim_rule

__all__ = ["CategoricalColumn", "Data", "InputSpec", "Split", "TrainRows", "embedding_dim_rule"]


class TrainRows(Protocol):
    """The training rows as a run sees them: in memory (:class:`Split`) or streamed
    (:class:`~.stream.StreamedRows`)."""

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, order_gen: torch.Generator
    ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (x, y) batches in an order drawn from ``order_gen``."""
        ...

    def class_counts(self, n_classes: int) -> np.ndarray: ...


@dataclass
class Split:
    """Rows in memory, as tensors ready for the model: ``rows`` are the source's row ids (CSV line
    numbers) for predictions files, ``groups`` the group column's values (uAUC) or None."""

    x: torch.Tensor
    y: torch.Tensor
    groups: Optional[np.ndarray]
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batches(
        self, batch_size: int, order_gen: torch.Generator
    ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """A random permutation of the rows drawn from ``order_gen``, in batches."""
        perm = torch.randperm(len(self), generator=order_gen)
        for b in range(math.ceil(len(self) / batch_size)):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            yield self.x[idx], self.y[idx]

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.y.numpy(), minlength=n_classes)


@dataclass
class Data:
    """A data set split for training: ``train`` (in memory or streamed), ``val`` and ``test`` in
    memory; ``spec`` the model input, ``preprocessing`` how raw rows become it
    (preprocessing.json), ``example`` the first training rows encoded (probing and tracing
    models)."""

    name: str
    kind: str
    train: TrainRows
    val: Split
    test: Split
    class_names: List[str]
    spec: InputSpec
    preprocessing: dict
    example: torch.Tensor
    group_name: Optional[str] = None
    feature_names: Optional[List[str]] = None
    notes: List[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return self.spec.shape

    def train_class_counts(self) -> np.ndarray:
        return np.asarray(self.train.class_counts(self.n_classes))

    def example_rows(self, k: int = 2) -> torch.Tensor:
        """The first ``k`` (at most 2) training rows, encoded."""
        return self.example[:k]

    def describe(self) -> dict:
        """For results.json."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "classes": list(self.class_names),
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "test_class_counts": self.test.class_counts(self.n_classes).tolist(),
            "train_class_counts": self.train_class_counts().tolist(),
            "group": self.group_name,
            "features": self.feature_names,
            "categorical": [vars(c).copy() for c in self.spec.categorical],
            "notes": list(self.notes),
        }
