"""The column plan: each column's role in a table, decided by one rule for every source and every
path (in memory or ``--stream``), and the reading of a batch of rows by that plan.

Roles: the ``--target`` column (the class), the ``--group`` column (uAUC; a feature too only when
it is also ``--categorical``), ``--ignore`` columns (never read), and the features: a column is
*categorical* when it is listed in ``--categorical`` or when one of its values is not a number;
otherwise it is *numeric* (a typed number column always is). The values decide, never the path.

Missing values, the same in every column: an empty cell, a null, and a cell equal to one of
``--na-values`` (in a typed number column, a value equal to a numeric marker). A missing target or
group value is an error; a missing categorical value is the category :data:`MISSING_CATEGORY`; a
missing numeric value (also a NaN) is an error unless ``--fill``; an infinite one always is.
"""

import math
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import UsageError
from .sources import NUMBER, RowBatch, TableSource

#: A categorical value that is missing (an empty cell or one of --na-values) is this category.
MISSING_CATEGORY = ""


@dataclass
class TableRows:
    """Rows read by a :class:`ColumnPlan`: ``numeric`` (n, numeric columns) float32 with NaN where
    missing, ``categorical`` (n, categorical columns) text, ``labels`` the target's text,
    ``groups`` the group's text or None; ``index`` and ``ids`` as in :class:`~.sources.RowBatch`."""

    numeric: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray
    groups: Optional[np.ndarray]
    index: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, selection) -> "TableRows":
        return TableRows(
            self.numeric[selection],
            self.categorical[selection],
            self.labels[selection],
            None if self.groups is None else self.groups[selection],
            self.index[selection],
            self.ids[selection],
        )

    @staticmethod
    def concat(parts: Sequence["TableRows"]) -> "TableRows":
        if len(parts) == 1:
            return parts[0]
        return TableRows(
            np.concatenate([p.numeric for p in parts]),
            np.concatenate([p.categorical for p in parts]),
            np.concatenate([p.labels for p in parts]),
            None if parts[0].groups is None else np.concatenate([p.groups for p in parts]),
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.ids for p in parts]),
        )


def _number_cell(v: float) -> str:
    if math.isnan(v):
        return ""
    return str(int(v)) if math.isfinite(v) and v == int(v) and abs(v) < 2.0**53 else repr(v)


def number_text(values: np.ndarray) -> np.ndarray:
    """A typed numeric column as text cells: integers without a decimal point, other numbers as
    ``repr``, "" where missing (NaN). (Each distinct value is formatted once.)"""
    if not len(values):
        return np.zeros(0, object)
    distinct, inverse = np.unique(values, return_inverse=True)
    text = np.array([_number_cell(v) for v in distinct.tolist()], dtype=object)
    return text[inverse.reshape(-1)]


