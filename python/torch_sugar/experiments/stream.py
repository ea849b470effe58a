"""``--stream``: training rows read again every epoch, never all in memory.

:class:`TrainStream` is an ``IterableDataset`` over a table source: each epoch visits the batches
(row groups; CSV: blocks of rows) in a shuffled order, reads each by the column plan, keeps its
training rows (the hash split), encodes them with the fitted preprocessor and shuffles rows within
a buffer of ``--shuffle-buffer`` rows, so every training row is seen once per epoch and peak
memory is about the buffer plus one batch, whatever the number of rows. The source, plan and
preprocessor are plain Python and numpy, so the stream travels to ``--jobs`` workers, each reading
the files itself.
"""

from typing import Iterator, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .split import TRAIN, hash_parts


class TrainStream(IterableDataset):
    """The training rows of a source, encoded, in batches. Call :meth:`set_epoch` before each
    epoch; the same seed gives the same batches."""

    def __init__(self, source, plan, pre, split: Tuple[int, float, float], shuffle_buffer: int):
        self.source, self.plan, self.pre = source, plan, pre
        self.split, self.shuffle_buffer = split, shuffle_buffer
        self.seed, self.batch_size = 0, 1

    def set_epoch(self, seed: int, batch_size: int) -> None:
        self.seed, self.batch_size = seed, batch_size

    def _encoded(self, order) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        for k in order:
            rows = self.plan.read(self.source.batch(k, self.plan.columns))
            rows = rows.take(hash_parts(rows.index, *self.split) == TRAIN)
            if len(rows):
                yield (
                    torch.from_numpy(self.pre.transform(rows)),
                    torch.from_numpy(self.pre.label_codes(rows.labels)),
                )

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        order = np.random.default_rng(self.seed).permutation(self.source.batch_count()).tolist()
        gen = torch.Generator().manual_seed(self.seed)
        size, buffer = self.batch_size, max(self.shuffle_buffer, self.batch_size)
        bx, by, held = [], [], 0
        for x, y in self._encoded(order):
            bx.append(x)
            by.append(y)
            held += len(y)
            if held >= buffer + size:
                x, y = torch.cat(bx), torch.cat(by)
                perm = torch.randperm(len(y), generator=gen)
                out = (len(y) - buffer) // size * size
                for b in range(0, out, size):
                    yield x[perm[b : b + size]], y[perm[b : b + size]]
                rest = perm[out:]
                bx, by, held = [x[rest]], [y[rest]], len(rest)
        if held:
            x, y = torch.cat(bx), torch.cat(by)
            perm = torch.randperm(len(y), generator=gen)
            for b in range(0, len(y), size):
                yield x[perm[b : b + size]], y[perm[b : b + size]]


class StreamedRows:
    """The training rows of a ``--stream`` run (see :class:`~.data.TrainRows`): their count and
    class counts from the fitting pass, their batches from a :class:`TrainStream`."""

    def __init__(self, stream: TrainStream, n_rows: int, class_counts: np.ndarray):
        self.stream, self.n_rows, self.counts = stream, n_rows, class_counts

    def __len__(self) -> int:
        return self.n_rows

    def batches(
        self, batch_size: int, order_gen: torch.Generator
    ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        self.stream.set_epoch(int(torch.randint(0, 2**62, (1,), generator=order_gen)), batch_size)
        yield from DataLoader(self.stream, batch_size=None)

    def class_counts(self, n_classes: int) -> np.ndarray:
        return self.counts
