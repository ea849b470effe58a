"""Tables (CSV, Parquet, breast_cancer, wine, synthetic-ctr): one pipeline, in memory or
``--stream``.

The source yields batches of rows; :class:`~.columns.ColumnPlan` gives each column its role and
reads the batches; one pass (:func:`fit_pass`) feeds every row to
:meth:`~.preprocess.TablePreprocessor.observe`, assigns each row its part (training, validation,
test) and fits the encoder on the training rows. In memory the whole table is one batch and every
row is kept; with ``--stream`` the batches are the row groups (CSV: blocks of rows), only the
first ``--eval-rows`` validation and test rows are kept, and training reads the training rows
again each epoch through :class:`~.stream.TrainStream`. That is the only difference: with
``--split hash`` both give the same preprocessing.json and the same encoded rows.
"""

import os
from typing import Callable, Dict, Iterable, List, Tuple

import numpy as np
import torch

from .columns import ColumnPlan, TableRows
from .config import DataConfig
from .data import Data, Split
from .errors import UsageError
from .preprocess import TablePreprocessor
from .sources import RowBatch, TableSource, builtin_table, open_csv, open_parquet
from .split import SPLIT_TEXT, TEST, TRAIN, VALIDATION, assign_parts, check_part_counts, hash_parts
from .stream import StreamedRows, TrainStream

#: rows -> the part of each row (see :mod:`.split`)
Assign = Callable[[TableRows], np.ndarray]


def open_table(cfg: DataConfig) -> Tuple[TableSource, Dict[str, object]]:
    """The source and its column settings (target, group, ignore, categorical, na_values, fill)."""
    if cfg.csv is not None or cfg.parquet is not None:
        source = open_csv(cfg.csv) if cfg.csv is not None else open_parquet(cfg.parquet)
        columns = {
            "target": cfg.target,
            "group": cfg.group,
            "ignore": cfg.ignore,
            "categorical": cfg.categorical,
            "na_values": cfg.na_values,
            "fill": cfg.fill,
        }
        return source, columns
    if cfg.dataset not in ("breast_cancer", "wine", "synthetic-ctr"):
        raise UsageError(f"--dataset: {cfg.dataset!r} is not a table")
    return builtin_table(cfg.dataset, cfg.ctr_rows, cfg.ctr_users, cfg.data_seed)


class KeepAll:
    """In memory: every row, with its part."""

    def __init__(self):
        self.rows: List[TableRows] = []
        self.parts: List[np.ndarray] = []

    def add(self, rows: TableRows, parts: np.ndarray) -> None:
        self.rows.append(rows)
        self.parts.append(parts)

    def part(self, p: int) -> TableRows:
        rows, parts = TableRows.concat(self.rows), np.concatenate(self.parts)
        return rows.take(parts == p)


class KeepFirst:
    """Streamed: the first ``held`` validation and test rows, and the first two training rows
    (model probes and traces)."""

    def __init__(self, held: int):
        self.caps = {TRAIN: 2, VALIDATION: held, TEST: held}
        self.kept: Dict[int, List[TableRows]] = {p: [] for p in self.caps}
        self.count = {p: 0 for p in self.caps}

    def add(self, rows: TableRows, parts: np.ndarray) -> None:
        for p, cap in self.caps.items():
            keep = np.flatnonzero(parts == p)[: max(0, cap - self.count[p])]
            if len(keep):
                self.kept[p].append(rows.take(keep))
                self.count[p] += len(keep)

    def part(self, p: int) -> TableRows:
        return TableRows.concat(self.kept[p])


def fit_pass(pre: TablePreprocessor, batches: Iterable[TableRows], assign: Assign, keeper) -> np.ndarray:
    """The one pass over the rows: observe every row, fit on the training rows, keep what the
    keeper keeps. Returns the rows per part (training, validation, test)."""
    counts = np.zeros(3, np.int64)
    for rows in batches:
        pre.observe(rows)
        parts = assign(rows)
        counts += np.bincount(parts[parts >= 0], minlength=3)
        pre.partial_fit(rows.take(parts == TRAIN))
        keeper.add(rows, parts)
    return counts


def _split(pre: TablePreprocessor, rows: TableRows) -> Split:
    x = torch.from_numpy(pre.transform(rows))
    return Split(x, torch.from_numpy(pre.label_codes(rows.labels)), rows.groups, rows.ids)


