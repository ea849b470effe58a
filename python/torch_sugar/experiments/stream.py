"""``--parquet PATH --stream``: Parquet data larger than memory.

Nothing holds all rows. One streaming pass (:func:`scan`) reads the files row group by row group
and computes what :func:`~.data.prepare` computes from the whole table: the classes, the
vocabularies of the categorical columns and the mean and standard deviation of the numeric columns
(Chan's pairwise update), all over the training rows, plus the class counts. Validation and test
rows are kept in memory, at most ``eval_rows`` each (the first ones in file order).

The split cannot be scikit-learn's stratified one (that needs every label at once): each row's
part is a function of its global row number and ``--data-seed`` (a splitmix64 hash mapped to
[0, 1): below ``test_fraction`` test, below ``test_fraction + val_fraction`` validation, else
training), so every pass agrees without storing it.

Training reads the training rows through :class:`TrainStream`, an ``IterableDataset``: each epoch
visits the row groups in a shuffled order and shuffles rows within a buffer of ``shuffle_buffer``
rows, so every training row is seen once per epoch and peak memory is about the buffer plus one
row group, whatever the number of rows.

Column rules are those of typed Parquet columns in :func:`~.data.load_parquet`: integer, float
and decimal columns are numeric, the others (text, dictionary, boolean) and ``--categorical``
ones are categorical; the encodings are :func:`~.data._fit_categorical`'s.
"""

import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from . import data as data_mod
from .data import Data, InputSpec, Split, _fit_categorical, encode_categorical
from .errors import UsageError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def split_of(rows: np.ndarray, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """0 (training), 1 (validation) or 2 (test) for each global row number."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) * _GOLDEN + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u < test_fraction, 2, np.where(u < test_fraction + val_fraction, 1, 0)).astype(np.int8)


@dataclass
class Source:
    """The Parquet files, their row groups (file, index, first global row, rows) and the roles of
    the columns."""

    path: str
    files: List[str]
    row_groups: List[Tuple[int, int, int, int]]
    target: str
    group: Optional[str]
    numeric: List[str]
    categorical: List[str]
    na_values: List[str]
    fill: Optional[str]

    @property
    def columns(self) -> List[str]:
        extra = [self.group] if self.group is not None and self.group not in self.categorical else []
        return self.numeric + self.categorical + [self.target] + extra

    def read(self, k: int):
        import pyarrow.parquet as pq

        f, i, first, n = self.row_groups[k]
        try:
            return pq.ParquetFile(self.files[f]).read_row_group(i, columns=self.columns), first
        except Exception as exc:  # pyarrow's errors: one line
            raise UsageError(f"--parquet: cannot read row group {i} of {self.files[f]}: {exc}") from None


def open_source(
    path: str,
    target: str,
    group: Optional[str],
    ignore: Sequence[str],
    categorical: Sequence[str],
    na_values: Sequence[str],
    fill: Optional[str],
) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = data_mod.parquet_files(path)
    header, row_groups, first = None, [], 0
    for f, file in enumerate(files):
        try:
            meta = pq.ParquetFile(file)
            schema = meta.schema_arrow
        except Exception as exc:
            raise UsageError(f"--parquet: cannot read {file}: {exc}") from None
        if header is None:
            header = schema
        elif schema.names != header.names:
            raise UsageError(
                f"--parquet: {file} has the columns {', '.join(schema.names)}; the "
                f"first file has {', '.join(header.names)}"
            )
        for i in range(meta.num_row_groups):
            n = meta.metadata.row_group(i).num_rows
            row_groups.append((f, i, first, n))
            first += n
    names = header.names
    if first == 0:
        raise UsageError(f"--parquet: {path} has no rows")
    for flag, cols in (
        ("--target", [target]),
        ("--group", [group] if group else []),
        ("--ignore", ignore),
        ("--categorical", categorical),
    ):
        for name in cols:
            if name not in names:
                raise UsageError(f"{flag}: column {name!r} is not in {path}; columns: {', '.join(names)}")
    if target in ignore or group in ignore:
        raise UsageError("--ignore: cannot ignore the --target or --group column")
    if target in categorical:
        raise UsageError(f"--categorical: {target!r} is the --target column, not a feature")
    numeric, cats = [], []
    for fld in header:
        name, kind = fld.name, fld.type
        if name == target or name in ignore or (name == group and name not in categorical):
            continue
        is_number = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
        (numeric if is_number and name not in categorical else cats).append(name)
    if not numeric and not cats:
        raise UsageError(f"--parquet: {path} has no feature columns left besides --target/--group/--ignore")
    return Source(
        path, files, row_groups, target, group, numeric, cats, sorted({v.strip() for v in na_values}), fill
    )


def _text(column, na_values: Sequence[str]):
    """A column as a pyarrow string array: trimmed, "" where null or one of ``na_values``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    text = pc.utf8_trim_whitespace(pc.fill_null(column.cast(pa.string()), ""))
    if na_values:
        text = pc.if_else(pc.is_in(text, value_set=pa.array(list(na_values), pa.string())), "", text)
    return text


def _numbers(column) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(column.cast(pa.float64()), math.nan).to_numpy(), dtype=np.float64)


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations per column, merged chunk by chunk (Chan et al.)."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    def add(self, x: np.ndarray) -> None:
        ok = ~np.isnan(x)
        nb = ok.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mb = np.where(nb > 0, np.nansum(x, axis=0) / np.maximum(nb, 1), 0.0)
            m2b = np.nansum(np.where(ok, (x - mb) ** 2, 0.0), axis=0)
        n = self.n + nb
        delta = mb - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = np.where(n > 0, self.mean + delta * nb / np.maximum(n, 1), 0.0)
            self.m2 = self.m2 + m2b + np.where(n > 0, delta**2 * self.n * nb / np.maximum(n, 1), 0.0)
        self.n = n