def _all_numbers(text: np.ndarray) -> bool:
    try:
        text.astype(np.float64)
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class ColumnPlan:
    """The roles of a source's columns (see the module docstring) and the missing-value rule."""

    source: TableSource
    target: str
    group: Optional[str]
    numeric: List[str]
    categorical: List[str]
    na_values: Tuple[str, ...]
    fill: Optional[str]

    @property
    def columns(self) -> List[str]:
        """The columns a batch is read with."""
        extra = [self.group] if self.group is not None and self.group not in self.categorical else []
        return self.numeric + self.categorical + [self.target] + extra

    @property
    def where(self) -> str:
        return self.source.path

    @classmethod
    def decide(
        cls,
        source: TableSource,
        target: str,
        group: Optional[str] = None,
        ignore: Sequence[str] = (),
        categorical: Sequence[str] = (),
        na_values: Sequence[str] = (),
        fill: Optional[str] = None,
        batches: Optional[Callable[[List[str]], Iterable[RowBatch]]] = None,
    ) -> "ColumnPlan":
        """Checks the column flags against the source's header and gives every column its role;
        ``batches(columns)`` yields the rows to look at for text columns (default: a pass over the
        source, stopping as soon as every text column is known to be categorical)."""
        _check_names(source, target, group, ignore, categorical)
        na = tuple(sorted({v.strip() for v in na_values}))
        features = [
            n for n in source.header if n != target and n not in ignore and (n != group or n in categorical)
        ]
        if not features:
            raise UsageError(
                f"{source.flag}: {source.path} has no feature columns left besides --target/--group/--ignore"
            )
        text = [n for n in features if n not in categorical and source.kinds[n] != NUMBER]
        found = _text_categories(text, na, batches or source.batches)
        numeric = [n for n in features if n not in categorical and n not in found]
        cats = [n for n in features if n in categorical or n in found]
        return cls(source, target, group, numeric, cats, na, fill)

    # ---------------------------------------------------------------------------- reading
    def read(self, batch: RowBatch) -> TableRows:
        """The rows of ``batch`` by this plan; bad values raise UsageError naming the first."""
        labels = self._required(batch, self.target, "target", "--target")
        groups = None if self.group is None else self._required(batch, self.group, "group", "--group")
        numeric = [self._numbers(batch, name) for name in self.numeric]
        text = [self._text(batch.columns[name]) for name in self.categorical]
        n = len(batch)
        return TableRows(
            np.stack(numeric, axis=1) if numeric else np.zeros((n, 0), np.float32),
            np.stack(text, axis=1) if text else np.zeros((n, 0), object),
            labels,
            groups,
            batch.index,
            batch.ids,
        )

    def _text(self, values: np.ndarray) -> np.ndarray:
        """A column as text cells, "" where missing."""
        if values.dtype != object:
            return number_text(self._numbers_marked(values))
        if not self.na_values:
            return values
        return np.where(np.isin(values, self.na_values), "", values).astype(object)

    def _numbers_marked(self, values: np.ndarray) -> np.ndarray:
        """A typed numeric column with the numeric --na-values markers as NaN."""
        markers = [float(v) for v in self.na_values if _all_numbers(np.array([v], dtype=object))]
        if not markers:
            return values
        return np.where(np.isin(values, markers), np.nan, values)

    def _first(self, batch: RowBatch, bad: np.ndarray) -> str:
        return f"{self.source.unit} {batch.ids[int(np.flatnonzero(bad)[0])]} of {self.where}"

    def _markers(self) -> str:
        return "empty" + (f", {', '.join(self.na_values)}" if self.na_values else "")

    def _required(self, batch: RowBatch, name: str, what: str, option: str) -> np.ndarray:
        values = self._text(batch.columns[name])
        missing = values == ""
        if missing.any():
            markers = "empty" + (f" or {', '.join(self.na_values)}" if self.na_values else "")
            raise UsageError(
                f"{option}: {what} column {name!r} has {int(missing.sum())} missing value(s) ({markers}), "
                f"first on {self._first(batch, missing)}; fill or drop those rows first"
            )
        return values

    def _numbers(self, batch: RowBatch, name: str) -> np.ndarray:
        values = batch.columns[name]
        if values.dtype == object:
            numbers = np.full(len(values), np.nan)
            present = (values != "") & ~np.isin(values, self.na_values)
            numbers[present] = values[present].astype(np.float64)
        else:
            numbers = self._numbers_marked(values)
        with np.errstate(over="ignore"):
            rounded = numbers.astype(np.float32)  # the model's precision; the statistics use these values
        beyond = np.isinf(rounded)
        if beyond.any():
            first = numbers[int(np.flatnonzero(beyond)[0])]
            what = "infinite values" if math.isinf(first) else f"values beyond float32's range ({first:g})"
            raise UsageError(
                f"{self.source.flag}: numeric column {name!r} has {what}, first on {self._first(batch, beyond)}"
            )
        missing = np.isnan(rounded)
        if missing.any() and self.fill is None:
            raise UsageError(
                f"{self.source.flag}: numeric column {name!r} has {int(missing.sum())} missing value(s) "
                f"({self._markers()} or NaN), first on {self._first(batch, missing)}; fill them with "
                "--fill mean|zero, make the column --categorical, or drop it with --ignore"
            )
        return rounded


def _check_names(
    source: TableSource, target: str, group: Optional[str], ignore: Sequence[str], categorical: Sequence[str]
) -> None:
    for flag, names in (
        ("--target", [target]),
        ("--group", [group] if group is not None else []),
        ("--ignore", ignore),
        ("--categorical", categorical),
    ):
        for name in names:
            if name not in source.header:
                raise UsageError(
                    f"{flag}: column {name!r} is not in {source.path}; columns: {', '.join(source.header)}"
                )
    if target in ignore or (group is not None and group in ignore):
        raise UsageError("--ignore: cannot ignore the --target or --group column")
    if target in categorical:
        raise UsageError(f"--categorical: {target!r} is the --target column, not a feature")
    both = sorted(set(categorical) & set(ignore))
    if both:
        raise UsageError(f"--categorical: {', '.join(both)} also given to --ignore")


def _text_categories(
    names: List[str], na: Tuple[str, ...], batches: Callable[[List[str]], Iterable[RowBatch]]
) -> set:
    """The text columns among ``names`` with a value (not missing) that is not a number."""
    undecided, found = list(names), set()
    if not undecided:
        return found
    for batch in batches(list(names)):
        for name in list(undecided):
            values = batch.columns[name]
            present = values[(values != "") & ~np.isin(values, na)]
            if not _all_numbers(present):
                found.add(name)
                undecided.remove(name)
        if not undecided:
            break
    return found