def _plan(source: TableSource, columns: Dict[str, object], batches=None) -> ColumnPlan:
    return ColumnPlan.decide(source, batches=batches, **columns)


def load_table(cfg: DataConfig) -> Data:
    source, columns = open_table(cfg)
    if cfg.stream:
        return _load_streamed(cfg, source, columns)
    return _load_in_memory(cfg, source, columns)


def _load_in_memory(cfg: DataConfig, source: TableSource, columns: Dict[str, object]) -> Data:
    readable = [h for h in source.header if h not in columns.get("ignore", ())]
    batch = RowBatch.concat(list(source.batches(readable)))
    plan = _plan(source, columns, lambda names: [batch])
    pre = TablePreprocessor(plan, cfg.hash_buckets, cfg.embedding_dim, cfg.max_classes)
    method = cfg.split_method

    def assign(rows: TableRows) -> np.ndarray:
        y = pre.label_codes(rows.labels)
        return assign_parts(
            y, rows.index, method, cfg.data_seed, cfg.val_fraction, cfg.test_fraction, cfg.limit
        )

    keeper = KeepAll()
    counts = fit_pass(pre, [plan.read(batch)], assign, keeper)
    check_part_counts(source.name, counts)
    pre.finish()
    train = _split(pre, keeper.part(TRAIN))
    notes = _column_note(source, plan, len(batch))
    if cfg.limit is not None and cfg.limit < len(batch):
        notes.append(f"--limit {cfg.limit}: using {int(counts.sum())} of {len(batch)} rows (stratified)")
    parts = (train, _split(pre, keeper.part(VALIDATION)), _split(pre, keeper.part(TEST)))
    return _table_data(source, plan, pre, parts, train.x[:2], notes, method)


def _load_streamed(cfg: DataConfig, source: TableSource, columns: Dict[str, object]) -> Data:
    plan = _plan(source, columns)
    pre = TablePreprocessor(plan, cfg.hash_buckets, cfg.embedding_dim, cfg.max_classes)
    split = (cfg.data_seed, cfg.val_fraction, cfg.test_fraction)
    keeper = KeepFirst(cfg.held_rows)
    rows = (plan.read(b) for b in source.batches(plan.columns))
    counts = fit_pass(pre, rows, lambda r: hash_parts(r.index, *split), keeper)
    check_part_counts(source.name, counts)
    pre.finish()
    val, test = _split(pre, keeper.part(VALIDATION)), _split(pre, keeper.part(TEST))
    stream = TrainStream(source, plan, pre, split, cfg.shuffle_rows)
    train = StreamedRows(stream, int(counts[TRAIN]), pre.train_class_counts)
    notes = _column_note(source, plan, int(counts.sum())) + [
        f"{source.name}: {int(counts.sum())} rows streamed in {source.describe_batches()}: {counts[0]} train / "
        f"{counts[1]} validation / {counts[2]} test rows by a hash of the row number (not stratified); "
        f"{len(val)} validation and {len(test)} test rows kept (--eval-rows {cfg.held_rows}); shuffle "
        f"buffer {cfg.shuffle_rows} rows"
    ]
    example = torch.from_numpy(pre.transform(keeper.part(TRAIN)))
    return _table_data(source, plan, pre, (train, val, test), example, notes, "hash")


def _column_note(source: TableSource, plan: ColumnPlan, n_rows: int) -> List[str]:
    notes = list(source.notes)
    if source.is_file:
        cats = plan.categorical
        notes.append(
            f"{os.path.basename(os.path.normpath(source.path))}: {n_rows} rows, {len(source.header)} columns -> "
            f"{len(plan.numeric)} numeric + {len(cats)} categorical features"
            + (f" ({', '.join(cats)})" if cats else "")
        )
    return notes


def _table_data(
    source: TableSource,
    plan: ColumnPlan,
    pre: TablePreprocessor,
    parts: tuple,
    example: torch.Tensor,
    notes: List[str],
    method: str,
) -> Data:
    train, val, test = parts
    return Data(
        source.name,
        "tabular",
        train,
        val,
        test,
        list(pre.classes),
        pre.spec,
        pre.to_json(SPLIT_TEXT[method]),
        example,
        group_name=plan.group,
        feature_names=plan.numeric + plan.categorical,
        notes=notes + pre.notes,
    )