@dataclass
class Scan:
    n_rows: int
    parts: np.ndarray  # rows per part: train, validation, test
    classes: List[str]
    class_counts: np.ndarray
    vocab: Dict[str, set]
    mean: np.ndarray
    std: np.ndarray
    missing: Dict[str, int]
    held: Dict[int, dict] = field(default_factory=dict)  # 1, 2: the kept validation/test rows


def scan(
    src: Source, seed: int, val_fraction: float, test_fraction: float, eval_rows: int, max_classes: int
) -> Scan:
    """The one streaming pass: classes, vocabularies, scaling statistics (training rows), and the
    first ``eval_rows`` validation and test rows."""
    import pyarrow as pa

    label_counts: Dict[str, int] = {}
    vocab = {c: set() for c in src.categorical}
    moments = _Moments(np.zeros(len(src.numeric)), np.zeros(len(src.numeric)), np.zeros(len(src.numeric)))
    missing: Dict[str, int] = {}
    parts = np.zeros(3, np.int64)
    held = {p: {"num": [], "cat": [], "y": [], "group": [], "rows": [], "n": 0} for p in (0, 1, 2)}
    caps = {0: 2, 1: eval_rows, 2: eval_rows}
    train_counts: Dict[str, int] = {}
    for k in range(len(src.row_groups)):
        table, first = src.read(k)
        n = table.num_rows
        rows = np.arange(first, first + n)
        part = split_of(rows, seed, val_fraction, test_fraction)
        parts += np.bincount(part, minlength=3)
        y = np.asarray(_text(table.column(src.target), ()).to_numpy(zero_copy_only=False), dtype=object)
        empty = np.flatnonzero(y == "")
        if len(empty):
            raise UsageError(
                f"--target: target column {src.target!r} has missing values, first on row "
                f"{rows[empty[0]]} of {src.path}; fill or drop those rows first"
            )
        values, counts = np.unique(y, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            label_counts[v] = label_counts.get(v, 0) + c
        if len(label_counts) > max_classes:
            raise UsageError(
                f"--target: column {src.target!r} has more than --max-classes {max_classes} "
                "distinct values; compare trains classifiers, not regression"
            )
        num = (
            np.stack([_numbers(table.column(c)) for c in src.numeric], axis=1)
            if src.numeric
            else np.zeros((n, 0))
        )
        if np.isinf(num).any():
            j = int(np.flatnonzero(np.isinf(num).any(axis=0))[0])
            raise UsageError(
                f"--parquet: numeric column {src.numeric[j]!r} has infinite values, first "
                f"on row {rows[np.flatnonzero(np.isinf(num[:, j]))[0]]} of {src.path}"
            )
        nan = np.isnan(num)
        if nan.any():
            j = int(np.flatnonzero(nan.any(axis=0))[0])
            if src.fill is None:
                raise UsageError(
                    f"--parquet: numeric column {src.numeric[j]!r} has missing values (null or NaN), "
                    f"first on row {rows[np.flatnonzero(nan[:, j])[0]]} of {src.path}; fill them with "
                    "--fill mean|zero, make the column --categorical, or drop it with --ignore"
                )
            for j in np.flatnonzero(nan.any(axis=0)):
                missing[src.numeric[j]] = missing.get(src.numeric[j], 0) + int(nan[:, j].sum())
        train = part == 0
        values, counts = np.unique(y[train], return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            train_counts[v] = train_counts.get(v, 0) + c
        moments.add(num[train])
        cats = [_text(table.column(c), src.na_values) for c in src.categorical]
        mask = pa.array(train)
        for c, text in zip(src.categorical, cats):
            vocab[c].update(text.filter(mask).unique().to_pylist())
        group = None
        if src.group is not None:
            group = np.asarray(
                _text(table.column(src.group), ()).to_numpy(zero_copy_only=False), dtype=object
            )
            empty = np.flatnonzero(group == "")
            if len(empty):
                raise UsageError(
                    f"--group: group column {src.group!r} has missing values, first on row "
                    f"{rows[empty[0]]} of {src.path}; fill or drop those rows first"
                )
        for p in (0, 1, 2):
            keep = np.flatnonzero(part == p)[: max(0, caps[p] - held[p]["n"])]
            if len(keep):
                h = held[p]
                h["num"].append(num[keep])
                h["cat"].append(
                    np.stack(
                        [np.asarray(t.to_numpy(zero_copy_only=False), dtype=object)[keep] for t in cats],
                        axis=1,
                    )
                    if cats
                    else None
                )
                h["y"].append(y[keep])
                h["group"].append(group[keep] if group is not None else None)
                h["rows"].append(rows[keep])
                h["n"] += len(keep)
        del table, num, cats
    distinct = sorted(label_counts)
    if all(data_mod._as_float(v) is not None for v in distinct):
        distinct.sort(key=float)
    if len(distinct) < 2:
        raise UsageError(
            f"--target: column {src.target!r} has a single class ({distinct[0]!r}) in "
            f"{src.path}; a classifier needs at least two"
        )
    absent = [c for c in distinct if c not in train_counts]
    if absent:
        raise UsageError(f"{src.path}: classes {absent} have no rows in the training data")
    std = np.sqrt(moments.m2 / np.maximum(moments.n, 1))
    return Scan(
        int(parts.sum()),
        parts,
        distinct,
        np.array([train_counts[c] for c in distinct], np.int64),
        vocab,
        moments.mean,
        std,
        missing,
        held,
    )


class TrainStream(IterableDataset):
    """The training rows of a :class:`Source`, encoded, in batches: row groups in a shuffled
    order, rows shuffled within a buffer of ``shuffle_buffer`` rows. Call :meth:`set_epoch_seed`
    before each epoch; the same seed gives the same batches."""

    def __init__(
        self,
        src: Source,
        encoder,
        split_seed: int,
        val_fraction: float,
        test_fraction: float,
        batch_size: int,
        shuffle_buffer: int,
    ):
        self.src, self.encoder = src, encoder
        self.split = (split_seed, val_fraction, test_fraction)
        self.batch_size, self.shuffle_buffer = batch_size, max(shuffle_buffer, batch_size)
        self.seed = 0

    def set_epoch_seed(self, seed: int) -> None:
        self.seed = seed

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        order = np.random.default_rng(self.seed).permutation(len(self.src.row_groups))
        gen = torch.Generator().manual_seed(self.seed)
        bx, by = [], []
        held = 0
        for k in order.tolist():
            table, first = self.src.read(k)
            part = split_of(np.arange(first, first + table.num_rows), *self.split)
            keep = np.flatnonzero(part == 0)
            if not len(keep):
                continue
            x, y = self.encoder(table, keep)
            del table
            bx.append(x)
            by.append(y)
            held += len(y)
            if held >= self.shuffle_buffer + self.batch_size:
                x, y = torch.cat(bx), torch.cat(by)
                perm = torch.randperm(len(y), generator=gen)
                out = (len(y) - self.shuffle_buffer) // self.batch_size * self.batch_size
                for b in range(0, out, self.batch_size):
                    idx = perm[b : b + self.batch_size]
                    yield x[idx], y[idx]
                rest = perm[out:]
                bx, by, held = [x[rest]], [y[rest]], len(rest)
        if held:
            x, y = torch.cat(bx), torch.cat(by)
            perm = torch.randperm(len(y), generator=gen)
            for b in range(0, len(y), self.batch_size):
                idx = perm[b : b + self.batch_size]
                yield x[idx], y[idx]


class StreamSplit:
    """The training split of streamed data: its length and class counts, and batches from a
    :class:`TrainStream` (read through a ``DataLoader`` in this process)."""

    def __init__(self, stream: TrainStream, n_rows: int, class_counts: np.ndarray, x_example: torch.Tensor):
        self.stream, self.n_rows, self.class_counts = stream, n_rows, class_counts
        self.x = x_example  #: the first few training rows, encoded (not all of them)

    def __len__(self) -> int:
        return self.n_rows

    def batches(self, batch_size: int, order_gen: torch.Generator):
        self.stream.batch_size = batch_size
        self.stream.set_epoch_seed(int(torch.randint(0, 2**62, (1,), generator=order_gen)))
        yield from DataLoader(self.stream, batch_size=None)


def load_stream(cfg, batch_size: int) -> Data:
    """``--parquet PATH --stream``: the scan, the encodings, the held-out splits and the training
    stream, as :class:`~.data.Data`."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        raise UsageError(
            "--parquet needs pyarrow: pip install pyarrow (or pip install 'torch-sugar[experiments]')"
        ) from None
    src = open_source(
        cfg.parquet, cfg.target, cfg.group, cfg.ignore, cfg.categorical, cfg.na_values, cfg.fill
    )
    s = scan(src, cfg.data_seed, cfg.val_fraction, cfg.test_fraction, cfg.held_rows, cfg.max_classes)
    if s.parts[0] == 0 or min(s.held[1]["n"], s.held[2]["n"]) == 0:
        raise UsageError(
            f"--stream: {cfg.parquet} has too few rows to split ({s.parts.tolist()} "
            "train/validation/test rows)"
        )
    mean, std = s.mean, np.where(s.std > 1e-12, s.std, 1.0)
    fill_value = None
    if s.missing:
        fill_value = mean if cfg.fill == "mean" else np.zeros(len(mean))
    columns, encodings = [], []
    for c in src.categorical:
        column, encoding = _fit_categorical(
            c, np.array(sorted(s.vocab[c]), dtype=object), cfg.hash_buckets, cfg.embedding_dim
        )
        columns.append(column)
        encodings.append(encoding)
    value_sets = [pa.array(e["vocabulary"], pa.string()) if "vocabulary" in e else None for e in encodings]
    class_set = pa.array(s.classes, pa.string())

    def encode(num: np.ndarray, cats: Optional[List[np.ndarray]]) -> np.ndarray:
        if fill_value is not None:
            num = np.where(np.isnan(num), fill_value, num)
        parts = [(num - mean) / std]
        for j, e in enumerate(encodings):
            values = cats[j]
            if not isinstance(values, pa.Array):
                values = pa.array(values, pa.string())
            if value_sets[j] is not None:
                idx = pc.index_in(values, value_set=value_sets[j])
                parts.append(pc.fill_null(pc.add(idx, 1), 0).to_numpy(zero_copy_only=False)[:, None])
            else:
                parts.append(encode_categorical(values.to_pylist(), e)[:, None])
        return np.concatenate(parts, axis=1).astype(np.float32)

    def encode_table(table, keep: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        take = pa.array(keep)
        sub = table.take(take)
        num = (
            np.stack([_numbers(sub.column(c)) for c in src.numeric], axis=1)
            if src.numeric
            else np.zeros((len(keep), 0))
        )
        cats = [_text(sub.column(c), src.na_values) for c in src.categorical]
        y = pc.index_in(_text(sub.column(src.target), ()), value_set=class_set).to_numpy(zero_copy_only=False)
        return torch.from_numpy(encode(num, cats)), torch.from_numpy(y.astype(np.int64))

    def held_split(p: int) -> Split:
        h = s.held[p]
        num = np.concatenate(h["num"])
        cats = None
        if src.categorical:
            cat = np.concatenate(h["cat"])
            cats = [cat[:, j] for j in range(cat.shape[1])]
        y = np.array([s.classes.index(v) for v in np.concatenate(h["y"]).tolist()], np.int64)
        groups = np.concatenate(h["group"]) if src.group is not None else None
        return Split(
            torch.from_numpy(encode(num, cats)), torch.from_numpy(y), groups, np.concatenate(h["rows"])
        )

    val, test = held_split(1), held_split(2)
    stream = TrainStream(
        src,
        encode_table,
        cfg.data_seed,
        cfg.val_fraction,
        cfg.test_fraction,
        batch_size,
        cfg.shuffle_rows,
    )
    example = held_split(0).x  # the first training rows (model probes and traces)
    name = os.path.splitext(os.path.basename(os.path.normpath(cfg.parquet)))[0]
    notes = [
        f"{name}: {s.n_rows} rows streamed in {len(src.row_groups)} row group(s) of "
        f"{len(src.files)} file(s): {s.parts[0]} train / {s.parts[1]} validation / {s.parts[2]} "
        f"test rows by a hash of the row number (not stratified); {val.y.shape[0]} validation and "
        f"{test.y.shape[0]} test rows kept (--eval-rows {cfg.held_rows}); shuffle buffer "
        f"{cfg.shuffle_rows} rows"
    ]
    if s.missing:
        notes.append(
            f"--fill {cfg.fill}: missing values in " + ", ".join(f"{k} ({v})" for k, v in s.missing.items())
        )
    names = list(src.numeric)
    preprocessing = data_mod.tabular_preprocessing(
        s.classes,
        src.target,
        src.group,
        src.na_values,
        names,
        mean,
        std,
        fill_value,
        encodings,
        split="splitmix64 hash of the row number (--stream)",
    )
    spec = InputSpec("tabular", (len(names) + len(columns),), len(names), tuple(names), tuple(columns))
    train = StreamSplit(stream, int(s.parts[0]), s.class_counts, example)
    return Data(
        name,
        "tabular",
        train,
        val,
        test,
        list(s.classes),
        spec.shape,
        src.group,
        names + [c.name for c in columns],
        notes,
        spec,
        preprocessing,
    )
